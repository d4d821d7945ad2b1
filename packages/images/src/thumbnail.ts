import { open, stat } from 'node:fs/promises';
import { JPEG_HEAD_BYTES, orientedSize, orientSquare, parseJpegHead, type EmbeddedThumbnail } from './exif.js';
import { detailRegion, type DetailRegion } from './detail-region.js';
import { decodeHeicInThread, HeicDecodeError } from './heic.js';
import { INPUT_OPTIONS, MAX_INPUT_PIXELS, sharp, type OutputInfo, type Sharp } from './sharp.js';
import { decodeProgressiveDc, readDcScans } from './progressive.js';
import { computeSignals, detailSignals, SIGNAL_SIDE, type QualitySignals } from './signals.js';

export interface Thumbnail {
  /** Square side, px. */
  size: number;
  /** Raw sRGB, 3 channels, row-major, size × size × 3 bytes. */
  rgb: Buffer;
  /** Measured at SIGNAL_SIDE px whatever `size` is, so coarse- and fine-pass signals compare. */
  signals: QualitySignals;
  /** Of the original file, after auto-orientation. */
  source: { width: number; height: number; format: string };
  /**
   * What the pixels came from: the full image (shrink-on-load included), or the small image embedded in the
   * file (EXIF thumbnail, HEIC thumbnail item). Signals from an embedded image are measured at its own
   * short side (≤ SIGNAL_SIDE), so they read somewhat less sharp than a decode's. 'dc-scans': a large
   * progressive JPEG read at 1/8 scale from its DC scans alone (see progressive.ts), the scale shrink-on-load
   * would pick, without the rest of the file. Absent means 'image'.
   */
  from?: 'image' | 'embedded' | 'dc-scans';
  /**
   * Focus and noise at full resolution, on a DETAIL_SIDE px square where the thumbnail shows detail, as high
   * in the stored file as it can be (see detailRegion: the rows above it are what it costs), when asked for
   * (ThumbnailOptions.detail) and the photo was decoded from a baseline JPEG or a non-interlaced PNG file
   * (see STRIP_FORMATS): a thumbnail cannot show either (noise is averaged away, a slight defocus is below a pixel).
   */
  detail?: Detail;
}

export interface ThumbnailOptions {
  signal?: AbortSignal;
  /**
   * Also measure Thumbnail.detail: always (`true`), or only when the thumbnail leaves it open — a test of the
   * thumbnail's own signals, made once they are measured. The square costs up to a full-resolution decode
   * (see detailRegion), so it is worth taking only where its answer can change a verdict.
   */
  detail?: boolean | ((thumb: Pick<Thumbnail, 'signals' | 'source'>) => boolean);
}

export interface Detail {
  /** At 1:1, in the softer direction (see directionalSharpness): camera shake shows. */
  sharpness: number;
  /** As QualitySignals.noise, at 1:1 (8-bit levels). */
  noise: number;
}

/** Formats whose full-resolution square is read a strip at a time (when not progressive or interlaced). */
const STRIP_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png']);

/** Side (px) of the full-resolution square the detail is measured on. */
export const DETAIL_SIDE = 384;

/** A photo that cannot be read: a permanent failure to record against the photo, never worth a retry. */
export class ImageReadError extends Error {
  override name = 'ImageReadError';
  /** Short human sentence fit for the job log and the result, e.g. "empty file (0 bytes)". */
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.reason = reason;
  }
}

/**
 * Transparent areas are flattened onto white, as browsers and photo viewers show them, so a logo or a cut-out
 * looks to the model as it would to the user (and stands apart from the grid's dark background).
 */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 };

/**
 * The formats read as photos. sharp opens others too (SVG, libvips' own format), which no camera or phone
 * writes: an SVG is text that renders, so it is refused like any other text that is not a photo.
 */
