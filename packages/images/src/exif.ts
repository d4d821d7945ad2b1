/**
 * Reads what a photo's first bytes say about it, in plain JS (no sharp, no decode): a JPEG's size from its
 * SOF marker, its EXIF orientation and capture time (DateTimeOriginal), whether it is progressive, and where
 * its embedded EXIF thumbnail (IFD1 JPEGInterchangeFormat / Length) lies. Cameras put that thumbnail (about 160 × 120) in the APP1 segment at
 * the very start of the file, so a range read of the head is enough for the coarse pass.
 *
 * Writing such a segment (`withExif`, for the benchmark corpus and the tests) is in testing/exif-writer.ts.
 */

/** How much of a file's head to read for the fast path: APP1 is at most 64 KB, and SOF follows it. */
export const JPEG_HEAD_BYTES = 65_536 + 4_096;

export interface JpegHeader {
  /** Stored size (before orientation), from the SOF marker. */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when absent or invalid). */
  orientation: number;
  progressive: boolean;
  /** Where the embedded EXIF thumbnail lies in the file, when IFD1 names one. */
  thumbnail?: { offset: number; length: number };
  /** When the photo was taken (see TiffInfo.captured), when its EXIF says. */
  captured?: number;
}

export interface EmbeddedThumbnail {
  /** The embedded JPEG's bytes (a view into the head). */
  jpeg: Buffer;
  /** The embedded JPEG's stored size. */
  width: number;
  height: number;
  /** The main image's EXIF orientation, which applies to the thumbnail too. */
  orientation: number;
  /** The main image's stored size (before orientation). */
  image: { width: number; height: number };
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP1 = 0xe1;

/** SOF markers that carry a frame size: C0–CF except DHT (C4), JPG (C8) and DAC (CC). */
function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function isProgressiveSof(marker: number): boolean {
  return marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce;
}

export function isJpeg(head: Uint8Array): boolean {
  return head.length >= 3 && head[0] === 0xff && head[1] === SOI && head[2] === 0xff;
}

/**
 * Parses a JPEG's head. Returns null when `head` is not a JPEG or ends before the SOF marker (a head that
 * is too short, or a file whose metadata is bigger than the head).
 */
export function parseJpegHead(head: Uint8Array): JpegHeader | null {
  if (!isJpeg(head)) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let orientation = 1;
  let thumbnail: JpegHeader['thumbnail'];
  let captured: number | undefined;
  let pos = 2;
  while (pos + 4 <= head.length) {
    if (head[pos] !== 0xff) return null;
    let marker = head[pos + 1]!;
    // Fill bytes: any number of 0xFF before a marker.
    while (marker === 0xff && pos + 2 < head.length) marker = head[++pos + 1]!;
    if (marker === SOI || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      pos += 2;
      continue;
    }
    if (marker === EOI || marker === SOS) return null;
    if (pos + 4 > head.length) return null;
    const length = view.getUint16(pos + 2);
    if (length < 2) return null;
    const start = pos + 4;
    const end = pos + 2 + length;
    if (isSof(marker)) {
      if (start + 5 > head.length) return null;
      const height = view.getUint16(start + 1);
      const width = view.getUint16(start + 3);
      if (width === 0 || height === 0) return null;
      return {
        width,
        height,
        orientation,
        progressive: isProgressiveSof(marker),
        ...(thumbnail && { thumbnail }),
        ...(captured !== undefined && { captured }),
      };
    }
    if (marker === APP1 && end <= head.length && isExifHeader(head, start)) {
      const exif = parseTiff(head.subarray(start + 6, end));
      if (exif) {
        orientation = exif.orientation;
        if (exif.thumbnail) thumbnail = { offset: start + 6 + exif.thumbnail.offset, length: exif.thumbnail.length };
        captured = exif.captured;
      }
    }
    pos = end;
  }
  return null;
}

function isExifHeader(bytes: Uint8Array, at: number): boolean {
  // "Exif\0\0"
  return (
    bytes[at] === 0x45 &&
    bytes[at + 1] === 0x78 &&
    bytes[at + 2] === 0x69 &&
    bytes[at + 3] === 0x66 &&
    bytes[at + 4] === 0 &&
    bytes[at + 5] === 0
  );
}

interface TiffInfo {
  orientation: number;
  /** Relative to the TIFF header. */
  thumbnail?: { offset: number; length: number };
  /**
   * DateTimeOriginal (with SubSecTimeOriginal when present) as milliseconds since 1970, the camera's clock read
   * as if it were UTC: EXIF gives no time zone, so the figure orders one camera's photos (a burst, a day) and
   * measures the time between them, but is no true instant.
   */
  captured?: number;
}

const EXIF_IFD = 0x8769;
const DATE_TIME_ORIGINAL = 0x9003;
const SUB_SEC_TIME_ORIGINAL = 0x9291;
const ASCII = 2;

/** "YYYY:MM:DD HH:MM:SS" (and sub-second digits) as TiffInfo.captured; undefined for a blank or invalid date. */
export function parseExifDate(text: string, subSec?: string): number | undefined {
  const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return undefined;
  const fraction = subSec && /^\d+/.test(subSec.trim()) ? Number(`0.${/^\d+/.exec(subSec.trim())![0]}`) : 0;
  return Date.UTC(year, month - 1, day, hour, minute, second) + Math.round(fraction * 1000);
}

/** Reads IFD0's Orientation, IFD1's thumbnail pointers and the Exif IFD's capture time from a TIFF block ("II*\0" or "MM\0*"). */
function parseTiff(tiff: Uint8Array): TiffInfo | null {
  if (tiff.length < 8) return null;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return null;
  if (view.getUint16(2, little) !== 42) return null;
  const u16 = (at: number) => view.getUint16(at, little);
  const u32 = (at: number) => view.getUint32(at, little);

  /** Entries of the IFD at `offset` as tag → value (SHORT/LONG scalars only), plus the next IFD's offset. */
  const readIfd = (offset: number): { tags: Map<number, number>; next: number } | null => {
    if (offset < 8 || offset + 2 > tiff.length) return null;
    const count = u16(offset);
    if (offset + 2 + count * 12 + 4 > tiff.length) return null;
    const tags = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const entry = offset + 2 + i * 12;
      const type = u16(entry + 2);
      const n = u32(entry + 4);
      if (n !== 1) continue;
      if (type === 3) tags.set(u16(entry), u16(entry + 8));
      else if (type === 4) tags.set(u16(entry), u32(entry + 8));
    }
    return { tags, next: u32(offset + 2 + count * 12) };
  };

