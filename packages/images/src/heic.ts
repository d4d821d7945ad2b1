/**
 * HEIC (HEVC in HEIF, as iPhones write it) through libheif compiled to WebAssembly (libheif-js): sharp's
 * prebuilt libheif has no HEVC decoder. Decodes to interleaved RGBA inside the WebAssembly heap and hands
 * sharp a view of it, so the pixels are never copied into a JS Buffer.
 *
 * HEIC files carry a small embedded thumbnail item (320 × 240 on iPhones); when it is at least as large as
 * asked and has the primary image's aspect ratio, it is decoded instead of the primary image: a few
 * hundred KB of WebAssembly memory instead of ~48 MB for 12 MP.
 *
 * Memory: the module is instantiated once per process and reused; WebAssembly memory grows to the largest
 * image decoded so far and never shrinks, so a process that decodes one 12 MP primary image to RGBA keeps
 * about 70 MB of it (file + YCbCr + RGBA). Decodes are serialised (one at a time). The worker decodes in a
 * short-lived thread instead (decodeHeicInThread), in the image's own YCbCr planes, reduced from there
 * (decodeHeicShrunk): no RGBA copy of the whole image (48 MB for 12 MP) is ever made.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ASPECT_TOLERANCE } from './exif.js';
import { clampByte } from './pixels.js';

/** The C API of libheif as exported by libheif-js's wasm build (raw pointers, struct returns via sret). */
interface HeifModule {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  HEAP32: Int32Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _heif_context_alloc(): number;
  _heif_context_free(ctx: number): void;
  _heif_context_read_from_memory_without_copy(
    err: number,
    ctx: number,
    data: number,
    size: number,
    options: number,
  ): void;
  _heif_context_get_primary_image_handle(err: number, ctx: number, out: number): void;
  _heif_image_handle_get_width(handle: number): number;
  _heif_image_handle_get_height(handle: number): number;
  _heif_image_handle_get_number_of_thumbnails(handle: number): number;
  _heif_image_handle_get_list_of_thumbnail_IDs(handle: number, ids: number, count: number): number;
  _heif_image_handle_get_thumbnail(err: number, handle: number, id: number, out: number): void;
  _heif_image_handle_release(handle: number): void;
  _heif_decode_image(
    err: number,
    handle: number,
    out: number,
    colorspace: number,
    chroma: number,
    options: number,
  ): void;
  _heif_image_get_plane_readonly(image: number, channel: number, stride: number): number;
  _heif_image_get_width(image: number, channel: number): number;
  _heif_image_get_height(image: number, channel: number): number;
  _heif_image_release(image: number): void;
  _heif_image_handle_has_alpha_channel(handle: number): number;
  _heif_image_handle_get_luma_bits_per_pixel(handle: number): number;
  _heif_image_handle_get_chroma_bits_per_pixel(handle: number): number;
  _heif_image_get_colorspace(image: number): number;
  _heif_image_get_chroma_format(image: number): number;
  _heif_image_get_bits_per_pixel_range(image: number, channel: number): number;
  _heif_image_get_nclx_color_profile(err: number, image: number, out: number): void;
  _heif_nclx_color_profile_free(profile: number): void;
}

// libheif enum values (heif_colorspace, heif_chroma, heif_channel).
const COLORSPACE_YCBCR = 0;
const COLORSPACE_RGB = 1;
const COLORSPACE_MONOCHROME = 2;
const CHROMA_MONOCHROME = 0;
const CHROMA_420 = 1;
const CHROMA_422 = 2;
const CHROMA_444 = 3;
const CHROMA_INTERLEAVED_RGBA = 11;
const CHANNEL_Y = 0;
const CHANNEL_CB = 1;
const CHANNEL_CR = 2;
const CHANNEL_INTERLEAVED = 10;

let modulePromise: Promise<HeifModule> | undefined;

/** Instantiates libheif-js's wasm build once (its `wasm.js` entry resolves the .wasm against the cwd: avoided). */
function heif(): Promise<HeifModule> {
  modulePromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const dir = join(dirname(require.resolve('libheif-js/package.json')), 'libheif-wasm');
    const wasmBinary = await readFile(join(dir, 'libheif.wasm'));
    const factory = require(join(dir, 'libheif.js')) as (options: {
      wasmBinary: Buffer;
    }) => HeifModule & { ready?: Promise<unknown> };
    const module = factory({ wasmBinary });
    if (module.ready) await module.ready;
    return module;
  })();
  return modulePromise;
}

