/**
 * Reading one grid's photos: each becomes a thumbnail from the cheapest source that is good enough, one
 * decode at a time, while the next photo's bytes are already being fetched.
 *
 * Sources, cheapest first:
 *   1. embedded — coarse pass: the EXIF thumbnail in a JPEG's head (one range read of ~68 KB instead of
 *      the whole file), when it covers the cell and has the photo's aspect ratio (a stale thumbnail left by
 *      a crop has not);
 *   2. thumbnail — a smaller copy the client uploaded beside the original (`thumbnailPath`), when it covers
 *      the cell and has the original's aspect ratio;
 *   3. transform — with storage transforms on, an image the storage service resized for us;
 *   4. dc-scans — a large progressive JPEG: only its first bytes, through its DC scans (a few hundred KB of
 *      6–10 MB), decoded at 1/8 scale in JS (see @triage/images progressive.ts). libjpeg would hold the whole
 *      image's coefficients (72 MB for 24 MP) and read every scan;
 *   5. original — the whole file, decoded with shrink-on-load.
 * Prefetch is bounded: at most two photos' files are held (the one decoding, the next one arriving), plus
 * the heads of the next few photos (≤ 68 KB each), read ahead so that storage latency overlaps; there is
 * still only one sharp pipeline, since fetching involves no decoding.
 *
 * A read that fails because of storage itself, not the photo, fails no photo: when storage refuses the
 * configuration (wrong key, bucket gone) or is unreachable (the photo's retries spent and a probe of the
 * bucket fails too), the whole read stops with a StorageUnavailableError and the grid is tried again later.
 * Only once the outage has lasted past its limit (`outage: 'fail'`) do photos fail, with the reason.
 */
import {
  ASPECT_TOLERANCE,
  checkPixelLimit,
  dcScalesSuffices,
  embeddedThumbnailFits,
  findEmbeddedThumbnail,
  JPEG_HEAD_BYTES,
  orientedSize,
  parseJpegHead,
  readDcScans,
  SIGNAL_SIDE,
  type EmbeddedThumbnail,
  type JpegHeader,
  type Thumbnail,
  type ThumbnailOptions,
} from '@triage/images';
import type { PhotoInput } from '@triage/queue';
import {
  StorageRequestError,
  StorageUnavailableError,
  TransformRefusedError,
  type LocalFile,
  type StorageDriver,
} from '@triage/storage';
import { mayBeNoisy, type Pass } from '@triage/core';
import type { ImageOps } from './step.js';

export type PhotoSource = 'embedded' | 'thumbnail' | 'transform' | 'dc-scans' | 'original';

export interface PhotoRead {
  thumb: Thumbnail | null;
  /** Why there is no thumbnail. */
  reason?: string;
  error?: unknown;
  source: PhotoSource | null;
  /** Bytes fetched from storage for this photo. */
  bytes: number;
  /** Time spent making its thumbnail once its bytes were in (decode, resize, signals), ms. */
  ms: number;
  /** When it was taken (EXIF DateTimeOriginal, see JpegHeader.captured), from the head the coarse pass reads anyway. */
  captured?: number;
}

export interface ReadContext {
  storage: StorageDriver;
  images: ImageOps;
  bucket: string;
  pass: Pass;
  /** Thumbnail side for this pass. */
  size: number;
  transforms: boolean;
  signal: AbortSignal;
  /** What a storage outage does: stop the read to try later (default), or fail the photos it hits. */
  outage?: 'pause' | 'fail';
  /**
   * Fine pass: by photo (position in `photos`), whether focus and noise are measured at full size too
   * (Thumbnail.detail) — 'always' for a photo with another survivor of its scene, which only a comparison at
   * full size tells apart, 'if-unsure' otherwise: then only where its thumbnail does not rule out the noise
   * that flags a lone photo (mayBeNoisy). Absent: never. Only a decoded original has it (see decode).
   */
  detail?: readonly ('always' | 'if-unsure')[];
}