const PHOTO_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/**
 * A centre-cropped square thumbnail of the photo at `path`, as raw sRGB, with its quality signals.
 *
 * The pipeline renders at least SIGNAL_SIDE px and the thumbnail is derived from that square: focus blur
 * that ruins a photo (σ ≈ 3 px on a 1600 px original) is a fifth of a pixel at 84 px, invisible to any
 * measure, but plain at 320 px. For camera-sized JPEGs this costs no extra decode: shrink-on-load still
 * picks the 1/8 scale.
 *
 * Reads the file by path, never a Buffer: libvips then streams the file and JPEG shrink-on-load decodes
 * at a fraction of full size. Exactly one sharp operation is in flight at a time: a header-only metadata
 * read (source size and format; sharp refuses images over the pixel limit here, before any decode), then
 * one pipeline, then the small square's smaller copies (a millisecond each).
 *
 * An animated GIF or WebP is read as its first frame (sharp reads one page unless asked for more), and
 * `source` is that frame's size: the first frame is what a photo viewer shows before playing it.
 *
 * Throws ImageReadError for files that are not readable images; file-system errors (missing file,
 * permissions) pass through unchanged because they are the caller's problem, not the photo's.
 */
export async function thumbnailFromFile(
  path: string,
  size: number,
  options: ThumbnailOptions = {},
): Promise<Thumbnail> {
  if (!(Number.isInteger(size) && size >= 1))
    throw new RangeError(`thumbnail size must be a positive integer, got ${size}`);
  options.signal?.throwIfAborted();

  const stats = await stat(path);
  if (!stats.isFile()) throw new ImageReadError('not a regular file');
  if (stats.size === 0) throw new ImageReadError('empty file (0 bytes)');
  options.signal?.throwIfAborted();

  const image = sharp(path, INPUT_OPTIONS);
  let metadata: Awaited<ReturnType<typeof image.metadata>>;
  try {
    metadata = await image.metadata();
  } catch (error) {
    throw await toReadError(error, path);
  }
  // Header fields are stored pre-rotation; autoOrient carries the size the user actually sees.
  const width = metadata.autoOrient?.width ?? metadata.width;
  const height = metadata.autoOrient?.height ?? metadata.height;
  if (!PHOTO_FORMATS.has(metadata.format)) throw new ImageReadError(`unsupported format: ${metadata.format}`);
  if (metadata.format === 'heif' && metadata.compression === 'hevc') {
    // The prebuilt libheif has no HEVC decoder: libheif-js (WebAssembly) decodes it instead.
    return heicThumbnail(path, size, options);
  }
  options.signal?.throwIfAborted();

  const side = Math.max(size, SIGNAL_SIDE);
  if (metadata.format === 'jpeg' && metadata.isProgressive && dcScalesSuffices(metadata, size)) {
    const scans = await readFileDcScans(path);
    const thumb =
      scans &&
      (await thumbnailFromDcScans(scans, size, { orientation: metadata.orientation ?? 1, signal: options.signal }));
    if (thumb) return thumb;
  }
  let data: Buffer;
  let info: { width: number; height: number; channels: number };
  try {
    // Nothing may come before resize but auto-orientation, or JPEG shrink-on-load is lost.
    ({ data, info } = await squareRgb(image.autoOrient(), side));
  } catch (error) {
    throw await toReadError(error, path);
  }
  if (info.width !== side || info.height !== side || info.channels !== 3 || data.length !== side * side * 3) {
    throw new Error(
      `thumbnail pipeline returned ${info.width} × ${info.height} × ${info.channels}, expected ${side} × ${side} × 3`,
    );
  }

  const thumb = await finish(data, side, size, { width, height, format: metadata.format }, 'image');
  // Only a file libvips reads a strip at a time gives the square for time, not memory: a progressive JPEG
  // or an interlaced PNG would cost a second whole decode, a WebP its whole decoded image (about 100 MB more
  // at 12 MP, measured).
  if (!STRIP_FORMATS.has(metadata.format) || metadata.isProgressive) return thumb;
  if (!(typeof options.detail === 'function' ? options.detail(thumb) : options.detail)) return thumb;
  options.signal?.throwIfAborted();
  const region = detailRegion(data, side, metadata.orientation ?? 1, metadata, DETAIL_SIDE);
  return { ...thumb, detail: await detailOf(path, region) };
}

/**
 * Focus and noise on a square of the frame at full resolution (where: see detailRegion): a second pipeline,
 * after the thumbnail's (still one in flight). The square is cut from the stored image, not the upright one:
 * both measures are the same whichever way it is turned, and turning first would make libvips hold the whole
 * decoded image (72 MB for 24 MP); cut first, it decodes the rows down to the square's bottom and keeps only
 * a strip of them, so the square costs time (more the further down it sits), not memory.
 */
