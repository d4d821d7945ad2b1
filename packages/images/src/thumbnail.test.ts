import { writeFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharp, sharpInFlight } from './sharp.js';
import { scene, tempDir, writeJpeg } from './testing/fixtures.js';
import { png } from './testing/hostile.js';
import { ImageReadError, thumbnailFromFile } from './thumbnail.js';

let temp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  temp = await tempDir();
});
afterAll(async () => {
  await temp.cleanup();
});

function pixel(rgb: Buffer, size: number, x: number, y: number): number[] {
  const o = (y * size + x) * 3;
  return [rgb[o]!, rgb[o + 1]!, rgb[o + 2]!];
}

/** A w × h image whose left half is red and right half blue. */
function halves(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgb[(y * width + x) * 3 + (x < width / 2 ? 0 : 2)] = 255;
  }
  return rgb;
}

async function readError(path: string): Promise<ImageReadError> {
  const error = await thumbnailFromFile(path, 84).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageReadError);
  return error as ImageReadError;
}

/** An RGB PNG of deflated scanlines (filter bytes included) with any bit depth, built by hand (hostile.ts). */
const rgbPng = (width: number, height: number, bitDepth: 8 | 16, scanlines: Buffer) =>
  png(width, height, bitDepth, 2, deflateSync(scanlines));

