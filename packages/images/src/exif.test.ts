import { describe, expect, it } from 'vitest';
import {
  embeddedThumbnailFits,
  findEmbeddedThumbnail,
  JPEG_HEAD_BYTES,
  orientedSize,
  orientSquare,
  parseExifDate,
  parseJpegHead,
} from './exif.js';
import { sharp } from './sharp.js';
import { withExif } from './testing/exif-writer.js';
import { scene } from './testing/fixtures.js';
import { thumbnailFromBytes, thumbnailFromEmbedded } from './thumbnail.js';

/** A w × h image in four coloured quadrants (red, green / blue, white), so any turn or mirror shows. */
function quadrants(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1);
      rgb.set(
        [
          [230, 20, 20],
          [20, 200, 20],
          [20, 20, 230],
          [240, 240, 240],
        ][q]!,
        (y * width + x) * 3,
      );
    }
  }
  return rgb;
}

async function jpeg(
  rgb: Buffer,
  width: number,
  height: number,
  options: { progressive?: boolean } = {},
): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90, progressive: options.progressive ?? false })
    .toBuffer();
}

function meanDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! - b[i]!);
  return d / a.length;
}

describe('parseJpegHead', () => {
  it('reads size, progressive flag and orientation from a sharp-written JPEG', async () => {
    const base = await jpeg(quadrants(640, 480), 640, 480);
    expect(parseJpegHead(base)).toEqual({ width: 640, height: 480, orientation: 1, progressive: false });
    const progressive = await jpeg(quadrants(320, 200), 320, 200, { progressive: true });
    expect(parseJpegHead(progressive)).toMatchObject({ width: 320, height: 200, progressive: true });
    const rotated = await sharp(quadrants(64, 48), { raw: { width: 64, height: 48, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(parseJpegHead(rotated)).toMatchObject({ width: 64, height: 48, orientation: 6 });
  });

  it('returns null for non-JPEG bytes and for a head that ends before the frame header', async () => {
    expect(parseJpegHead(Buffer.from('not a jpeg at all'))).toBeNull();
    expect(parseJpegHead(Buffer.alloc(0))).toBeNull();
    const big = withExif(await jpeg(quadrants(64, 48), 64, 48), {
      thumbnail: await jpeg(quadrants(160, 120), 160, 120),
    });
    expect(parseJpegHead(big.subarray(0, 200))).toBeNull();
  });
});

describe('withExif + findEmbeddedThumbnail', () => {
  it('round-trips an IFD1 thumbnail, and sharp agrees on the orientation', async () => {
    const main = await jpeg(quadrants(800, 600), 800, 600);
    const thumb = await jpeg(quadrants(160, 120), 160, 120);
    const file = withExif(main, { orientation: 8, thumbnail: thumb });
    const found = findEmbeddedThumbnail(file.subarray(0, JPEG_HEAD_BYTES));
    expect(found).not.toBeNull();
    expect(found!.jpeg.equals(thumb)).toBe(true);
    expect(found).toMatchObject({ width: 160, height: 120, orientation: 8, image: { width: 800, height: 600 } });
    const meta = await sharp(file).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([800, 600, 8]);
    // The file still decodes to the main image.
    const { info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([800, 600]);
  });

  it('finds nothing without EXIF, without IFD1, or when the thumbnail lies beyond the head', async () => {
    const main = await jpeg(quadrants(400, 300), 400, 300);
    expect(findEmbeddedThumbnail(main)).toBeNull();
    expect(findEmbeddedThumbnail(withExif(main, { orientation: 3 }))).toBeNull();
    const file = withExif(main, { thumbnail: await jpeg(quadrants(160, 120), 160, 120) });
    expect(findEmbeddedThumbnail(file.subarray(0, 100))).toBeNull();
  });

  it('uses a thumbnail only when it covers the cell and has the image aspect ratio', () => {
    const image = { width: 5664, height: 4248 };
    expect(embeddedThumbnailFits({ width: 160, height: 120, image }, 84)).toBe(true);
    expect(embeddedThumbnailFits({ width: 160, height: 120, image }, 120)).toBe(true);
    expect(embeddedThumbnailFits({ width: 160, height: 120, image }, 121)).toBe(false);
    // A stale thumbnail after a 3:2 crop, or a letterboxed one.
    expect(embeddedThumbnailFits({ width: 160, height: 120, image: { width: 5664, height: 3776 } }, 84)).toBe(false);
    expect(embeddedThumbnailFits({ width: 160, height: 120, image: { width: 6000, height: 4000 } }, 84)).toBe(false);
  });
});

describe('capture time (EXIF DateTimeOriginal)', () => {
  it('reads DateTimeOriginal and SubSecTimeOriginal from the Exif IFD, beside the orientation and the thumbnail', async () => {
    const main = await jpeg(quadrants(400, 300), 400, 300);
    const thumb = await jpeg(quadrants(160, 120), 160, 120);
    const file = withExif(main, { orientation: 6, thumbnail: thumb, captured: '2026:05:01 10:11:12', subSec: '25' });
    expect(parseJpegHead(file)).toMatchObject({ orientation: 6, captured: Date.UTC(2026, 4, 1, 10, 11, 12) + 250 });
    expect(findEmbeddedThumbnail(file)!.jpeg.equals(thumb)).toBe(true);
    expect(parseJpegHead(withExif(main, { captured: '2026:05:01 10:11:12' }))!.captured).toBe(
      Date.UTC(2026, 4, 1, 10, 11, 12),
    );
  });

  it('reads the date as libexif writes it (through sharp)', async () => {
    const file = await sharp(quadrants(400, 300), { raw: { width: 400, height: 300, channels: 3 } })
      .jpeg()
      .withExif({ IFD0: { Make: 'Test' }, IFD2: { DateTimeOriginal: '2025:12:31 23:59:58' } })
      .toBuffer();
    expect(parseJpegHead(file)!.captured).toBe(Date.UTC(2025, 11, 31, 23, 59, 58));
  });

  it('has none without EXIF, without the tag, or with a blank or impossible date', async () => {
    const main = await jpeg(quadrants(400, 300), 400, 300);
    expect(parseJpegHead(main)!.captured).toBeUndefined();
    expect(parseJpegHead(withExif(main, { orientation: 3 }))!.captured).toBeUndefined();
    expect(parseJpegHead(withExif(main, { captured: '0000:00:00 00:00:00' }))!.captured).toBeUndefined();
    expect(parseJpegHead(withExif(main, { captured: '    :  :     :  :  ' }))!.captured).toBeUndefined();
    expect(parseExifDate('2026:13:01 00:00:00')).toBeUndefined();
    expect(parseExifDate('2026:02:03 04:05:06', '5')).toBe(Date.UTC(2026, 1, 3, 4, 5, 6) + 500);
  });
});

describe('orientSquare', () => {
  it('matches sharp auto-orientation for every EXIF orientation', async () => {
    const side = 32;
    const stored = quadrants(side, side);
    // Make the square asymmetric along the diagonal too.
    for (let x = 0; x < 8; x++) stored.set([0, 0, 0], (1 * side + x + 2) * 3);
    const png = await sharp(stored, { raw: { width: side, height: side, channels: 3 } })
      .png()
      .toBuffer();
    for (let orientation = 1; orientation <= 8; orientation++) {
      const tagged = await sharp(png).jpeg({ quality: 100 }).withMetadata({ orientation }).toBuffer();
      const expected = await sharp(tagged).autoOrient().raw().toBuffer();
      const untagged = await sharp(tagged).raw().toBuffer();
      expect(meanDiff(orientSquare(untagged, side, orientation), expected), `orientation ${orientation}`).toBe(0);
    }
  });

  it('swaps the reported size for orientations 5 to 8', () => {
    expect(orientedSize(4, 3, 1)).toEqual({ width: 4, height: 3 });
    expect(orientedSize(4, 3, 4)).toEqual({ width: 4, height: 3 });
    for (const o of [5, 6, 7, 8]) expect(orientedSize(4, 3, o)).toEqual({ width: 3, height: 4 });
  });
});

describe('thumbnailFromBytes', () => {
  it('centre-crops, orients and matches a full-decode thumbnail of the same picture', async () => {
    const photo = scene(7, 1600, 1200);
    const main = await jpeg(photo.data, 1600, 1200);
    const small = await sharp(photo.data, { raw: { width: 1600, height: 1200, channels: 3 } })
      .resize(160, 120)
      .jpeg({ quality: 90 })
      .toBuffer();
    for (const orientation of [1, 6]) {
      const file = withExif(main, { orientation, thumbnail: small });
      const embedded = findEmbeddedThumbnail(file)!;
      const thumb = await thumbnailFromEmbedded(embedded, 84);
      expect(thumb.size).toBe(84);
      expect(thumb.rgb.length).toBe(84 * 84 * 3);
      expect(thumb.from).toBe('embedded');
      expect(thumb.source).toEqual(
        orientation === 6
          ? { width: 1200, height: 1600, format: 'jpeg' }
          : { width: 1600, height: 1200, format: 'jpeg' },
      );
      const direct = await sharp(file).autoOrient().resize(84, 84, { fit: 'cover' }).raw().toBuffer();
      expect(meanDiff(thumb.rgb, direct), `orientation ${orientation}`).toBeLessThan(12);
      expect(thumb.signals.hash).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('takes the orientation as an option for bare bytes', async () => {
    const small = await jpeg(quadrants(160, 120), 160, 120);
    const upright = await thumbnailFromBytes(small, 84);
    const turned = await thumbnailFromBytes(small, 84, { orientation: 6 });
    expect(upright.source).toEqual({ width: 160, height: 120, format: 'jpeg' });
    expect(turned.source).toEqual({ width: 120, height: 160, format: 'jpeg' });
    // Orientation 6 turns clockwise: the stored top-left (red) lands top-right.
    const at = (rgb: Buffer, x: number, y: number) => [...rgb.subarray((y * 84 + x) * 3, (y * 84 + x) * 3 + 3)];
    expect(at(upright.rgb, 10, 10)[0]).toBeGreaterThan(180);
    expect(at(turned.rgb, 74, 10)[0]).toBeGreaterThan(180);
  });

  it('refuses bytes that are not a JPEG as an unreadable image', async () => {
    await expect(thumbnailFromBytes(Buffer.from('nope'), 84)).rejects.toMatchObject({ name: 'ImageReadError' });
  });
});