/** Where a photo's thumbnail will come from, decided from file heads alone (small range reads). */
type Plan = (
  | { kind: 'embedded'; embedded: EmbeddedThumbnail; bytes: number }
  | { kind: 'dc-scans'; path: string; head: Buffer; orientation: number; bytes: number }
  | { kind: 'file'; path: string; source: PhotoSource; bytes: number }
  | { kind: 'failed'; error: unknown; bytes: number }
) & { captured?: number };

type Fetched =
  | { kind: 'embedded'; embedded: EmbeddedThumbnail; bytes: number }
  /** `head`: the file's first bytes, through its DC scans. */
  | { kind: 'dc-scans'; path: string; head: Buffer; orientation: number; bytes: number }
  | { kind: 'file'; file: LocalFile; source: PhotoSource; bytes: number }
  | { kind: 'failed'; error: unknown; bytes: number };

const JPEG_NAME = /\.jpe?g$/i;

/**
 * How many photos ahead the heads are read. Heads are small (≤ 68 KB) and, against remote storage, mostly
 * latency: reading several at once hides it. Whole files are still fetched one photo ahead only.
 */
const HEADS_AHEAD = 4;

function sameAspect(a: { width: number; height: number }, b: { width: number; height: number }): boolean {
  return Math.abs(a.width / a.height - b.width / b.height) <= ASPECT_TOLERANCE * (a.width / a.height);
}

function upright(header: JpegHeader): { width: number; height: number } {
  return orientedSize(header.width, header.height, header.orientation);
}

async function head(ctx: ReadContext, path: string): Promise<{ bytes: Buffer; header: JpegHeader | null }> {
  const bytes = await ctx.storage.readRange(ctx.bucket, path, 0, JPEG_HEAD_BYTES, { signal: ctx.signal });
  return { bytes, header: parseJpegHead(bytes) };
}

/** The plan of a photo, with its capture time where its head (read for the plan anyway) gives one. */
async function plan(ctx: ReadContext, photo: PhotoInput): Promise<Plan> {
  const seen: { header?: JpegHeader | null } = {};
  const chosen = await chooseSource(ctx, photo, seen);
  const captured = seen.header?.captured;
  return captured === undefined ? chosen : { ...chosen, captured };
}

/** Finds the cheapest good-enough source for a photo from heads alone (no whole file, no decoding); `seen` gets the original's header when read. */
async function chooseSource(ctx: ReadContext, photo: PhotoInput, seen: { header?: JpegHeader | null }): Promise<Plan> {
  let bytes = 0;
  try {
    let original: JpegHeader | null = null;
    const viaStorage = ctx.transforms && ctx.storage.readTransformed !== undefined;
    let originalHead: Buffer | undefined;
    if (JPEG_NAME.test(photo.path) && (ctx.pass === 'coarse' || photo.thumbnailPath || !viaStorage)) {
      const h = await head(ctx, photo.path);
      originalHead = h.bytes;
      bytes += h.bytes.length;
      original = h.header;
      seen.header = original;
      // A bomb (or a giant) is refused from its header, before its bytes are fetched.
      if (original) checkPixelLimit(original.width, original.height, original.orientation);
      const embedded = ctx.pass === 'coarse' ? findEmbeddedThumbnail(h.bytes) : null;
      if (embedded && embeddedThumbnailFits(embedded, ctx.size)) return { kind: 'embedded', embedded, bytes };
    }
    if (photo.thumbnailPath && original) {
      try {
        const t = await head(ctx, photo.thumbnailPath);
        bytes += t.bytes.length;
        const small = t.header && upright(t.header);
        if (small && Math.min(small.width, small.height) >= ctx.size && sameAspect(small, upright(original))) {
          return { kind: 'file', path: photo.thumbnailPath, source: 'thumbnail', bytes };
        }
      } catch (err) {
        // A missing or unreadable client thumbnail costs nothing but the shortcut: the original is read.
        if (ctx.signal.aborted) throw err;
      }
    }
    if (!viaStorage && original?.progressive && originalHead && dcScalesSuffices(original, ctx.size)) {
      return { kind: 'dc-scans', path: photo.path, head: originalHead, orientation: original.orientation, bytes };
    }
    return { kind: 'file', path: photo.path, source: viaStorage ? 'transform' : 'original', bytes };
  } catch (error) {
    return { kind: 'failed', error, bytes };
  }
}

