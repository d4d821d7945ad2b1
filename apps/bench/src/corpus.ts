/**
 * The benchmark corpus: camera-like photos generated once into `.bench/corpus/` (git-ignored) and reused.
 *
 * - JPEG, 5664 × 4248 (24 MP, 4:3), a smooth procedural scene plus per-pixel sensor-like noise so that
 *   it compresses like a photo (6–10 MB at quality 92); ~15 % progressive; EXIF orientations 1–8; ~80 %
 *   with an embedded 160 × 120 EXIF thumbnail; a few "cropped" to 3:2 keeping the stale 4:3 thumbnail.
 * - A few PNG (screenshot-like, 2560 × 1600), WebP (4000 × 3000) and HEIC (4032 × 3024, HEVC, half with a
 *   320 × 240 thumbnail item, as iPhones write, half without) files. HEIC is encoded with libheif's `heif-enc` (Debian
 *   package libheif-examples, x265 inside): neither sharp's prebuilt libheif (AV1 only) nor libheif-js
 *   (decoder only) can write HEVC. Without heif-enc, HEIC entries are left out and the report says so.
 *
 * Each file's spec follows from its index alone, and its name encodes the spec, so a file is generated once
 * and found again by name. Files are written beside and renamed, so runs may share the folder.
 * Generation runs in `workers` child threads (one per core by default).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { mulberry32 } from '@triage/images';

export type CorpusKind = 'jpeg' | 'png' | 'webp' | 'heic';

export interface CorpusSpec {
  index: number;
  kind: CorpusKind;
  width: number;
  height: number;
  orientation: number;
  progressive: boolean;
  /** 'fresh': same aspect ratio as the image; 'stale': 4:3 thumbnail on a 3:2 crop; 'none'. */
  thumbnail: 'fresh' | 'stale' | 'none';
}

export interface CorpusFile extends CorpusSpec {
  path: string;
  name: string;
  size: number;
}

const FULL = { width: 5664, height: 4248 };
const CROPPED = { width: 5664, height: 3776 };
const JPEG_QUALITY = 92;
/** Noise amplitude (± levels): with JPEG_QUALITY it puts 24 MP files at 6–10 MB. */
const NOISE = 14;

/** The spec of corpus photo `index`: deterministic, the same on every machine. */
export function specOf(index: number): CorpusSpec {
  const rand = mulberry32(0xbe0c4 + index * 7919);
  const slot = index % 50;
  // Every other HEIC has no thumbnail item (as some converters write them): a full decode, the heaviest case.
  if (slot === 3)
    return {
      index,
      kind: 'heic',
      width: 4032,
      height: 3024,
      orientation: 1,
      progressive: false,
      thumbnail: Math.floor(index / 50) % 2 === 0 ? 'fresh' : 'none',
    };
  if (slot === 7)
    return { index, kind: 'png', width: 2560, height: 1600, orientation: 1, progressive: false, thumbnail: 'none' };
  if (slot === 11)
    return { index, kind: 'webp', width: 4000, height: 3000, orientation: 1, progressive: false, thumbnail: 'none' };
  const progressive = rand() < 0.15;
  const orientation = 1 + (index % 8);
  const hasThumb = rand() < 0.8;
  const stale = hasThumb && rand() < 0.06;
  const size = stale ? CROPPED : FULL;
  return {
    index,
    kind: 'jpeg',
    ...size,
    orientation,
    progressive,
    thumbnail: hasThumb ? (stale ? 'stale' : 'fresh') : 'none',
  };
}

export function fileNameOf(spec: CorpusSpec): string {
  const id = String(spec.index).padStart(4, '0');
  if (spec.kind === 'heic' && spec.thumbnail === 'none') return `${id}-heic-nothumb.heic`;
  if (spec.kind !== 'jpeg') return `${id}-${spec.kind}.${spec.kind}`;
  const scan = spec.progressive ? 'prog' : 'base';
  const thumb = spec.thumbnail === 'none' ? 'nothumb' : `${spec.thumbnail}thumb`;
  return `${id}-${scan}-o${spec.orientation}-${thumb}.jpg`;
}

export function heicEncoderAvailable(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, 'heif-enc')));
}

/**
 * Makes sure the first `unique` corpus photos exist in `dir` (generating the missing ones in parallel) and
 * returns them. HEIC entries are skipped when heif-enc is missing.
 */
export async function ensureCorpus(
  dir: string,
  unique: number,
  options: { workers?: number; log?: (line: string) => void } = {},
): Promise<{ files: CorpusFile[]; generated: number; skippedHeic: number }> {
  await mkdir(dir, { recursive: true });
  const heic = heicEncoderAvailable();
  const specs = Array.from({ length: unique }, (_, i) => specOf(i)).filter((s) => heic || s.kind !== 'heic');
  const skippedHeic = unique - specs.length;
  const missing = specs.filter((s) => !existsSync(join(dir, fileNameOf(s))));
  if (missing.length > 0) {
    const workers = Math.max(1, Math.min(options.workers ?? cpus().length, missing.length));
    options.log?.(`corpus: generating ${missing.length} of ${specs.length} photos in ${dir} (${workers} threads)`);
    let next = 0;
    let done = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (next < missing.length) {
          const spec = missing[next++]!;
          await inThread(dir, spec);
          done++;
          if (done % 10 === 0 || done === missing.length) {
            options.log?.(`corpus: ${done}/${missing.length} (${Math.round((Date.now() - started) / 1000)} s)`);
          }
        }
      }),
    );
  }
  const files: CorpusFile[] = [];
  for (const spec of specs) {
    const name = fileNameOf(spec);
    const path = join(dir, name);
    files.push({ ...spec, name, path, size: (await stat(path)).size });
  }
  return { files, generated: missing.length, skippedHeic };
}