/** ISO BMFF `ftyp` with a HEIF brand (heic, heix, mif1, msf1, hevc…). AVIF is left to sharp. */
export function isHeic(head: Uint8Array): boolean {
  if (head.length < 12) return false;
  if (String.fromCharCode(...head.subarray(4, 8)) !== 'ftyp') return false;
  const size = Math.min(new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0), head.length);
  const brands: string[] = [];
  for (let at = 8; at + 4 <= size; at += 4)
    if (at !== 12) brands.push(String.fromCharCode(...head.subarray(at, at + 4)));
  if (brands.includes('avif') || brands.includes('avis')) return false;
  return brands.some((b) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(b));
}

export class HeicDecodeError extends Error {
  override name = 'HeicDecodeError';
}

export interface DecodedHeic {
  /** Interleaved RGBA, width × height × 4 bytes, upright (libheif applies irot/imir). A view into WebAssembly memory: valid until `release()`. */
  rgba: Buffer;
  width: number;
  height: number;
  /** The primary image's size, upright. */
  primary: { width: number; height: number };
  /** Whether the embedded thumbnail was decoded instead of the primary image. */
  fromThumbnail: boolean;
  /** Frees the decoded image; `rgba` must not be used afterwards. */
  release(): void;
}

/**
 * A turn-taking lock: `acquire()` resolves once every earlier holder has called its release, and gives the
 * release to call.
 */
function turnstile(): () => Promise<() => void> {
  let tail: Promise<unknown> = Promise.resolve();
  return async () => {
    const previous = tail;
    let release!: () => void;
    tail = new Promise<void>((r) => (release = r));
    await previous;
    return release;
  };
}

/** libheif-js decodes of this thread, one at a time (the RGBA view is valid until its release). */
const decodeTurn = turnstile();

/**
 * Decodes a HEIC file's bytes: the embedded thumbnail when its short side is at least `minSide` and its
 * aspect ratio matches the primary image's, otherwise the primary image. One decode at a time per process:
 * the call waits for the previous one's `release()`.
 */
export async function decodeHeic(bytes: Uint8Array, options: { minSide?: number } = {}): Promise<DecodedHeic> {
  const done = await decodeTurn();
  try {
    const decoded = decodeLocked(await heif(), bytes, options.minSide ?? Infinity);
    let released = false;
    return {
      ...decoded,
      release() {
        if (released) return;
        released = true;
        decoded.release();
        done();
      },
    };
  } catch (error) {
    done();
    throw error;
  }
}

/** One plane of a decoded image in WebAssembly memory (valid until the image is released). */
interface HeifPlane {
  ptr: number;
  stride: number;
  width: number;
  height: number;
}

/** A decode in the image's own YCbCr (or grey) planes, before any colour conversion. */
interface PlanarHeic {
  planes: HeifPlane[];
  /** Kr, Kb of the YCbCr matrix and whether the samples use the full 0–255 range. */
  matrix: { kr: number; kb: number; fullRange: boolean };
}

/** The file to decode: bytes in memory, or a path read straight into WebAssembly memory (no other copy). */
type HeicInput = Uint8Array | { path: string };

/** Largest HEIC file read (a 100 MP photo is far smaller). */
const MAX_HEIC_BYTES = 256 * 1024 * 1024;

