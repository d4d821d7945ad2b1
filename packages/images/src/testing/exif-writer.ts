/**
 * Writes the EXIF APP1 segment that exif.ts reads, as cameras write it, for the tests and the benchmark
 * corpus: sharp cannot embed an IFD1 thumbnail. The worker only reads EXIF, so this is not in the package's
 * main entry.
 */
import { isJpeg } from '../exif.js';

/**
 * Returns `jpeg` with an EXIF APP1 segment inserted right after SOI: IFD0 with the orientation; when `captured`
 * ("YYYY:MM:DD HH:MM:SS") is given, an Exif IFD with DateTimeOriginal (and SubSecTimeOriginal from `subSec`,
 * up to 3 digits); when `thumbnail` (a small JPEG) is given, IFD1 pointing at it, as cameras write it. Any APP1
 * already present is kept after it; readers use the first.
 */
export function withExif(
  jpeg: Buffer,
  options: { orientation?: number; thumbnail?: Buffer; captured?: string; subSec?: string },
): Buffer {
  if (!isJpeg(jpeg)) throw new Error('withExif needs a JPEG');
  const orientation = options.orientation ?? 1;
  const thumb = options.thumbnail;
  const { captured, subSec } = options;
  if (captured !== undefined && captured.length !== 19)
    throw new Error(`captured must be "YYYY:MM:DD HH:MM:SS", got "${captured}"`);
  if (subSec !== undefined && !/^\d{1,3}$/.test(subSec))
    throw new Error(`subSec must be 1 to 3 digits, got "${subSec}"`);
  // Little-endian TIFF: header (8), IFD0 (orientation, and the Exif IFD's offset), IFD1 with three entries,
  // the Exif IFD with DateTimeOriginal (and SubSecTimeOriginal) and the date's 20 bytes, then the thumbnail.
  const ifd0 = 8;
  const ifd0Entries = captured ? 2 : 1;
  const ifd1 = ifd0 + 2 + ifd0Entries * 12 + 4;
  const ifd1Size = thumb ? 2 + 3 * 12 + 4 : 0;
  const exifIfd = ifd1 + ifd1Size;
  const exifEntries = subSec ? 2 : 1;
  const dateAt = exifIfd + 2 + exifEntries * 12 + 4;
  const thumbAt = captured ? dateAt + 20 : exifIfd;
  const tiffSize = thumbAt + (thumb?.length ?? 0);
  const segmentLength = 2 + 6 + tiffSize;
  if (segmentLength > 0xffff) throw new Error(`EXIF segment too large (${segmentLength} bytes): shrink the thumbnail`);

  const app1 = Buffer.alloc(4 + 6 + tiffSize);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(segmentLength, 2);
  app1.write('Exif\0\0', 4, 'latin1');
  const t = app1.subarray(10);
  t.write('II', 0, 'latin1');
  t.writeUInt16LE(42, 2);
  t.writeUInt32LE(ifd0, 4);
  const entry = (at: number, tag: number, type: 2 | 3 | 4, value: number, count = 1) => {
    t.writeUInt16LE(tag, at);
    t.writeUInt16LE(type, at + 2);
    t.writeUInt32LE(count, at + 4);
    if (type === 3) t.writeUInt16LE(value, at + 8);
    else t.writeUInt32LE(value, at + 8);
  };
  t.writeUInt16LE(ifd0Entries, ifd0);
  entry(ifd0 + 2, 0x0112, 3, orientation);
  if (captured) entry(ifd0 + 14, 0x8769, 4, exifIfd); // ExifIFDPointer
  t.writeUInt32LE(thumb ? ifd1 : 0, ifd0 + 2 + ifd0Entries * 12);
  if (thumb) {
    t.writeUInt16LE(3, ifd1);
    entry(ifd1 + 2, 0x0103, 3, 6); // Compression: JPEG
    entry(ifd1 + 14, 0x0201, 4, thumbAt); // JPEGInterchangeFormat
    entry(ifd1 + 26, 0x0202, 4, thumb.length); // JPEGInterchangeFormatLength
    t.writeUInt32LE(0, ifd1 + 38);
    thumb.copy(t, thumbAt);
  }
  if (captured) {
    t.writeUInt16LE(exifEntries, exifIfd);
    entry(exifIfd + 2, 0x9003, 2, dateAt, 20); // DateTimeOriginal: 19 characters and a NUL, pointed at
    if (subSec) {
      entry(exifIfd + 14, 0x9291, 2, 0, subSec.length + 1); // SubSecTimeOriginal: inline
      t.write(subSec, exifIfd + 14 + 8, 'latin1');
    }
    t.writeUInt32LE(0, exifIfd + 2 + exifEntries * 12);
    t.write(captured, dateAt, 'latin1');
  }
  return Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}