async function detailOf(path: string, region: DetailRegion): Promise<Detail> {
  const { data, info } = await sharp(path, INPUT_OPTIONS)
    .extract(region)
    .flatten({ background: FLATTEN_BACKGROUND })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return detailSignals(data, info.width, info.height);
}

/**
 * Whether a progressive JPEG of this stored size is read from its DC scans for a `size` px thumbnail: when its
 * 1/8 scale still covers the square rendered for the signals (shrink-on-load would pick 1/8 for it too).
 * Smaller progressive files take the ordinary decode, whose whole-image buffer is then small anyway.
 */
export function dcScalesSuffices(stored: { width: number; height: number }, size: number): boolean {
  return Math.min(Math.ceil(stored.width / 8), Math.ceil(stored.height / 8)) >= Math.max(size, SIGNAL_SIDE);
}

/**
 * A thumbnail from the first bytes of a large progressive JPEG (`readDcScans` gives them): its 1/8 scale
 * decoded from the DC scans, oriented by `orientation` (from the file's EXIF). Undefined when the file is one
 * the DC decoder leaves to libvips (see progressive.ts): decode the whole file instead.
 */
export async function thumbnailFromDcScans(
  head: Uint8Array,
  size: number,
  options: { orientation?: number; signal?: AbortSignal } = {},
): Promise<Thumbnail | undefined> {
  if (!(Number.isInteger(size) && size >= 1))
    throw new RangeError(`thumbnail size must be a positive integer, got ${size}`);
  const orientation = options.orientation ?? 1;
  // Refused from the frame header, before the decoder sizes its planes by it.
  const header = parseJpegHead(head);
  if (header) checkPixelLimit(header.width, header.height, orientation);
  const result = decodeProgressiveDc(head, true);
  if (result.kind !== 'image') return undefined;
  const dc = result.image;
  checkPixelLimit(dc.stored.width, dc.stored.height, orientation);
  options.signal?.throwIfAborted();
  const side = Math.max(size, SIGNAL_SIDE);
  const { data: square } = await squareRgb(
    sharp(dc.data, { ...INPUT_OPTIONS, raw: { width: dc.width, height: dc.height, channels: dc.channels } }),
    side,
  );
  // The centre square of the stored image, turned, is the centre square of the upright one.
  return finish(
    orientSquare(square, side, orientation),
    side,
    size,
    { ...orientedSize(dc.stored.width, dc.stored.height, orientation), format: 'jpeg' },
    'dc-scans',
  );
}

/** A progressive JPEG's first bytes through its DC scans, read from the file by `readDcScans` (progressive.ts). */
async function readFileDcScans(path: string): Promise<Buffer | undefined> {
  const handle = await open(path, 'r');
  try {
    const readRange = async (start: number, end: number): Promise<Buffer> => {
      const buffer = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    };
    const head = await readRange(0, JPEG_HEAD_BYTES);
    return await readDcScans(head, head.length < JPEG_HEAD_BYTES, readRange);
  } finally {
    await handle.close();
  }
}

/**
 * A HEIC photo's thumbnail through libheif-js: the embedded thumbnail item when its short side covers the
 * cell (and it has the photo's aspect ratio), otherwise the full image. The file is read whole (HEIC files
 * are a few MB) by a short-lived thread, which decodes and box-reduces it (see decodeHeicInThread).
 */
async function heicThumbnail(path: string, size: number, options: { signal?: AbortSignal }): Promise<Thumbnail> {
  let decoded: Awaited<ReturnType<typeof decodeHeicInThread>>;
  try {
    // In a short-lived thread: libheif-js's WebAssembly memory is not kept for the life of the process. The
    // thread reads the file itself, straight into that memory: no copy of it is held here.
    decoded = await decodeHeicInThread({ path }, { minSide: size, keepSide: Math.max(size, SIGNAL_SIDE) });
  } catch (error) {
    if (error instanceof HeicDecodeError)
      throw new ImageReadError(`corrupt or unsupported HEIC: ${error.message}`, { cause: error });
    throw error;
  }
  options.signal?.throwIfAborted();
  const side = Math.max(
    size,
    decoded.fromThumbnail ? Math.min(SIGNAL_SIDE, decoded.width, decoded.height) : SIGNAL_SIDE,
  );
  const { data } = await squareRgb(
    sharp(decoded.rgba, { ...INPUT_OPTIONS, raw: { width: decoded.width, height: decoded.height, channels: 4 } }),
    side,
  );
  return finish(data, side, size, { ...decoded.primary, format: 'heif' }, decoded.fromThumbnail ? 'embedded' : 'image');
}