/** Copies the input into WebAssembly memory at a fresh allocation; returns its address and size. */
function loadInput(m: HeifModule, input: HeicInput): { data: number; size: number } {
  if (input instanceof Uint8Array) {
    const data = m._malloc(input.length);
    if (!data) throw new HeicDecodeError('out of WebAssembly memory for the file');
    m.HEAPU8.set(input, data);
    return { data, size: input.length };
  }
  const fd = openSync(input.path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_HEIC_BYTES) throw new HeicDecodeError(`file too large for a HEIC (${size} bytes)`);
    const data = m._malloc(size);
    if (!data) throw new HeicDecodeError('out of WebAssembly memory for the file');
    let read = 0;
    while (read < size) {
      // HEAPU8 is re-read each time: it is a new view whenever WebAssembly memory has grown.
      const n = readSync(fd, m.HEAPU8, data + read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return { data, size: read };
  } finally {
    closeSync(fd);
  }
}

/**
 * One decode's WebAssembly allocations: 64 scratch bytes, the file, the libheif context, the image handles
 * taken and the decoded image; `release` frees them all.
 */
interface HeifDecode {
  m: HeifModule;
  /** struct heif_error {code, subcode, message*} at +0, an out-pointer at +16, thumbnail IDs at +32, a stride at +48. */
  scratch: number;
  data: number;
  size: number;
  ctx: number;
  handles: number[];
  /** The decoded image, 0 while there is none. */
  image: number;
  release: () => void;
}

/** Loads the input into WebAssembly memory beside a fresh libheif context. */
function startDecode(m: HeifModule, input: HeicInput): HeifDecode {
  const scratch = m._malloc(64);
  let loaded: { data: number; size: number };
  try {
    loaded = loadInput(m, input);
  } catch (error) {
    m._free(scratch);
    throw error;
  }
  const decode: HeifDecode = {
    m,
    scratch,
    ...loaded,
    ctx: m._heif_context_alloc(),
    handles: [],
    image: 0,
    release: () => {
      if (decode.image) m._heif_image_release(decode.image);
      for (const h of decode.handles) m._heif_image_handle_release(h);
      m._heif_context_free(decode.ctx);
      m._free(decode.data);
      m._free(scratch);
    },
  };
  return decode;
}

/** Throws when the libheif call just made reported an error (in the scratch heif_error). */
function check(decode: HeifDecode, what: string): void {
  const { m, scratch: err } = decode;
  const code = m.HEAP32[err >> 2]!;
  if (code !== 0) throw new HeicDecodeError(`${what} failed (libheif error ${code}/${m.HEAP32[(err >> 2) + 1]})`);
}

/** Reads the container; gives the primary image's handle and its size (upright). */
function readPrimary(decode: HeifDecode): { handle: number; size: { width: number; height: number } } {
  const { m, scratch: err } = decode;
  const out = err + 16;
  m._heif_context_read_from_memory_without_copy(err, decode.ctx, decode.data, decode.size, 0);
  check(decode, 'reading the HEIF container');
  m._heif_context_get_primary_image_handle(err, decode.ctx, out);
  check(decode, 'finding the primary image');
  const handle = m.HEAPU32[out >> 2]!;
  decode.handles.push(handle);
  return {
    handle,
    size: { width: m._heif_image_handle_get_width(handle), height: m._heif_image_handle_get_height(handle) },
  };
}

/**
 * The handle of the smallest embedded thumbnail whose short side is at least `minSide` and whose aspect
 * ratio matches the primary image's, or undefined (none asked for, none fits).
 */
function fittingThumbnail(
  decode: HeifDecode,
  primaryHandle: number,
  primary: { width: number; height: number },
  minSide: number,
): number | undefined {
  const { m, scratch: err } = decode;
  const out = err + 16;
  const ids = err + 32;
  if (!Number.isFinite(minSide) || m._heif_image_handle_get_number_of_thumbnails(primaryHandle) <= 0) return undefined;
  const n = m._heif_image_handle_get_list_of_thumbnail_IDs(primaryHandle, ids, 4);
  let best: { handle: number; short: number } | undefined;
  for (let i = 0; i < n; i++) {
    m._heif_image_handle_get_thumbnail(err, primaryHandle, m.HEAPU32[(ids >> 2) + i]!, out);
    if (m.HEAP32[err >> 2] !== 0) continue;
    const th = m.HEAPU32[out >> 2]!;
    decode.handles.push(th);
    const w = m._heif_image_handle_get_width(th);
    const h = m._heif_image_handle_get_height(th);
    const sameShape =
      Math.abs(w / h - primary.width / primary.height) / (primary.width / primary.height) <= ASPECT_TOLERANCE;
    const short = Math.min(w, h);
    if (sameShape && short >= minSide && (!best || short < best.short)) best = { handle: th, short };
  }
  return best?.handle;
}

/**
 * 8-bit YCbCr without alpha (what phones write) decoded in its own planes, without the RGBA copy of the whole
 * image (48 MB for 12 MP): the caller reduces and converts it (see shrinkPlanar). Undefined for an image
 * coded some other way (more bits, alpha, RGB planes, an unusual matrix): libheif converts those instead.
 */
function decodePlanar(decode: HeifDecode, handle: number): PlanarHeic | undefined {
  const { m, scratch } = decode;
  const out = scratch + 16;
  const eightBit =
    m._heif_image_handle_get_luma_bits_per_pixel(handle) === 8 &&
    m._heif_image_handle_get_chroma_bits_per_pixel(handle) <= 8;
  if (!eightBit || m._heif_image_handle_has_alpha_channel(handle)) return undefined;
  m._heif_decode_image(scratch, handle, out, 99, 99, 0); // heif_colorspace_undefined, heif_chroma_undefined: as coded
  check(decode, 'decoding the image');
  decode.image = m.HEAPU32[out >> 2]!;
  const planes = planesOf(m, decode.image, scratch + 48);
  const matrix = planes ? matrixOf(m, decode.image, scratch) : undefined;
  if (planes && matrix) return { planes, matrix };
  m._heif_image_release(decode.image);
  decode.image = 0;
  return undefined;
}

/** Decodes to interleaved RGBA: a view of WebAssembly memory where the rows are packed, else a copy. */
function decodeRgba(decode: HeifDecode, handle: number): { rgba: Buffer; width: number; height: number } {
  const { m, scratch } = decode;
  const out = scratch + 16;
  m._heif_decode_image(scratch, handle, out, COLORSPACE_RGB, CHROMA_INTERLEAVED_RGBA, 0);
  check(decode, 'decoding the image');
  decode.image = m.HEAPU32[out >> 2]!;
  const image = decode.image;
  const width = m._heif_image_get_width(image, CHANNEL_INTERLEAVED);
  const height = m._heif_image_get_height(image, CHANNEL_INTERLEAVED);
  const stridePtr = scratch + 48;
  const plane = m._heif_image_get_plane_readonly(image, CHANNEL_INTERLEAVED, stridePtr);
  const stride = m.HEAP32[stridePtr >> 2]!;
  if (!plane || width <= 0 || height <= 0) throw new HeicDecodeError('decoding gave no RGBA plane');
  if (stride === width * 4) {
    // Valid while no other WebAssembly call runs (memory could grow and detach it): decodes are serialised.
    return { rgba: Buffer.from(m.HEAPU8.buffer, m.HEAPU8.byteOffset + plane, width * height * 4), width, height };
  }
  const rgba = Buffer.allocUnsafe(width * height * 4);
  for (let y = 0; y < height; y++)
    rgba.set(m.HEAPU8.subarray(plane + y * stride, plane + y * stride + width * 4), y * width * 4);
  return { rgba, width, height };
}

/**
 * Decodes the embedded thumbnail that fits `minSide` (see decodeHeic), else the primary image: to RGBA, or with
 * `planar` in the image's own planes where it can. The caller holds the decode turn until `release()`.
 */
function decodeLocked(
  m: HeifModule,
  input: HeicInput,
  minSide: number,
): Omit<DecodedHeic, 'release'> & { release(): void };
function decodeLocked(
  m: HeifModule,
  input: HeicInput,
  minSide: number,
  planar: true,
): Omit<DecodedHeic, 'release' | 'rgba'> & { rgba?: Buffer; planar?: PlanarHeic; release(): void };
function decodeLocked(
  m: HeifModule,
  input: HeicInput,
  minSide: number,
  planar = false,
): Omit<DecodedHeic, 'release' | 'rgba'> & { rgba?: Buffer; planar?: PlanarHeic; release(): void } {
  const decode = startDecode(m, input);
  const release = decode.release;
  try {
    const { handle: primaryHandle, size: primary } = readPrimary(decode);
    const handle = fittingThumbnail(decode, primaryHandle, primary, minSide) ?? primaryHandle;
    const fromThumbnail = handle !== primaryHandle;
    const inPlanes = planar ? decodePlanar(decode, handle) : undefined;
    if (inPlanes) {
      const { width, height } = inPlanes.planes[0]!;
      return { width, height, primary, fromThumbnail, planar: inPlanes, release };
    }
    const { rgba, width, height } = decodeRgba(decode, handle);
    return { rgba, width, height, primary, fromThumbnail, release };
  } catch (error) {
    release();
    throw error;
  }
}

/** The Y (and Cb, Cr) planes of an 8-bit YCbCr or grey image, or undefined for any other layout. */
function planesOf(m: HeifModule, image: number, stridePtr: number): HeifPlane[] | undefined {
  const colorspace = m._heif_image_get_colorspace(image);
  const chroma = m._heif_image_get_chroma_format(image);
  const channels =
    colorspace === COLORSPACE_MONOCHROME && chroma === CHROMA_MONOCHROME
      ? [CHANNEL_Y]
      : colorspace === COLORSPACE_YCBCR && [CHROMA_420, CHROMA_422, CHROMA_444].includes(chroma)
        ? [CHANNEL_Y, CHANNEL_CB, CHANNEL_CR]
        : undefined;
  if (!channels) return undefined;
  const planes: HeifPlane[] = [];
  for (const channel of channels) {
    if (m._heif_image_get_bits_per_pixel_range(image, channel) !== 8) return undefined;
    const ptr = m._heif_image_get_plane_readonly(image, channel, stridePtr);
    const width = m._heif_image_get_width(image, channel);
    const height = m._heif_image_get_height(image, channel);
    if (!ptr || width <= 0 || height <= 0) return undefined;
    planes.push({ ptr, stride: m.HEAP32[stridePtr >> 2]!, width, height });
  }
  return planes;
}

/**
 * The image's YCbCr matrix from its nclx colour profile (the colr box, or the HEVC stream's VUI), as libheif
 * itself would convert it; without one, libheif's default (BT.601, full range). Undefined for matrices this
 * does not convert (identity/GBR, constant-luminance).
 */
function matrixOf(m: HeifModule, image: number, scratch: number): PlanarHeic['matrix'] | undefined {
  const err = scratch;
  const out = scratch + 16;
  m.HEAPU32[out >> 2] = 0;
  m._heif_image_get_nclx_color_profile(err, image, out);
  const profile = m.HEAP32[err >> 2] === 0 ? m.HEAPU32[out >> 2]! : 0;
  if (!profile) return { kr: 0.299, kb: 0.114, fullRange: true };
  // struct heif_color_profile_nclx { uint8 version; enum primaries; enum transfer; enum matrix; uint8 full_range; … }
  const coefficients = m.HEAP32[(profile + 12) >> 2]!;
  const fullRange = m.HEAPU8[profile + 16] !== 0;
  m._heif_nclx_color_profile_free(profile);
  const k =
    coefficients === 1
      ? [0.2126, 0.0722]
      : coefficients === 5 || coefficients === 6 || coefficients === 2
        ? [0.299, 0.114]
        : coefficients === 9
          ? [0.2627, 0.0593]
          : undefined;
  return k && { kr: k[0]!, kb: k[1]!, fullRange };
}

/**
 * Box-reduces a planar decode by `factor` straight from WebAssembly memory and converts it to RGBA (opaque):
 * each output pixel is the mean of its factor × factor luma block and of the chroma samples under it.
 */
export function shrinkPlanar(
  heap: Uint8Array,
  planar: PlanarHeic,
  factor: number,
): { rgba: Uint8Array; width: number; height: number } {
  const [luma, cb, cr] = planar.planes as [HeifPlane, HeifPlane?, HeifPlane?];
  const { width, height } = luma;
  const w = Math.ceil(width / factor);
  const h = Math.ceil(height / factor);
  const out = new Uint8Array(w * h * 4);
  const acc = new Float64Array(w * 4); // Y, Cb, Cr, count per output column of the current output row
  // Chroma subsampling as shifts: 4:2:0 halves both ways, 4:2:2 across only.
  const sx = cb && cb.width < width ? 1 : 0;
  const sy = cb && cb.height < height ? 1 : 0;
  const { kr, kb, fullRange } = planar.matrix;
  const yScale = fullRange ? 1 : 255 / 219;
  const yOffset = fullRange ? 0 : 16;
  const cScale = fullRange ? 1 : 255 / 224;
  for (let oy = 0; oy < h; oy++) {
    acc.fill(0);
    const yEnd = Math.min(height, (oy + 1) * factor);
    for (let y = oy * factor; y < yEnd; y++) {
      const row = luma.ptr + y * luma.stride;
      const cbRow = cb ? cb.ptr + (y >> sy) * cb.stride : 0;
      const crRow = cr ? cr.ptr + (y >> sy) * cr.stride : 0;
      for (let x = 0; x < width; x++) {
        const o = ((x / factor) | 0) * 4;
        acc[o] = acc[o]! + heap[row + x]!;
        if (cb && cr) {
          acc[o + 1] = acc[o + 1]! + heap[cbRow + (x >> sx)]!;
          acc[o + 2] = acc[o + 2]! + heap[crRow + (x >> sx)]!;
        }
        acc[o + 3] = acc[o + 3]! + 1;
      }
    }
    for (let ox = 0; ox < w; ox++) {
      const o = ox * 4;
      const n = acc[o + 3]!;
      const Y = (acc[o]! / n - yOffset) * yScale;
      const p = (oy * w + ox) * 4;
      if (cb && cr) {
        const Cb = (acc[o + 1]! / n - 128) * cScale;
        const Cr = (acc[o + 2]! / n - 128) * cScale;
        const r = Y + 2 * (1 - kr) * Cr;
        const b = Y + 2 * (1 - kb) * Cb;
        out[p] = clampByte(r);
        out[p + 1] = clampByte((Y - kr * r - kb * b) / (1 - kr - kb));
        out[p + 2] = clampByte(b);
      } else {
        out[p] = out[p + 1] = out[p + 2] = clampByte(Y);
      }
      out[p + 3] = 255;
    }
  }
  return { rgba: out, width: w, height: h };
}

/**
 * What the decoding thread does (heic-thread.ts): decodes with libheif, in the image's own planes where it
 * can, and box-reduces by the largest whole factor keeping the short side ≥ `keepSide`, into a buffer of
 * its own (no view into WebAssembly memory).
 */
export async function decodeHeicShrunk(
  input: HeicInput,
  options: { minSide: number; keepSide: number },
): Promise<ShrunkHeic & { planar: boolean }> {
  const done = await decodeTurn();
  try {
    const m = await heif();
    const decoded = decodeLocked(m, input, options.minSide, true);
    try {
      const factor = Math.max(1, Math.floor(Math.min(decoded.width, decoded.height) / Math.max(1, options.keepSide)));
      const shrunk = decoded.planar
        ? shrinkPlanar(m.HEAPU8, decoded.planar, factor)
        : factor > 1
          ? boxShrinkRgba(decoded.rgba!, decoded.width, decoded.height, factor)
          : { rgba: new Uint8Array(decoded.rgba!), width: decoded.width, height: decoded.height };
      return {
        rgba: Buffer.from(shrunk.rgba.buffer, shrunk.rgba.byteOffset, shrunk.rgba.length),
        width: shrunk.width,
        height: shrunk.height,
        primary: decoded.primary,
        fromThumbnail: decoded.fromThumbnail,
        planar: Boolean(decoded.planar),
      };
    } finally {
      decoded.release();
    }
  } finally {
    done();
  }
}

/** Convenience for tests and tools: decodes a HEIC file by path. */
export async function decodeHeicFile(path: string, options: { minSide?: number } = {}): Promise<DecodedHeic> {
  return decodeHeic(await readFile(path), options);
}

/** A HEIC photo decoded in a short-lived thread and reduced there by whole-pixel box averaging. */
export interface ShrunkHeic {
  /** Interleaved RGBA, width × height × 4 bytes, upright; an ordinary Buffer (no release needed). */
  rgba: Buffer;
  width: number;
  height: number;
  /** The primary image's size, upright. */
  primary: { width: number; height: number };
  fromThumbnail: boolean;
}

/** What the decoding thread is given and what it answers (see heic-thread.ts). */
export interface HeicThreadRequest {
  /** The file's path (read by the thread straight into WebAssembly memory), or its bytes. */
  input: HeicInput;
  minSide: number;
  /** The decoded image is box-reduced by the largest whole factor that keeps its short side ≥ this. */
  keepSide: number;
}
export type HeicThreadAnswer =
  | {
      ok: true;
      rgba: ArrayBuffer;
      width: number;
      height: number;
      primary: { width: number; height: number };
      fromThumbnail: boolean;
    }
  | { ok: false; heic: boolean; message: string };

/**
 * The thread's script: dist/heic-thread.js beside this module once built. Under a TS-running test runner this
 * module is src/heic.ts and the thread still runs the built script (tests run after the build).
 */
function threadScript(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../dist/heic-thread.js', import.meta.url)
    : new URL('./heic-thread.js', import.meta.url);
}

/** Decoding threads, one at a time. */
const threadTurn = turnstile();

/**
 * A full collection of this thread's heap, where the process allows it (the worker runs with `--expose-gc`;
 * elsewhere nothing happens): a HEIC thread adds about 19 MB (thumbnail item) to 68 MB (full decode) while it
 * runs, so the dead Buffers the collector has not reached yet (their memory is outside V8's heap, released only
 * when their objects are collected) would add to the process's peak. A few milliseconds (the old generation
 * stays ~16 MB), against 130 ms for a thumbnail item and about 1.5 s for a full decode.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * `decodeHeicShrunk` without keeping libheif's WebAssembly memory in this process: the decode runs in a
 * worker_thread that is torn down before this resolves, so its WebAssembly memory (≈25 MB after a 12 MP
 * decode) and compiled code (≈30 MB) are returned to the OS instead of staying for the life of the process.
 * Same process, so the memory is still counted in its RSS while the decode runs. The image is reduced in
 * the thread by whole-pixel box averaging (libvips' own first step of a resize) to the largest size whose
 * short side is still ≥ `keepSide`, so only a few hundred KB cross back. One decode at a time.
 */
export async function decodeHeicInThread(
  input: HeicInput,
  options: { minSide: number; keepSide: number },
): Promise<ShrunkHeic> {
  const done = await threadTurn();
  collectGarbage();
  const { Worker } = await import('node:worker_threads');
  const request: HeicThreadRequest = { input, minSide: options.minSide, keepSide: options.keepSide };
  const worker = new Worker(threadScript(), {
    workerData: request,
    // The thread's JS heap holds next to nothing (the WebAssembly memory is outside it): keep V8's share small.
    resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 },
    stdout: false,
    stderr: false,
  });
  try {
    const answer = await new Promise<HeicThreadAnswer>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`HEIC decoding thread exited (${code}) without an answer`)));
    });
    if (!answer.ok) throw answer.heic ? new HeicDecodeError(answer.message) : new Error(answer.message);
    return {
      rgba: Buffer.from(answer.rgba),
      width: answer.width,
      height: answer.height,
      primary: answer.primary,
      fromThumbnail: answer.fromThumbnail,
    };
  } finally {
    await worker.terminate();
    done();
  }
}