  /** An ASCII entry of the IFD at `offset` (without its NUL), inline or pointed at; undefined if absent or out of bounds. */
  const readAscii = (offset: number, tag: number): string | undefined => {
    if (offset < 8 || offset + 2 > tiff.length) return undefined;
    const count = u16(offset);
    if (offset + 2 + count * 12 > tiff.length) return undefined;
    for (let i = 0; i < count; i++) {
      const entry = offset + 2 + i * 12;
      if (u16(entry) !== tag || u16(entry + 2) !== ASCII) continue;
      const n = u32(entry + 4);
      const at = n <= 4 ? entry + 8 : u32(entry + 8);
      if (n > 64 || at + n > tiff.length) return undefined;
      return String.fromCharCode(...tiff.subarray(at, at + n)).replace(/\0.*$/s, '');
    }
    return undefined;
  };

  const ifd0 = readIfd(u32(4));
  if (!ifd0) return null;
  const rawOrientation = ifd0.tags.get(0x0112) ?? 1;
  const orientation = rawOrientation >= 1 && rawOrientation <= 8 ? rawOrientation : 1;
  const exifIfd = ifd0.tags.get(EXIF_IFD);
  const date = exifIfd === undefined ? undefined : readAscii(exifIfd, DATE_TIME_ORIGINAL);
  const captured = date === undefined ? undefined : parseExifDate(date, readAscii(exifIfd!, SUB_SEC_TIME_ORIGINAL));
  const info: TiffInfo = { orientation, ...(captured !== undefined && { captured }) };
  const ifd1 = ifd0.next !== 0 ? readIfd(ifd0.next) : null;
  const offset = ifd1?.tags.get(0x0201);
  const length = ifd1?.tags.get(0x0202);
  if (offset === undefined || length === undefined || offset === 0 || length === 0) return info;
  // The thumbnail lies inside the EXIF segment: pointers past it (into the image data, or beyond the file)
  // are damaged or hostile, and what they point at is not the thumbnail.
  if (offset < 8 || offset + length > tiff.length) return info;
  return { ...info, thumbnail: { offset, length } };
}