function inThread(dir: string, spec: CorpusSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { dir, spec } });
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`corpus thread exited with ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Generation (runs in a worker thread).

/** A smooth scene at 1/8 scale: sky/ground gradient and a few dozen soft discs and bars. */
function lowResScene(width: number, height: number, seed: number): Buffer {
  const rand = mulberry32(seed);
  const rgb = Buffer.alloc(width * height * 3);
  const sky = [rand() * 120 + 100, rand() * 120 + 110, rand() * 80 + 170];
  const ground = [rand() * 120 + 40, rand() * 100 + 60, rand() * 60 + 30];
  const horizon = height * (0.35 + rand() * 0.3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const base = y < horizon ? sky : ground;
      const t = y < horizon ? y / horizon : (y - horizon) / (height - horizon);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) rgb[o + c] = Math.max(0, Math.min(255, base[c]! * (1.1 - 0.4 * t)));
    }
  }
  for (let k = 0; k < 40; k++) {
    const cx = rand() * width;
    const cy = rand() * height;
    const r = 5 + rand() * width * 0.12;
    const colour = [rand() * 255, rand() * 255, rand() * 255];
    const bar = rand() < 0.3;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r); x++) {
        const inside = bar ? Math.abs(y - cy) < r * 0.25 : (x - cx) ** 2 + (y - cy) ** 2 < r * r;
        if (!inside) continue;
        const o = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) rgb[o + c] = colour[c]!;
      }
    }
  }
  return rgb;
}

/** Adds luminance-correlated sensor-like noise in place (an integer hash per pixel: fast and deterministic). */
function addNoise(rgb: Buffer, seed: number, amplitude: number): void {
  let h = seed >>> 0;
  for (let i = 0; i < rgb.length; i += 3) {
    h = (Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    h ^= h >>> 12;
    const luma = ((h & 0xff) + ((h >>> 8) & 0xff) - 255) / 255; // triangular, -1..1
    const chroma = (((h >>> 16) & 0xff) - 128) / 128;
    for (let c = 0; c < 3; c++) {
      const v = rgb[i + c]! + amplitude * luma + amplitude * 0.35 * chroma * (c === 1 ? -1 : 1);
      rgb[i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

async function generate(dir: string, spec: CorpusSpec): Promise<void> {
  const [{ sharp }, { withExif }] = await Promise.all([import('@triage/images'), import('@triage/images/testing')]);
  // The generator is the only user of sharp in this thread: let libvips use the cores it is given.
  sharp.concurrency(2);
  const path = join(dir, fileNameOf(spec));
  const partial = `${path}.partial-${process.pid}-${spec.index}`;
  const seed = 1000 + spec.index;
  try {
    // The scene is drawn at the 4:3 size; a "cropped" photo cuts it to 3:2 after its thumbnail was made.
    const full = spec.thumbnail === 'stale' ? FULL : { width: spec.width, height: spec.height };
    const small = lowResScene(Math.round(full.width / 8), Math.round(full.height / 8), seed);
    const raw = await sharp(small, {
      raw: { width: Math.round(full.width / 8), height: Math.round(full.height / 8), channels: 3 },
    })
      .resize(full.width, full.height, { kernel: 'cubic' })
      .raw()
      .toBuffer();
    addNoise(raw, seed, spec.kind === 'png' ? 0 : NOISE);
    const input = () => sharp(raw, { raw: { ...full, channels: 3 } });
    if (spec.kind === 'png') {
      await input().png({ compressionLevel: 6 }).toFile(partial);
    } else if (spec.kind === 'webp') {
      await input().webp({ quality: 82 }).toFile(partial);
    } else if (spec.kind === 'heic') {
      const jpegInput = `${partial}.jpg`;
      await input().jpeg({ quality: 95 }).toFile(jpegInput);
      await promisify(execFile)('heif-enc', [
        '-q',
        '60',
        ...(spec.thumbnail === 'none' ? [] : ['-t', '320']),
        '-o',
        partial,
        jpegInput,
      ]);
      await rm(jpegInput, { force: true });
      // heif-enc names its output itself when the name has no .heic suffix: make sure it is where we said.
      if (!existsSync(partial) && existsSync(`${partial}.heic`)) await rename(`${partial}.heic`, partial);
    } else {
      const thumbnail =
        spec.thumbnail === 'none'
          ? undefined
          : await input().resize(160, 120, { fit: 'fill' }).jpeg({ quality: 85 }).toBuffer();
      const image =
        spec.thumbnail === 'stale'
          ? input().extract({ left: 0, top: (FULL.height - CROPPED.height) / 2, ...CROPPED })
          : input();
      const jpeg = await image
        .jpeg({ quality: JPEG_QUALITY, progressive: spec.progressive, chromaSubsampling: '4:2:0' })
        .toBuffer();
      await writeFile(partial, withExif(jpeg, { orientation: spec.orientation, ...(thumbnail && { thumbnail }) }));
    }
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
  }
}

if (!isMainThread && workerData && (workerData as { spec?: CorpusSpec }).spec) {
  const { dir, spec } = workerData as { dir: string; spec: CorpusSpec };
  await generate(dir, spec);
  parentPort?.postMessage('done');
}