describe('thumbnailFromFile', () => {
  it('turns a 1600 × 1200 JPEG into an 84 px square of raw RGB', async () => {
    const path = await writeJpeg(temp.file('photo.jpg'), scene(1));
    const thumb = await thumbnailFromFile(path, 84);
    expect(thumb.size).toBe(84);
    expect(thumb.rgb).toBeInstanceOf(Buffer);
    expect(thumb.rgb.length).toBe(84 * 84 * 3);
    expect(thumb.source).toEqual({ width: 1600, height: 1200, format: 'jpeg' });
    expect(thumb.signals.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('looks like a thumbnail sharp would have made directly (centre crop, Lanczos)', async () => {
    const path = await writeJpeg(temp.file('direct.jpg'), scene(2));
    for (const size of [84, 224, 400]) {
      const thumb = await thumbnailFromFile(path, size);
      const direct = await sharp(path).resize(size, size, { fit: 'cover', position: 'centre' }).raw().toBuffer();
      let diff = 0;
      for (let i = 0; i < direct.length; i++) diff += Math.abs(direct[i]! - thumb.rgb[i]!);
      expect(diff / direct.length, `mean absolute difference at ${size} px`).toBeLessThan(4);
    }
  });

  it('auto-orients: an EXIF orientation 6 landscape comes out upright', async () => {
    const path = temp.file('rotated.jpg');
    await sharp(halves(400, 200), { raw: { width: 400, height: 200, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toFile(path);
    expect((await sharp(path).metadata()).orientation).toBe(6);
    const thumb = await thumbnailFromFile(path, 84);
    expect(thumb.source).toEqual({ width: 200, height: 400, format: 'jpeg' });
    // Orientation 6 turns the stored image 90° clockwise: its left (red) half becomes the top.
    const [r1, , b1] = pixel(thumb.rgb, 84, 42, 10);
    const [r2, , b2] = pixel(thumb.rgb, 84, 42, 74);
    expect(r1).toBeGreaterThan(200);
    expect(b1).toBeLessThan(50);
    expect(b2).toBeGreaterThan(200);
    expect(r2).toBeLessThan(50);
  });

  it('flattens a PNG with alpha onto white, giving 3 channels', async () => {
    const rgba = Buffer.alloc(100 * 100 * 4);
    for (let i = 0; i < 100 * 100; i++) {
      const x = i % 100;
      rgba.set(x < 50 ? [0, 0, 0, 0] : [0, 160, 0, 255], i * 4);
    }
    const path = temp.file('alpha.png');
    await sharp(rgba, { raw: { width: 100, height: 100, channels: 4 } })
      .png()
      .toFile(path);
    const thumb = await thumbnailFromFile(path, 84);
    expect(thumb.rgb.length).toBe(84 * 84 * 3);
    expect(thumb.source.format).toBe('png');
    expect(pixel(thumb.rgb, 84, 10, 42)).toEqual([255, 255, 255]);
    const [r, g, b] = pixel(thumb.rgb, 84, 74, 42);
    expect([r! < 10, g! > 150, b! < 10]).toEqual([true, true, true]);
  });

  it('gives 8-bit RGB for a 16-bit PNG and for a greyscale image', async () => {
    const row = Buffer.alloc(1 + 64 * 6); // filter byte 0, then big-endian 16-bit R, G, B
    for (let x = 0; x < 64; x++) {
      row.writeUInt16BE(65535, 1 + x * 6);
      row.writeUInt16BE(32896, 3 + x * 6);
      row.writeUInt16BE(0, 5 + x * 6);
    }
    const deepPath = temp.file('deep.png');
    await writeFile(deepPath, rgbPng(64, 64, 16, Buffer.concat(Array.from({ length: 64 }, () => row))));
    expect((await sharp(deepPath).metadata()).depth).toBe('ushort');
    const fromDeep = await thumbnailFromFile(deepPath, 32);
    expect(fromDeep.rgb.length).toBe(32 * 32 * 3);
    const [r, g, b] = pixel(fromDeep.rgb, 32, 16, 16);
    expect([r, g, b]).toEqual([255, 128, 0]);

    const greyPath = temp.file('grey.jpg');
    await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .toColourspace('b-w')
      .jpeg()
      .toFile(greyPath);
    expect((await sharp(greyPath).metadata()).channels).toBe(1);
    const fromGrey = await thumbnailFromFile(greyPath, 32);
    expect(fromGrey.rgb.length).toBe(32 * 32 * 3);
    const [gr, gg, gb] = pixel(fromGrey.rgb, 32, 5, 5);
    expect(gr).toBe(gg);
    expect(gg).toBe(gb);
    expect(Math.abs(gr! - 90)).toBeLessThanOrEqual(2);
  });

  it('refuses an empty file', async () => {
    const path = temp.file('empty.jpg');
    await writeFile(path, '');
    expect((await readError(path)).reason).toBe('empty file (0 bytes)');
  });

  it('refuses a text file named .jpg as not an image', async () => {
    const path = temp.file('notes.jpg');
    await writeFile(path, 'shopping list: eggs, milk\n');
    expect((await readError(path)).reason).toBe('not an image: unsupported or unrecognised format');
  });

  it('refuses a truncated JPEG as corrupt, quoting libvips', async () => {
    const full = await sharp(scene(3).data, { raw: { width: 1600, height: 1200, channels: 3 } })
      .jpeg()
      .toBuffer();
    const path = temp.file('truncated.jpg');
    await writeFile(path, full.subarray(0, Math.floor(full.length / 2)));
    const error = await readError(path);
    expect(error.reason).toMatch(/^corrupt or truncated image: \S/);
    expect(error.reason).not.toContain('\n');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('refuses an image over 100 MP from its header, before decoding', async () => {
    const path = temp.file('huge.png');
    // An empty IDAT: the header alone must be enough to refuse it.
    await writeFile(path, rgbPng(20_000, 10_000, 8, Buffer.alloc(0)));
    expect((await readError(path)).reason).toBe('image too large: 20000 × 10000 pixels exceeds the 100 MP limit');
  });

  it('lets a missing file fail with the file-system error, not as a bad photo', async () => {
    await expect(thumbnailFromFile(temp.file('nope.jpg'), 84)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('honours an aborted signal before doing any work', async () => {
    const path = await writeJpeg(temp.file('abort.jpg'), scene(4, 200, 150));
    const controller = new AbortController();
    controller.abort();
    await expect(thumbnailFromFile(path, 84, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('never has more than one sharp operation in flight', async () => {
    const paths = [];
    for (let i = 0; i < 4; i++) paths.push(await writeJpeg(temp.file(`busy-${i}.jpg`), scene(10 + i, 3000, 2000)));
    let max = 0;
    let busy = 0;
    let samples = 0;
    const timer = setInterval(() => {
      const inFlight = sharpInFlight();
      max = Math.max(max, inFlight);
      if (inFlight > 0) busy++;
      samples++;
    }, 1);
    try {
      // Half of them with the full-size square too: its pipeline comes after the thumbnail's, never beside it.
      for (const [i, path] of paths.entries()) await thumbnailFromFile(path, 84, { detail: i % 2 === 0 });
    } finally {
      clearInterval(timer);
    }
    expect(samples).toBeGreaterThan(0);
    expect(busy, 'the sampler should have caught sharp at work').toBeGreaterThan(0);
    expect(max).toBe(1);
  });
});
