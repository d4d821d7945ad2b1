/**
 * Hostile photos (see hostile.ts) through the two ways the worker reads a photo: the file itself
 * (thumbnailFromFile) and, for JPEGs, the EXIF thumbnail in the file's head (findEmbeddedThumbnail +
 * thumbnailFromEmbedded). Each photo is either thumbnailed correctly — upright, checked by the colours of
 * its quadrants — or refused with an ImageReadError whose reason says why.
 */
import { readFile, stat } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { findEmbeddedThumbnail, JPEG_HEAD_BYTES, parseJpegHead } from './exif.js';
import {
  colourDistance,
  quadrantColours,
  writeHostileSet,
  type HostilePhoto,
  type Quadrants,
} from './testing/hostile.js';
import { mulberry32 } from './random.js';
import { tempDir } from './testing/fixtures.js';
import { ImageReadError, thumbnailFromEmbedded, thumbnailFromFile, type Thumbnail } from './thumbnail.js';

// Written while the tests are collected, so that each photo gets its own named test.
const temp = await tempDir();
const photos = await writeHostileSet(temp.dir);
afterAll(async () => {
  await temp.cleanup();
});

const byName = (name: string): HostilePhoto => photos.find((p) => p.name === name)!;

async function outcome<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

function expectQuadrants(thumb: Thumbnail, quadrants: Quadrants, tolerance: number, what: string): void {
  expect(thumb.rgb.length, what).toBe(thumb.size * thumb.size * 3);
  const got = quadrantColours(thumb.rgb, thumb.size);
  const worst = Math.max(...got.map((c, i) => colourDistance(c, quadrants[i]!)));
  expect(worst, `${what}: quadrants ${JSON.stringify(got)}, expected ${JSON.stringify(quadrants)}`).toBeLessThanOrEqual(
    tolerance,
  );
}

describe('thumbnailFromFile on hostile photos', () => {
  it('covers every case of the brief', () => {
    const labels = photos.map((p) => p.label).join('\n');
    for (const pattern of [
      /truncated/,
      /zero bytes/,
      /text named/,
      /bomb/,
      /CMYK/,
      /16-bit/,
      /alpha/,
      /animated GIF/,
      /animated WebP/,
      /1 × 1/,
      /panorama/,
      /HEIC/,
    ]) {
      expect(labels).toMatch(pattern);
    }
    for (let o = 1; o <= 8; o++) expect(labels).toContain(`EXIF orientation ${o}`);
  });

  // 84 px is a coarse cell (from a shrink-on-load decode), 400 px a fine one (upscaling the small ones).
  it.each(photos)('$label ($name)', async (photo) => {
    for (const size of [84, 400]) {
      const result = await outcome(thumbnailFromFile(photo.path, size));
      const what = `${photo.name} at ${size} px`;
      if (photo.expected.outcome === 'refused') {
        expect('error' in result, `${what} should be refused`).toBe(true);
        const error = (result as { error: unknown }).error;
        expect(error, what).toBeInstanceOf(ImageReadError);
        const reason = (error as ImageReadError).reason;
        expect(reason, what).toMatch(photo.expected.reason);
        expect(reason, what).not.toContain('\n');
      } else {
        if ('error' in result) throw new Error(`${what} should be thumbnailed`, { cause: result.error });
        const thumb = result.value;
        expect(thumb.size).toBe(size);
        expect(thumb.source, what).toEqual(photo.expected.source);
        expect(thumb.signals.hash, what).toMatch(/^[0-9a-f]{16}$/);
        expectQuadrants(thumb, photo.expected.quadrants, photo.expected.tolerance, what);
      }
    }
  });

  it('refuses decompression bombs from their header, before any decode', async () => {
    const bombs = photos.filter((p) => p.label.startsWith('bomb'));
    expect(bombs.length).toBeGreaterThanOrEqual(3);
    for (const bomb of bombs) {
      const { size } = await stat(bomb.path);
      expect(size, `${bomb.name} is a small file`).toBeLessThan(200_000);
      const before = process.memoryUsage.rss();
      const result = await outcome(thumbnailFromFile(bomb.path, 84));
      expect('error' in result).toBe(true);
      const error = (result as { error: ImageReadError }).error;
      expect(error.reason).toBe('image too large: 30000 × 30000 pixels exceeds the 100 MP limit');
      // sharp's own refusal from the header check, not a failed (or finished) decode: 900 MP is 2.7 GB as
      // RGB and tens of seconds to decode; the refusal costs neither (no time is asserted: shared machines).
      expect(String((error.cause as Error | undefined)?.message)).toMatch(/exceeds pixel limit/);
      expect(process.memoryUsage.rss() - before, `${bomb.name}: RSS growth`).toBeLessThan(64 * 1024 * 1024);
    }
  });

  it('reads an animated image as its first frame', async () => {
    for (const name of ['animated.gif', 'animated.webp']) {
      const thumb = await thumbnailFromFile(byName(name).path, 84);
      // The second frame has the quadrants reversed: white top-left.
      expect(quadrantColours(thumb.rgb, 84)[0]![0], name).toBeGreaterThan(200);
      expect(quadrantColours(thumb.rgb, 84)[0]![1], name).toBeLessThan(60);
      expect(thumb.source, name).toMatchObject({ width: 400, height: 300 });
    }
  });
});

