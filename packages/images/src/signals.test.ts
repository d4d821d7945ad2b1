import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeSignals, hashDistance, SIGNAL_SIDE } from './signals.js';
import { noisy, scaled, scene, tempDir, writeJpeg, type RawImage } from './testing/fixtures.js';
import { thumbnailFromFile, type Thumbnail } from './thumbnail.js';

let temp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  temp = await tempDir();
});
afterAll(async () => {
  await temp.cleanup();
});

let counter = 0;
async function thumbOf(image: RawImage, options: { blur?: number } = {}): Promise<Thumbnail> {
  const path = await writeJpeg(temp.file(`photo-${counter++}.jpg`), image, options);
  return thumbnailFromFile(path, 84);
}

function uniform(size: number, value: number): Uint8Array {
  return new Uint8Array(size * size * 3).fill(value);
}

describe('computeSignals on synthetic pixels', () => {
  it('reads a flat mid-grey image as well exposed, without contrast or detail', () => {
    const s = computeSignals(uniform(32, 128), 32, 32);
    expect(s.brightness).toBeCloseTo(128 / 255, 5);
    expect(s.contrast).toBe(0);
    expect(s.sharpness).toBe(0);
    expect(s.clippedDark).toBe(0);
    expect(s.clippedBright).toBe(0);
    expect(s.exposure).toBe(1);
    expect(s.quality).toBe(0);
  });

  it('reads black as fully clipped dark and white as fully clipped bright, both badly exposed', () => {
    const black = computeSignals(uniform(16, 0), 16, 16);
    const white = computeSignals(uniform(16, 255), 16, 16);
    expect([black.clippedDark, black.clippedBright, black.exposure]).toEqual([1, 0, 0]);
    expect([white.clippedDark, white.clippedBright, white.exposure]).toEqual([0, 1, 0]);
  });

  it('measures contrast as the luma standard deviation', () => {
    const size = 16;
    const rgb = new Uint8Array(size * size * 3);
    for (let i = 0; i < size * size; i++) rgb.fill(i % 2 ? 255 : 0, i * 3, i * 3 + 3);
    const s = computeSignals(rgb, size, size);
    expect(s.contrast).toBeCloseTo(0.5, 5);
    expect(s.clippedDark).toBe(0.5);
    expect(s.clippedBright).toBe(0.5);
    expect(s.sharpness).toBeGreaterThan(0.99);
  });

  it('hashes a left-to-right darkening ramp to all ones and its mirror to all zeros', () => {
    const size = 36;
    const ramp = new Uint8Array(size * size * 3);
    const mirror = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        ramp.fill(255 - x * 7, (y * size + x) * 3, (y * size + x) * 3 + 3);
        mirror.fill(x * 7, (y * size + x) * 3, (y * size + x) * 3 + 3);
      }
    }
    expect(computeSignals(ramp, size, size).hash).toBe('ffffffffffffffff');
    expect(computeSignals(mirror, size, size).hash).toBe('0000000000000000');
  });

  it('rejects a buffer that does not match the size', () => {
    expect(() => computeSignals(new Uint8Array(10), 2, 2)).toThrow(/expected 12 bytes/);
  });
});

describe('hashDistance', () => {
  it('counts differing bits', () => {
    expect(hashDistance('0000000000000000', '0000000000000000')).toBe(0);
    expect(hashDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hashDistance('00000000000000f1', '0000000000000010')).toBe(4);
    expect(hashDistance('ABCDEF0123456789', 'abcdef0123456789')).toBe(0);
  });

  it('rejects hashes of different lengths or that are not hex', () => {
    expect(() => hashDistance('00', '000')).toThrow(RangeError);
    expect(() => hashDistance('zz', '00')).toThrow(RangeError);
  });
});

describe('signals of real thumbnails', () => {
  it(`are measured at ${SIGNAL_SIDE} px whatever the thumbnail size`, async () => {
    const path = await writeJpeg(temp.file('sizes.jpg'), scene(5));
    const small = await thumbnailFromFile(path, 84);
    const large = await thumbnailFromFile(path, 224);
    expect(large.signals).toEqual(small.signals);
  });

  it('give a blurred photo clearly lower sharpness than the same photo in focus', async () => {
    for (const seed of [1, 2, 3]) {
      const image = scene(seed);
      const crisp = (await thumbOf(image)).signals;
      const blur3 = (await thumbOf(image, { blur: 3 })).signals;
      const blur4 = (await thumbOf(image, { blur: 4 })).signals;
      expect(blur3.sharpness, `seed ${seed}, σ 3`).toBeLessThan(crisp.sharpness * 0.6);
      expect(blur4.sharpness, `seed ${seed}, σ 4`).toBeLessThan(crisp.sharpness * 0.4);
      expect(blur4.quality).toBeLessThan(crisp.quality * 0.7);
      // Blur changes focus, not exposure.
      expect(Math.abs(blur4.brightness - crisp.brightness)).toBeLessThan(0.02);
      expect(blur4.exposure).toBeCloseTo(crisp.exposure, 1);
    }
  });

  it('give an underexposed and a blown-out photo clearly lower exposure than a normal one', async () => {
    const image = scene(1);
    const normal = (await thumbOf(image)).signals;
    const dark = (await thumbOf(scaled(image, 0.15))).signals;
    const blown = (await thumbOf(scaled(image, 3))).signals;
    expect(normal.exposure).toBeGreaterThan(0.9);
    expect(dark.exposure).toBeLessThan(0.4);
    expect(blown.exposure).toBeLessThan(0.4);
    expect(dark.brightness).toBeLessThan(0.15);
    expect(blown.clippedBright).toBeGreaterThan(0.2);
    expect(dark.quality).toBeLessThan(normal.quality * 0.5);
    expect(blown.quality).toBeLessThan(normal.quality * 0.5);
  });

  it('hash near-identical frames close together and different scenes far apart', async () => {
    const a = scene(1);
    const hashA = (await thumbOf(a)).signals.hash;
    const hashNear = (await thumbOf(noisy(a, 8, 99))).signals.hash;
    expect(hashDistance(hashA, hashNear)).toBeLessThanOrEqual(6);
    for (const seed of [2, 3, 4]) {
      const other = (await thumbOf(scene(seed))).signals.hash;
      expect(hashDistance(hashA, other), `scene 1 vs ${seed}`).toBeGreaterThan(16);
    }
  });

  it('are deterministic', async () => {
    const path = await writeJpeg(temp.file('same.jpg'), scene(6));
    const first = await thumbnailFromFile(path, 84);
    const second = await thumbnailFromFile(path, 84);
    expect(second.signals).toEqual(first.signals);
    expect(second.rgb.equals(first.rgb)).toBe(true);
    expect(computeSignals(first.rgb, 84, 84)).toEqual(computeSignals(Buffer.from(first.rgb), 84, 84));
  });
});
