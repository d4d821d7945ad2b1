import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { boxShrinkRgba, decodeHeic, decodeHeicShrunk, isHeic } from './heic.js';
import { thumbnailFromFile } from './thumbnail.js';

/**
 * 640 × 480 HEIC (HEVC, made with libheif's heif-enc) with a 160 × 120 thumbnail item: top-left quadrant
 * green, the rest of the left half red, the right half blue.
 */
const FIXTURE = fileURLToPath(new URL('../fixtures/quadrants.heic', import.meta.url));
/** 256 × 192 HEIC (heif-enc -q 80, no thumbnail item): colour gradients, checks and noise. */
const GRADIENT = fileURLToPath(new URL('../fixtures/gradient-nothumb.heic', import.meta.url));

function rgbaAt(d: { rgba: Buffer; width: number }, x: number, y: number): number[] {
  const o = (y * d.width + x) * 4;
  return [...d.rgba.subarray(o, o + 4)];
}

describe('isHeic', () => {
  it('recognises HEIC by its ftyp brands and not AVIF or JPEG', async () => {
    expect(isHeic(await readFile(FIXTURE))).toBe(true);
    const avif = Buffer.from('0000001c667479706176696600000000617669666696d69666d696166', 'hex');
    expect(isHeic(avif)).toBe(false);
    expect(isHeic(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0]))).toBe(false);
  });
});

describe('decodeHeic', () => {
  it('decodes the primary image to upright RGBA with the right colours', async () => {
    const d = await decodeHeic(await readFile(FIXTURE));
    try {
      expect([d.width, d.height, d.fromThumbnail]).toEqual([640, 480, false]);
      expect(d.primary).toEqual({ width: 640, height: 480 });
      expect(d.rgba.length).toBe(640 * 480 * 4);
      const [r1, g1, b1] = rgbaAt(d, 100, 100);
      expect(g1! > 150 && r1! < 80 && b1! < 80).toBe(true);
      const [r2, , b2] = rgbaAt(d, 100, 400);
      expect(r2! > 150 && b2! < 80).toBe(true);
      expect(rgbaAt(d, 500, 240)[2]).toBeGreaterThan(150);
    } finally {
      d.release();
    }
  });

  it('prefers the embedded thumbnail when it covers the requested side, not when it is too small', async () => {
    const bytes = await readFile(FIXTURE);
    const small = await decodeHeic(bytes, { minSide: 100 });
    expect([small.width, small.height, small.fromThumbnail]).toEqual([160, 120, true]);
    expect(rgbaAt(small, 20, 20)[1]).toBeGreaterThan(150);
    small.release();
    const big = await decodeHeic(bytes, { minSide: 121 });
    expect([big.width, big.height, big.fromThumbnail]).toEqual([640, 480, false]);
    big.release();
  });

  it('decodes 8-bit YCbCr in its own planes and reduces it there, with the colours of libheif’s own RGBA conversion', async () => {
    const bytes = await readFile(GRADIENT);
    for (const [keepSide, factor] of [
      [192, 1],
      [64, 3],
      [50, 3],
    ] as const) {
      const shrunk = await decodeHeicShrunk(bytes, { minSide: Infinity, keepSide });
      expect(shrunk.planar).toBe(true);
      expect(shrunk.fromThumbnail).toBe(false);
      const full = await decodeHeic(bytes);
      const reference = boxShrinkRgba(full.rgba, full.width, full.height, factor);
      full.release();
      expect([shrunk.width, shrunk.height]).toEqual([reference.width, reference.height]);
      let sum = 0;
      let max = 0;
      for (let i = 0; i < reference.rgba.length; i++) {
        const d = Math.abs(shrunk.rgba[i]! - reference.rgba[i]!);
        sum += d;
        max = Math.max(max, d);
      }
      expect(sum / reference.rgba.length, `mean difference, factor ${factor}`).toBeLessThan(1);
      expect(max, `largest difference, factor ${factor}`).toBeLessThanOrEqual(6);
    }
  });

  it('serialises decodes: a second call waits for the first release', async () => {
    const bytes = await readFile(FIXTURE);
    const first = await decodeHeic(bytes, { minSide: 100 });
    let second = false;
    const pending = decodeHeic(bytes, { minSide: 100 }).then((d) => {
      second = true;
      return d;
    });
    // Once its turn comes a decode runs synchronously (libheif in WebAssembly on this thread), so without the
    // lock the second call would have resolved before the event loop's next turn.
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    first.release();
    (await pending).release();
    expect(second).toBe(true);
  });

  it('refuses bytes that are not HEIF', async () => {
    await expect(decodeHeic(Buffer.from('definitely not an image'))).rejects.toMatchObject({ name: 'HeicDecodeError' });
  });
});

describe('thumbnailFromFile on HEIC', () => {
  it('makes the coarse thumbnail from the embedded thumbnail and the fine one from the image', async () => {
    const coarse = await thumbnailFromFile(FIXTURE, 84);
    expect(coarse.rgb.length).toBe(84 * 84 * 3);
    expect(coarse.from).toBe('embedded');
    expect(coarse.source).toEqual({ width: 640, height: 480, format: 'heif' });
    const fine = await thumbnailFromFile(FIXTURE, 233);
    expect(fine.from).toBeUndefined();
    expect(fine.rgb.length).toBe(233 * 233 * 3);
    // Centre crop of 640 × 480 keeps x 80..560: top-left of the crop is green, bottom-left red, right blue.
    const at = (t: typeof fine, x: number, y: number) => [
      ...t.rgb.subarray((y * t.size + x) * 3, (y * t.size + x) * 3 + 3),
    ];
    expect(at(fine, 20, 20)[1]).toBeGreaterThan(150);
    expect(at(fine, 20, 210)[0]).toBeGreaterThan(150);
    expect(at(fine, 210, 120)[2]).toBeGreaterThan(150);
    expect(at(coarse, 10, 10)[1]).toBeGreaterThan(150);
  });
});