/** The end of every thumbnail pipeline: centre-cropped square, alpha flattened, 8-bit sRGB, raw. */
function squareRgb(image: Sharp, side: number): Promise<{ data: Buffer; info: OutputInfo }> {
  return image
    .resize(side, side, { fit: 'cover', position: 'centre' })
    .flatten({ background: FLATTEN_BACKGROUND })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
}

/**
 * Derives the thumbnail and the signals from a side × side square rendered by one pipeline: each smaller
 * copy is made by sharp from that square (Lanczos 3, like every resize here), one operation after the other.
 */
async function finish(
  square: Buffer,
  side: number,
  size: number,
  source: Thumbnail['source'],
  from: NonNullable<Thumbnail['from']>,
): Promise<Thumbnail> {
  if (square.length !== side * side * 3)
    throw new Error(`thumbnail pipeline returned ${square.length} bytes, expected ${side * side * 3}`);
  const signalSide = Math.min(side, SIGNAL_SIDE);
  const analysis = await downscaleSquare(square, side, signalSide);
  return {
    size,
    rgb: await downscaleSquare(square, side, size),
    signals: computeSignals(analysis, signalSide, signalSide),
    source,
    ...(from !== 'image' && { from }),
  };
}

/**
 * A `to` × `to` copy of a raw RGB square, by sharp: native and vectorised, about 1 ms for 320 → 233 px where
 * the same Lanczos 3 in JS took 4.5. A second, tiny operation, after the pipeline's: still one in flight.
 */
async function downscaleSquare(square: Buffer, side: number, to: number): Promise<Buffer> {
  if (to === side) return square;
  const { data, info } = await sharp(square, { ...INPUT_OPTIONS, raw: { width: side, height: side, channels: 3 } })
    .resize(to, to, { kernel: 'lanczos3' })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== to || info.height !== to || info.channels !== 3)
    throw new Error(
      `thumbnail pipeline (downscale) returned ${info.width} × ${info.height} × ${info.channels}, expected ${to} × ${to} × 3`,
    );
  return data;
}

/**
 * A thumbnail from a small JPEG held in memory: the EXIF thumbnail embedded in a camera JPEG's head
 * (see `findEmbeddedThumbnail` / `embeddedThumbnailFits` in exif.ts). The embedded JPEG has no EXIF of its
 * own, so the main image's `orientation` is applied here (on the square, after the centre crop). `source`
 * is the main image's stored size, reported upright; without it the embedded image's is used.
 *
 * Signals are measured at the embedded image's short side (e.g. 120 px for 160 × 120) when it is below
 * SIGNAL_SIDE: a coarse-pass hint, less sensitive to blur than a decode's. The fine pass decodes the file.
 */
export async function thumbnailFromBytes(
  jpeg: Buffer,
  size: number,
  options: { orientation?: number; source?: { width: number; height: number }; signal?: AbortSignal } = {},
): Promise<Thumbnail> {
  if (!(Number.isInteger(size) && size >= 1))
    throw new RangeError(`thumbnail size must be a positive integer, got ${size}`);
  options.signal?.throwIfAborted();
  const orientation = options.orientation ?? 1;
  // Strict: libjpeg only warns about corrupt entropy data and would decode noise. A doubtful embedded
  // thumbnail is refused, and the caller falls back to the file itself.
  const image = sharp(jpeg, { ...INPUT_OPTIONS, failOn: 'warning' });
  let square: Buffer;
  let info: { width: number; height: number; channels: number };
  let side: number;
  try {
    const metadata = parseJpegHead(jpeg);
    if (!metadata) throw new Error('not a JPEG, or no frame header');
    side = Math.max(size, Math.min(SIGNAL_SIDE, metadata.width, metadata.height));
    ({ data: square, info } = await squareRgb(image, side));
    options.signal?.throwIfAborted();
    if (info.width !== side || info.height !== side || info.channels !== 3) {
      throw new Error(`embedded thumbnail pipeline returned ${info.width} × ${info.height} × ${info.channels}`);
    }
    const stored = options.source ?? { width: metadata.width, height: metadata.height };
    const upright = orientedSize(stored.width, stored.height, orientation);
    return await finish(
      orientSquare(square, side, orientation),
      side,
      size,
      { ...upright, format: 'jpeg' },
      'embedded',
    );
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (error instanceof Error && /thumbnail pipeline/.test(error.message)) throw error;
    throw new ImageReadError(
      `corrupt embedded thumbnail: ${firstLine(error instanceof Error ? error.message : String(error))}`,
      { cause: error },
    );
  }
}