/**
 * The embedded EXIF thumbnail, when the head holds all of it and it is a JPEG with a readable size; null
 * otherwise (no EXIF, no IFD1, a thumbnail outside its EXIF segment or beyond the head, a non-JPEG thumbnail).
 */
export function findEmbeddedThumbnail(head: Buffer): EmbeddedThumbnail | null {
  const header = parseJpegHead(head);
  if (!header?.thumbnail) return null;
  const { offset, length } = header.thumbnail;
  if (offset + length > head.length) return null;
  const jpeg = head.subarray(offset, offset + length);
  const own = parseJpegHead(jpeg);
  if (!own) return null;
  return {
    jpeg,
    width: own.width,
    height: own.height,
    orientation: header.orientation,
    image: { width: header.width, height: header.height },
  };
}

/** Largest relative difference of aspect ratios for a thumbnail to count as the same picture (not stale). */
export const ASPECT_TOLERANCE = 0.02;

/**
 * Whether an embedded thumbnail can stand in for a full decode at a `cell` px square: its short side is at
 * least the cell (a centre crop needs no upscaling), and it has the main image's aspect ratio, so a stale
 * thumbnail left behind by an in-camera or editor crop (or a letterboxed one) is not used.
 */
export function embeddedThumbnailFits(
  thumb: Pick<EmbeddedThumbnail, 'width' | 'height' | 'image'>,
  cell: number,
): boolean {
  if (Math.min(thumb.width, thumb.height) < cell) return false;
  const own = thumb.width / thumb.height;
  const main = thumb.image.width / thumb.image.height;
  return Math.abs(own - main) / main <= ASPECT_TOLERANCE;
}

/** Size after applying an EXIF orientation: 5–8 swap width and height. */
export function orientedSize(width: number, height: number, orientation: number): { width: number; height: number } {
  return orientation >= 5 ? { width: height, height: width } : { width, height };
}

/**
 * Applies EXIF orientation 1–8 to a square raw RGB image (side × side × 3), returning a new buffer (or `out`,
 * filled, when given: a caller's scratch buffer of the same length, not `rgb` itself): what an auto-orienting
 * viewer shows. On a square, centre-cropping commutes with every orientation.
 */
export function orientSquare(
  rgb: Uint8Array,
  side: number,
  orientation: number,
  out: Buffer = Buffer.allocUnsafe(rgb.length),
): Buffer {
  if (rgb.length !== side * side * 3) throw new RangeError(`expected ${side * side * 3} bytes, got ${rgb.length}`);
  if (out.length !== rgb.length) throw new RangeError(`expected an output of ${rgb.length} bytes, got ${out.length}`);
  if (
    out.buffer === rgb.buffer &&
    out.byteOffset < rgb.byteOffset + rgb.length &&
    rgb.byteOffset < out.byteOffset + out.length
  )
    throw new RangeError('the output overlaps the input');
  if (orientation < 2 || orientation > 8) {
    out.set(rgb);
    return out;
  }
  const n = side - 1;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      // (sx, sy): the stored pixel shown at (x, y).
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2:
          [sx, sy] = [n - x, y];
          break; // mirrored horizontally
        case 3:
          [sx, sy] = [n - x, n - y];
          break; // turned 180°
        case 4:
          [sx, sy] = [x, n - y];
          break; // mirrored vertically
        case 5:
          [sx, sy] = [y, x];
          break; // transposed
        case 6:
          [sx, sy] = [y, n - x];
          break; // stored turned 90° anticlockwise: show turned 90° clockwise
        case 7:
          [sx, sy] = [n - y, n - x];
          break; // transversed
        default:
          [sx, sy] = [n - y, x];
          break; // 8: show turned 90° anticlockwise
      }
      const o = (y * side + x) * 3;
      const s = (sy * side + sx) * 3;
      out[o] = rgb[s]!;
      out[o + 1] = rgb[s + 1]!;
      out[o + 2] = rgb[s + 2]!;
    }
  }
  return out;
}