/** Fetches what a plan chose: the whole file, as a local file for sharp, or a progressive JPEG's DC scans. */
async function fetchFile(ctx: ReadContext, photo: PhotoInput, planned: Plan): Promise<Fetched> {
  if (planned.kind === 'dc-scans') return fetchDcScans(ctx, photo, planned);
  if (planned.kind !== 'file') return planned;
  const { bytes } = planned;
  try {
    if (planned.source === 'transform') {
      // Quality signals are measured at SIGNAL_SIDE px: ask for no less, or blur goes unseen.
      const side = Math.max(ctx.size, SIGNAL_SIDE);
      try {
        const file = await ctx.storage.readTransformed!(
          ctx.bucket,
          photo.path,
          { width: side, height: side, resize: 'cover' },
          { signal: ctx.signal },
        );
        return { kind: 'file', file, source: 'transform', bytes: bytes + file.size };
      } catch (err) {
        if (!(err instanceof TransformRefusedError)) throw err;
      }
    }
    const file = await ctx.storage.readToFile(ctx.bucket, planned.path, { signal: ctx.signal });
    return {
      kind: 'file',
      file,
      source: planned.source === 'transform' ? 'original' : planned.source,
      bytes: bytes + file.size,
    };
  } catch (error) {
    return { kind: 'failed', error, bytes };
  }
}

/**
 * Range reads from the end of the head until the DC scans are in (readDcScans). A file whose layout the DC
 * decoder does not cover (found from its markers alone) is fetched whole instead, as an original.
 */
async function fetchDcScans(
  ctx: ReadContext,
  photo: PhotoInput,
  planned: Extract<Plan, { kind: 'dc-scans' }>,
): Promise<Fetched> {
  let bytes = planned.bytes;
  try {
    // A head shorter than asked is the whole file.
    const scans = await readDcScans(planned.head, planned.head.length < JPEG_HEAD_BYTES, async (start, end) => {
      const more = await ctx.storage.readRange(ctx.bucket, photo.path, start, end, { signal: ctx.signal });
      bytes += more.length;
      return more;
    });
    if (scans) return { ...planned, head: scans, bytes };
  } catch (error) {
    return { kind: 'failed', error, bytes };
  }
  return fetchFile(ctx, photo, { kind: 'file', path: photo.path, source: 'original', bytes });
}

/** What `thumbnail` is asked about the full-size square, for a photo that wants it. */
function detailOption(want: 'always' | 'if-unsure' | undefined): ThumbnailOptions['detail'] {
  if (want === 'always') return true;
  return want === 'if-unsure' ? (thumb) => mayBeNoisy(thumb.signals) : false;
}

async function decode(
  ctx: ReadContext,
  photo: PhotoInput,
  fetched: Fetched,
  want?: 'always' | 'if-unsure',
): Promise<Omit<PhotoRead, 'ms'>> {
  const { images, size, signal } = ctx;
  if (fetched.kind === 'failed') throw fetched.error;
  if (fetched.kind === 'embedded') {
    try {
      return {
        thumb: await images.thumbnailFromEmbedded(fetched.embedded, size, { signal }),
        source: 'embedded',
        bytes: fetched.bytes,
      };
    } catch (err) {
      if (signal.aborted) throw err;
      // A damaged embedded thumbnail says nothing about the photo itself: decode the original.
      const file = await ctx.storage.readToFile(ctx.bucket, photo.path, { signal });
      return decode(ctx, photo, { kind: 'file', file, source: 'original', bytes: fetched.bytes + file.size }, want);
    }
  }
  if (fetched.kind === 'dc-scans') {
    const thumb = await images.thumbnailFromDcScans(fetched.head, size, { orientation: fetched.orientation, signal });
    if (thumb) return { thumb, source: 'dc-scans', bytes: fetched.bytes };
    // Damaged entropy data in the DC scans: libvips decides what the whole file is worth.
    const file = await ctx.storage.readToFile(ctx.bucket, photo.path, { signal });
    return decode(ctx, photo, { kind: 'file', file, source: 'original', bytes: fetched.bytes + file.size }, want);
  }
  try {
    // Focus and noise at full size, where the original itself was fetched and the photo wants them.
    const detail = ctx.pass === 'fine' && fetched.source === 'original' ? detailOption(want) : false;
    return {
      thumb: await images.thumbnail(fetched.file.path, size, { signal, detail }),
      source: fetched.source,
      bytes: fetched.bytes,
    };
  } finally {
    await fetched.file.release();
  }
}

