/** The fine pass's full-resolution focus and noise (Thumbnail.detail), through the real sharp pipeline. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeVariant } from './testing/flaws.js';
import { scene, tempDir, writeJpeg } from './testing/fixtures.js';
import { sharp } from './sharp.js';
import { thumbnailFromFile } from './thumbnail.js';

let temp: Awaited<ReturnType<typeof tempDir>>;
let base: string;
beforeAll(async () => {
  temp = await tempDir();
  base = await writeJpeg(temp.file('base.jpg'), scene(11, 2400, 1600), { quality: 95 });
});
afterAll(async () => {
  await temp.cleanup();
});

const crop = { left: 0, top: 0, width: 2400, height: 1600 };

async function detailOf(name: string, flaws: Parameters<typeof writeVariant>[1]['flaws'] = []) {
  const path = temp.file(name);
  await writeVariant(base, { crop, longSide: 2400, flaws }, path);
  const thumb = await thumbnailFromFile(path, 233, { detail: true });
  return thumb.detail!;
}

describe('detail at full resolution', () => {
  it('reads ISO-6400-like noise as noise, not as sharpness lost or gained, and shake and defocus as softness', async () => {
    const clean = await detailOf('clean.jpg');
    const noisy = await detailOf('noisy.jpg', [{ kind: 'noise', sigma: 14, seed: 3 }]);
    const shaken = await detailOf('shaken.jpg', [{ kind: 'motion', length: 40, direction: 'horizontal' }]);
    const soft = await detailOf('soft.jpg', [{ kind: 'defocus', sigma: 10 }]);
    expect(noisy.noise).toBeGreaterThan(3 * clean.noise);
    expect(noisy.noise).toBeGreaterThan(2);
    expect(clean.noise).toBeLessThan(1.5);
    expect(shaken.sharpness).toBeLessThan(0.35 * clean.sharpness);
    expect(soft.sharpness).toBeLessThan(0.35 * clean.sharpness);
  });

  it('is measured only when asked, and the same whichever way the file is turned', async () => {
    await writeVariant(base, { crop, longSide: 2400 }, temp.file('upright.jpg'));
    const path = temp.file('turned.jpg');
    await sharp(temp.file('upright.jpg')).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(path);
    const plain = await thumbnailFromFile(temp.file('upright.jpg'), 84);
    expect(plain.detail).toBeUndefined();
    const upright = (await thumbnailFromFile(temp.file('upright.jpg'), 84, { detail: true })).detail!;
    const turned = (await thumbnailFromFile(path, 84, { detail: true })).detail!;
    expect(turned.sharpness).toBeCloseTo(upright.sharpness, 1);
    expect(turned.noise).toBeCloseTo(upright.noise, 0);
  });

  it('is not measured where it would cost memory, not just time: a WebP or a progressive JPEG is decoded whole', async () => {
    await writeVariant(base, { crop, longSide: 2400 }, temp.file('plain.jpg'));
    const webp = temp.file('plain.webp');
    const progressive = temp.file('progressive.jpg');
    await sharp(temp.file('plain.jpg')).webp({ quality: 90 }).toFile(webp);
    await sharp(temp.file('plain.jpg')).jpeg({ quality: 90, progressive: true }).toFile(progressive);
    expect((await thumbnailFromFile(temp.file('plain.jpg'), 84, { detail: true })).detail).toBeDefined();
    expect((await thumbnailFromFile(webp, 84, { detail: true })).detail).toBeUndefined();
    expect((await thumbnailFromFile(progressive, 84, { detail: true })).detail).toBeUndefined();
  });

  it("is measured when a test of the thumbnail asks for it, after the thumbnail's signals, and not when it declines", async () => {
    const path = temp.file('asked.jpg');
    await writeVariant(base, { crop, longSide: 2400, flaws: [{ kind: 'noise', sigma: 14, seed: 5 }] }, path);
    const seen: number[] = [];
    const declined = await thumbnailFromFile(path, 84, { detail: (t) => (seen.push(t.signals.noise), false) });
    const asked = await thumbnailFromFile(path, 84, {
      detail: (t) => (seen.push(t.signals.noise), t.source.width === 2400),
    });
    expect(declined.detail).toBeUndefined();
    expect(asked.detail!.noise).toBeGreaterThan(2);
    expect(seen).toEqual([declined.signals.noise, asked.signals.noise]);
  });
});