describe('the EXIF thumbnail path on hostile photos', () => {
  const jpegs = photos.filter((p) => p.embedded);

  it.each(jpegs)('$label: $embedded', async (photo) => {
    const head = (await readFile(photo.path)).subarray(0, JPEG_HEAD_BYTES);
    const found = findEmbeddedThumbnail(head);
    if (photo.embedded === 'ignored') {
      // The photo's own header still reads; only the out-of-bounds thumbnail is not used.
      expect(parseJpegHead(head)).toMatchObject({ width: 400, height: 300 });
      expect(found).toBeNull();
      return;
    }
    expect(found).not.toBeNull();
    expect(found!.jpeg.byteOffset + found!.jpeg.length).toBeLessThanOrEqual(head.byteOffset + head.length);
    const result = await outcome(thumbnailFromEmbedded(found!, 84));
    if (photo.embedded === 'rejected') {
      // Refused as a permanent read error: the worker then falls back to the file (which is read or
      // refused on its own merits, as the test above checks).
      expect('error' in result).toBe(true);
      expect((result as { error: unknown }).error).toBeInstanceOf(ImageReadError);
      if (photo.expected.outcome === 'refused')
        expect((result as { error: ImageReadError }).error.reason).toMatch(photo.expected.reason);
      else expect((result as { error: ImageReadError }).error.reason).toMatch(/^corrupt embedded thumbnail: /);
      return;
    }
    if ('error' in result)
      throw new Error(`${photo.name}: embedded thumbnail should be usable`, { cause: result.error });
    const thumb = result.value;
    expect(thumb.from).toBe('embedded');
    if (photo.expected.outcome !== 'thumbnail')
      throw new Error('a usable embedded thumbnail belongs to a readable photo');
    expect(thumb.source).toEqual(photo.expected.source);
    expectQuadrants(thumb, photo.expected.quadrants, photo.expected.tolerance, `${photo.name} (embedded)`);
  });

  it('never throws on damaged heads, and never points outside them', async () => {
    const original = await readFile(byName('orientation-6-exif.jpg').path);
    const rand = mulberry32(6);
    let found = 0;
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const head = Buffer.from(original.subarray(0, 1 + Math.floor(rand() * original.length)));
      // Damage the markers, the TIFF header and the IFDs (the first ~120 bytes), now and then anywhere.
      for (let k = 1 + Math.floor(rand() * 6); k > 0; k--) {
        const at = Math.floor(rand() * Math.min(head.length, rand() < 0.8 ? 120 : head.length));
        head[at] = rand() < 0.5 ? Math.floor(rand() * 256) : [0x00, 0xff, 0x7f, 0x80][Math.floor(rand() * 4)]!;
      }
      // Either throwing fails the test.
      parseJpegHead(head);
      const e = findEmbeddedThumbnail(head);
      if (!e) continue;
      found++;
      expect(e.jpeg.byteOffset).toBeGreaterThanOrEqual(head.byteOffset);
      expect(e.jpeg.byteOffset + e.jpeg.length).toBeLessThanOrEqual(head.byteOffset + head.length);
      if (decoded < 40) {
        decoded++;
        // A damaged thumbnail is either read or refused as an ImageReadError, never anything else.
        const result = await outcome(thumbnailFromEmbedded(e, 84));
        if ('error' in result) expect(result.error).toBeInstanceOf(ImageReadError);
        else expect(result.value.rgb.length).toBe(84 * 84 * 3);
      }
    }
    expect(found, 'some damaged heads still hold a thumbnail').toBeGreaterThan(10);
  });
});