/**
 * What a failed read means: storage as a whole is out (`outage`: the grid pauses), storage answers again so
 * the read is worth making once more (`reread`: an outage that ended between the failed read and this check,
 * or a read prefetched during it), or the photo's own failure. One object may keep failing while the rest of
 * storage answers: after its second read it fails alone. Past the outage limit (`fail`), every failure is
 * the photo's, without a probe.
 */
async function judgeFailedRead(ctx: ReadContext, error: unknown): Promise<'outage' | 'reread' | 'photo'> {
  if (!(error instanceof StorageRequestError) || (ctx.outage ?? 'pause') === 'fail') return 'photo';
  if (error.kind === 'config') return 'outage';
  if (error.kind !== 'unavailable' || !ctx.storage.reachable) return 'photo';
  return (await ctx.storage.reachable(ctx.bucket, { signal: ctx.signal })) ? 'reread' : 'outage';
}

/**
 * One photo's thumbnail from what was fetched for it, read once more from the start when judgeFailedRead
 * says so (with the new read's capture time and both reads' bytes). A photo that cannot be read gets
 * `thumb: null` and a reason; an outage throws StorageUnavailableError.
 */
async function readPhoto(
  ctx: ReadContext,
  photo: PhotoInput,
  first: { fetched: Fetched; captured: number | undefined },
  want: 'always' | 'if-unsure' | undefined,
  describe: (error: unknown) => string,
): Promise<Omit<PhotoRead, 'ms'>> {
  let { fetched, captured } = first;
  let spent = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      const read = await decode(ctx, photo, fetched, want);
      return { ...read, bytes: spent + read.bytes, ...(read.thumb && captured !== undefined && { captured }) };
    } catch (error) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const verdict = await judgeFailedRead(ctx, error);
      if (verdict === 'outage') throw new StorageUnavailableError(describe(error), error);
      if (verdict === 'photo' || attempt > 1)
        return { thumb: null, reason: describe(error), error, source: null, bytes: spent + fetched.bytes };
      spent += fetched.bytes;
      const again = await plan(ctx, photo);
      captured = again.captured;
      fetched = await fetchFile(ctx, photo, again);
    }
  }
}

async function discard(fetched: Promise<Fetched> | undefined): Promise<void> {
  const f = await fetched;
  if (f?.kind === 'file') await f.file.release();
}

/**
 * Thumbnails of `photos` in order. A photo that cannot be read yields `thumb: null` and a reason; an abort
 * stops at once (releasing the prefetched file) and rethrows the signal's reason.
 */
export async function readThumbnails(
  ctx: ReadContext,
  photos: readonly PhotoInput[],
  describe: (error: unknown) => string,
): Promise<PhotoRead[]> {
  const results: PhotoRead[] = [];
  const plans: Promise<Plan>[] = [];
  const planOf = (k: number) => (plans[k] ??= plan(ctx, photos[k]!));
  const fetchOf = (k: number) => planOf(k).then((p) => fetchFile(ctx, photos[k]!, p));
  let next: Promise<Fetched> | undefined = photos.length > 0 ? fetchOf(0) : undefined;
  try {
    for (let i = 0; i < photos.length; i++) {
      ctx.signal.throwIfAborted();
      for (let k = i + 1; k <= i + HEADS_AHEAD && k < photos.length; k++) void planOf(k);
      const fetched: Fetched = await next!;
      const { captured } = await planOf(i);
      next = i + 1 < photos.length ? fetchOf(i + 1) : undefined;
      const started = performance.now();
      const read = await readPhoto(ctx, photos[i]!, { fetched, captured }, ctx.detail?.[i], describe);
      results.push({ ...read, ms: performance.now() - started });
    }
    return results;
  } finally {
    await discard(next).catch(() => {});
  }
}