/**
 * `thumbnailFromBytes` for what `findEmbeddedThumbnail` returned: orientation and source size included.
 * Refuses the thumbnail of an image over the pixel limit, as thumbnailFromFile refuses the image: a photo
 * that can never be decoded must not pass for a readable one on its thumbnail alone.
 */
export async function thumbnailFromEmbedded(
  embedded: EmbeddedThumbnail,
  size: number,
  options: { signal?: AbortSignal } = {},
): Promise<Thumbnail> {
  checkPixelLimit(embedded.image.width, embedded.image.height, embedded.orientation);
  return thumbnailFromBytes(embedded.jpeg, size, {
    orientation: embedded.orientation,
    source: embedded.image,
    ...options,
  });
}

/**
 * The benchmark's reference floor: the barest sharp thumbnail of a file (path input, auto-orient, centre
 * crop, raw RGB), with this module's process-wide sharp settings. No signals, no checks.
 */
export async function bareThumbnail(path: string, size: number): Promise<Buffer> {
  return sharp(path, INPUT_OPTIONS)
    .autoOrient()
    .resize(size, size, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer();
}

/** Maps libvips' messages to a reason a user can act on; the original error stays as the cause. */
async function toReadError(error: unknown, path: string): Promise<Error> {
  if (!(error instanceof Error)) return new ImageReadError(`unreadable image: ${String(error)}`, { cause: error });
  const message = error.message;
  if (/Input file is missing/i.test(message)) return error;
  if (/unsupported image format/i.test(message)) {
    return new ImageReadError('not an image: unsupported or unrecognised format', { cause: error });
  }
  if (/exceeds pixel limit/i.test(message)) {
    return new ImageReadError(tooLarge(await headerSize(path)), { cause: error });
  }
  return new ImageReadError(`corrupt or truncated image: ${firstLine(message)}`, { cause: error });
}

/**
 * Refuses an image whose header claims more pixels than the limit (a decompression bomb, or simply too big),
 * before anything is decoded or even downloaded: the caller may know the size from the file's head alone.
 */
export function checkPixelLimit(width: number, height: number, orientation = 1): void {
  if (width * height > MAX_INPUT_PIXELS) throw new ImageReadError(tooLarge(orientedSize(width, height, orientation)));
}

/** The reason given for an image over the pixel limit, with its (upright) size when known. */
function tooLarge(size: { width: number; height: number } | undefined): string {
  const limit = `${MAX_INPUT_PIXELS / 1_000_000} MP limit`;
  return size
    ? `image too large: ${size.width} × ${size.height} pixels exceeds the ${limit}`
    : `image too large: exceeds the ${limit}`;
}

/**
 * The size an oversized image claims, for the error message. sharp refuses to read even the header past
 * the pixel limit, so this opens it again without one; metadata() reads the header only and decodes nothing.
 */
async function headerSize(path: string): Promise<{ width: number; height: number } | undefined> {
  try {
    const metadata = await sharp(path, { ...INPUT_OPTIONS, limitInputPixels: false }).metadata();
    return metadata.autoOrient ?? { width: metadata.width, height: metadata.height };
  } catch {
    return undefined;
  }
}

/** libvips' first line, joined to the next when it only introduces it ("…corrupt header:"). */
function firstLine(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const first = lines[0] ?? 'unknown error';
  const line = first.endsWith(':') && lines[1] ? `${first} ${lines[1]}` : first;
  return line.replace(/:$/, '');
}