/**
 * Box-reduces interleaved RGBA by `factor` (partial blocks at the right and bottom edges averaged over what
 * they hold), averaging colour weighted by alpha as libvips does for images with transparency.
 */
export function boxShrinkRgba(
  rgba: Uint8Array,
  width: number,
  height: number,
  factor: number,
): { rgba: Uint8Array; width: number; height: number } {
  const w = Math.ceil(width / factor);
  const h = Math.ceil(height / factor);
  const out = new Uint8Array(w * h * 4);
  const acc = new Float64Array(w * 5); // r·a, g·a, b·a, a, count per output column of the current output row
  for (let oy = 0; oy < h; oy++) {
    acc.fill(0);
    const yEnd = Math.min(height, (oy + 1) * factor);
    for (let y = oy * factor; y < yEnd; y++) {
      let i = y * width * 4;
      for (let x = 0; x < width; x++, i += 4) {
        const a = rgba[i + 3]!;
        const o = ((x / factor) | 0) * 5;
        acc[o]! += rgba[i]! * a;
        acc[o + 1]! += rgba[i + 1]! * a;
        acc[o + 2]! += rgba[i + 2]! * a;
        acc[o + 3]! += a;
        acc[o + 4]! += 1;
      }
    }
    for (let ox = 0; ox < w; ox++) {
      const o = ox * 5;
      const alpha = acc[o + 3]!;
      const p = (oy * w + ox) * 4;
      if (alpha > 0) {
        out[p] = Math.round(acc[o]! / alpha);
        out[p + 1] = Math.round(acc[o + 1]! / alpha);
        out[p + 2] = Math.round(acc[o + 2]! / alpha);
      }
      out[p + 3] = Math.round(alpha / acc[o + 4]!);
    }
  }
  return { rgba: out, width: w, height: h };
}
