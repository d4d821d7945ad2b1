/**
 * The benchmark's report: a dated Markdown section per job size (and latency) in docs/benchmarks.md,
 * replacing the previous section for the same key, with every performance target marked met / not met /
 * not yet implemented. Raw figures are also kept as JSON in .bench/results/ so that sizes can be compared
 * (the 200 vs 2,000 memory ratio).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { WORKER_MALLOC_ENV, WORKER_NODE_ARGS } from '@triage/queue';
import { mean, type FloorResult } from './floor.js';
import type { RunResult } from './run.js';

export interface BenchResult {
  key: string;
  date: string;
  machine: Machine;
  photos: number;
  unique: number;
  latencyMs: number;
  corpus: {
    jpeg: number;
    progressive: number;
    withThumbnail: number;
    staleThumbnail: number;
    png: number;
    webp: number;
    heic: number;
    heicWithoutThumbnail?: number;
    meanBytes: number;
    heicSkipped: number;
  };
  /** The embedded-thumbnail figures a range read of the head would give on this corpus (pure JS parse). */
  headProbe: { eligible: number; medianHeadBytes: number; parseMsPerPhoto: number; thumbMsPerPhoto: number };
  floor: FloorResult;
  run: RunResult;
}

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  sharp: string;
  libvips: string;
  libheifJs: string;
}

/** The host alone (cores, CPU, memory, Node), for reports that do not involve the image libraries. */
export function describeHost(): Pick<Machine, 'cores' | 'cpu' | 'memoryGiB' | 'node'> {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  let cores = cpus().length;
  try {
    cores = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || cores;
  } catch {
    // no nproc
  }
  return { cores, cpu, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}

export function describeMachine(versions: { sharp: string; vips: string; libheifJs: string }): Machine {
  return { ...describeHost(), sharp: versions.sharp, libvips: versions.vips, libheifJs: versions.libheifJs };
}

/** The "Machine: …" line every section starts with. */
export function hostLine(m: Pick<Machine, 'cores' | 'cpu' | 'memoryGiB' | 'node'>, extra = ''): string {
  return `Machine: ${m.cores} cores (\`nproc\`), ${m.cpu}, ${m.memoryGiB} GiB; Node ${m.node}${extra}.`;
}

const MB = 1048576;
const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const kb = (n: number) => `${f0(n / 1024)} KB`;
const mbs = (n: number) => `${f0(n / MB)} MB`;

type Status = 'met' | 'not met' | 'not yet implemented' | 'not measured here';

interface TargetRow {
  id: string;
  target: string;
  measured: string;
  status: Status;
  limits: string;
}

/** Every performance target against this run (and the other sizes' saved results, for the ratio). */
export function targets(result: BenchResult, others: readonly BenchResult[]): TargetRow[] {
  return [
    memoryTarget(result),
    scalingTarget(others),
    decodeTarget(result),
    embeddedTarget(result),
    prefetchTarget(result, others),
    heicTarget(result),
    apiTarget(),
  ];
}

function memoryTarget(result: BenchResult): TargetRow {
  const peak = result.run.peakRss / MB;
  return {
    id: '1a',
    target: 'worker peak RSS ≤ 192 MB for a 2,000-photo two-pass job (progressive files included)',
    measured: `${f0(peak)} MB at ${result.photos} photos`,
    status: result.photos >= 2000 ? (peak <= 192 ? 'met' : 'not met') : peak <= 192 ? 'not measured here' : 'not met',
    limits:
      result.photos < 2000
        ? `measured at ${result.photos} photos; run --photos 2000 for the target itself`
        : peak <= 192
          ? ''
          : 'the largest single decode: a HEIC without a usable thumbnail decodes at full size in WebAssembly memory, and a progressive JPEG the DC decoder leaves to libvips (CMYK, a wide-gamut profile) holds its whole coefficient buffer',
  };
}

/** 2,000 photos against 200, from the saved results of both sizes. */
function scalingTarget(others: readonly BenchResult[]): TargetRow {
  const small = others.find((o) => o.photos === 200 && o.latencyMs === 0);
  const large = others.find((o) => o.photos === 2000 && o.latencyMs === 0);
  if (small && large) {
    const ratio = large.run.peakRss / small.run.peakRss;
    return {
      id: '1b',
      target: 'peak RSS for 2,000 photos ≤ 1.10 × the peak for 200',
      measured: `${f0(large.run.peakRss / MB)} / ${f0(small.run.peakRss / MB)} MB = ${f2(ratio)} ×`,
      status: ratio <= 1.1 ? 'met' : 'not met',
      limits: ratio <= 1.1 ? '' : 'memory grows with the job: look for per-photo state kept in the worker',
    };
  } else {
    return {
      id: '1b',
      target: 'peak RSS for 2,000 photos ≤ 1.10 × the peak for 200',
      measured: small
        ? `200: ${f0(small.run.peakRss / MB)} MB; no 2,000-photo result yet`
        : 'needs a 200- and a 2,000-photo run',
      status: 'not measured here',
      limits: 'run `npm run bench -- --photos 200` and `--photos 2000`: the ratio appears in the later section',
    };
  }
}

function decodeTarget(result: BenchResult): TargetRow {
  const decode = decodeFigures(result);
  return {
    id: '2',
    target: 'worker time per photo needing a full decode ≤ 1.15 × the floor',
    measured: decode
      ? `${decode.photos} full decodes (baseline JPEG without a fitting thumbnail, PNG, WebP; both passes): worker ${f0(decode.workerMs)} ms per photo ` +
        `(thumbnail ${f0(decode.readMs)} + its share of the grid's other time ${f0(decode.overheadMs)}) vs the floor on the same files ${f0(decode.floorMs)} ms = ${f2(decode.ratio)} ×` +
        (decode.squares.photos > 0
          ? `; ${decode.squares.photos} of them also measured at 1:1 (the fine pass’s full-size square, for twins and possibly noisy photos): ` +
            `${f0(decode.squares.workerMs)} ms vs their floor ${f0(decode.squares.floorMs)} ms = ${f2(decode.squares.workerMs / decode.squares.floorMs)} ×, ` +
            `the other ${decode.photos - decode.squares.photos} ${f0(decode.plain.workerMs)} ms vs ${f0(decode.plain.floorMs)} ms = ${f2(decode.plain.workerMs / decode.plain.floorMs)} ×`
          : '; none measured at 1:1 (the fine pass’s full-size square)') +
        (decode.dc
          ? `; ${decode.dc.photos} progressive JPEGs read from their DC scans instead: ${f0(decode.dc.workerMs)} ms vs the floor's full decode ${f0(decode.dc.floorMs)} ms = ${f2(decode.dc.workerMs / decode.dc.floorMs)} ×`
          : '')
      : 'no full decode in this run',
    status: !decode || result.latencyMs > 0 ? 'not measured here' : decode.ratio <= 1.15 ? 'met' : 'not met',
    limits:
      (result.latencyMs > 0
        ? `with ${result.latencyMs} ms per read, the storage waits the prefetch does not hide count in the grid's other time: the target is measured without latency; `
        : '') +
      'per photo from GridRecord.readMs (its thumbnail, once its bytes are in), plus the pass’s time outside thumbnails (storage waits, grid, judge, Redis) shared equally; ' +
      'the floor thumbnails at 84 px with no checks, the worker renders ≥ 320 px for the quality signals (233 px cells in the fine pass) and measures them in JS',
  };
}

const EMBEDDED_TARGET =
  'embedded-thumbnail fast path: median bytes read ≤ 128 KB and coarse time ≤ 1/10 of the floor, on files carrying one';

function embeddedTarget(result: BenchResult): TargetRow {
  const { run, floor, headProbe } = result;
  const coarseRatio = run.coarse.msPerPhoto / floor.msPerPhoto;
  const medianOk = headProbe.medianHeadBytes <= 128 * 1024;
  const embeddedShare = (run.coarse.sources.embedded ?? 0) / Math.max(1, run.coarse.photos);
  const probeRatio = (headProbe.parseMsPerPhoto + headProbe.thumbMsPerPhoto) / floor.msPerPhoto;
  if (embeddedShare > 0) {
    return {
      id: '3',
      target: EMBEDDED_TARGET,
      measured:
        `worker coarse pass: ${f0(embeddedShare * 100)} % of photos from the embedded thumbnail; ` +
        `${run.coarse.bytesReadPerPhoto !== null ? `mean ${kb(run.coarse.bytesReadPerPhoto)} read per photo (all files), ` : ''}` +
        `median for files carrying one = the head read, ${kb(headProbe.medianHeadBytes)}; ${f0(run.coarse.msPerPhoto)} ms per coarse photo over all files ` +
        `(${f2(coarseRatio)} × floor, full decodes of the files without a fitting thumbnail included). ` +
        `Same path timed alone on the ${headProbe.eligible} eligible files: ${f1(headProbe.parseMsPerPhoto + headProbe.thumbMsPerPhoto)} ms = ${f2(probeRatio)} × floor`,
      status: medianOk && probeRatio <= 0.1 ? 'met' : 'not met',
      limits:
        'the grid figures do not separate embedded from decoded photos; the per-photo time of the fast path is the probe’s ' +
        '(range read + parse + 120 px decode). Files without a fitting thumbnail (none, stale after a crop, PNG/WebP) still decode fully',
    };
  } else
    return {
      id: '3',
      target: EMBEDDED_TARGET,
      measured:
        `worker today: ${kb(run.coarse.fileBytesPerPhoto)} and ${f0(run.coarse.msPerPhoto)} ms per coarse photo. ` +
        `Offline probe of the same path (range read ${kb(headProbe.medianHeadBytes)} → findEmbeddedThumbnail → thumbnailFromEmbedded) ` +
        `on ${headProbe.eligible} eligible files: ${f1(headProbe.parseMsPerPhoto + headProbe.thumbMsPerPhoto)} ms = ` +
        `${f2((headProbe.parseMsPerPhoto + headProbe.thumbMsPerPhoto) / floor.msPerPhoto)} × floor`,
      status: 'not yet implemented',
      limits:
        `packages/images has the functions (exif.ts, thumbnailFromBytes); apps/worker/src/step.ts does not call them yet. ` +
        `The probe says the byte target is ${medianOk ? 'reachable' : 'not reachable'} and the time target ` +
        `${(headProbe.parseMsPerPhoto + headProbe.thumbMsPerPhoto) / floor.msPerPhoto <= 0.1 ? 'reachable' : 'out of reach'} once wired`,
    };
}

function prefetchTarget(result: BenchResult, others: readonly BenchResult[]): TargetRow {
  return {
    id: '4',
    target: 'prefetch: with 50 ms read latency, a 200-photo job ≥ 1.5 × faster than one at a time',
    measured: result.latencyMs > 0 ? latencyLine(result, others).text : 'run with --latency 50',
    status: result.latencyMs > 0 ? latencyStatus(latencyLine(result, others).speedup) : 'not measured here',
    limits:
      'compared with the latency-free run of the same size plus one latency per storage read (a strictly sequential worker); ' +
      'the coarse fast path makes one range read per photo, a decode a head read plus the file',
  };
}

function heicTarget(result: BenchResult): TargetRow {
  const { run } = result;
  const peak = run.peakRss / MB;
  return {
    id: '5',
    target: 'HEIC through libheif-js within the same memory bound, preferring the embedded thumbnail',
    measured:
      result.corpus.heic > 0
        ? `${result.corpus.heic} HEIC in the job (${result.corpus.heicWithoutThumbnail ?? 0} without a thumbnail item: full decodes), ${run.failed} photos failed in all; peak RSS ${f0(peak)} MB`
        : 'no HEIC in the corpus (heif-enc missing)',
    status:
      result.corpus.heic > 0 && run.failed === 0 && peak <= 192
        ? 'met'
        : result.corpus.heic > 0
          ? 'not met'
          : 'not measured here',
    limits:
      'thumbnailFromFile routes HEVC HEIF to libheif-js and takes the 320 × 240 thumbnail item for cells up to 240 px (both passes here); ' +
      'a HEIC without a usable thumbnail costs a full WebAssembly decode (~1 s, about +70 MB for 12 MP while it runs: decoded in its own YCbCr planes and reduced from them, no RGBA copy of the whole image) in a short-lived thread whose memory is returned when it ends',
  };
}

function apiTarget(): TargetRow {
  return {
    id: '6',
    target: 'API: 200 × 8 MB upload and 200-file ZIP under 128 MB; status route ≥ 10,000 req/s, p99 ≤ 20 ms',
    measured: '—',
    status: 'not measured here',
    limits: 'this benchmark measures the worker; `npm run load` measures the API (its sections below)',
  };
}

function latencyStatus(speedup: number | null): Status {
  return speedup === null ? 'not measured here' : speedup >= 1.5 ? 'met' : 'not met';
}

function latencyLine(result: BenchResult, others: readonly BenchResult[]): { text: string; speedup: number | null } {
  const base = others.find((o) => o.photos === result.photos && o.latencyMs === 0);
  const reads = result.run.coarse.photos + (result.run.fine?.photos ?? 0);
  const own = `${f1(result.run.wallMs / 1000)} s for ${result.photos} photos (${reads} photo reads)`;
  if (!base) return { text: `${own}; no latency-free run of the same size to compare with`, speedup: null };
  const sequential = base.run.wallMs + reads * result.latencyMs;
  const speedup = sequential / result.run.wallMs;
  return {
    text: `${own}; one at a time would take ${f1(base.run.wallMs / 1000)} s + ${reads} × ${result.latencyMs} ms = ${f1(sequential / 1000)} s: ${f2(speedup)} × faster`,
    speedup,
  };
}

/** Some of the full decodes: how many, and the mean per photo of the worker (thumbnail and its share of the rest) and of the floor. */
interface Subset {
  photos: number;
  workerMs: number;
  floorMs: number;
}

/** Photos that take a full decode (by their corpus kind), worker against floor on the same files, both passes. */
function decodeFigures(result: BenchResult): {
  photos: number;
  workerMs: number;
  readMs: number;
  overheadMs: number;
  floorMs: number;
  ratio: number;
  /** The photos also measured at 1:1 (Thumbnail.detail), and the others: worker and floor per photo. */
  squares: Subset;
  plain: Subset;
  dc: { photos: number; workerMs: number; floorMs: number } | null;
} | null {
  const { run, floor } = result;
  const passes = [run.coarse, ...(run.fine ? [run.fine] : [])];
  const reads = passes.flatMap((pass) =>
    pass.reads
      .filter((r) => floor.msByPath[r.file.path] !== undefined)
      .map((r) => ({ ...r, overhead: pass.overheadMsPerPhoto, coarse: pass === run.coarse })),
  );
  // The coarse pass takes the embedded thumbnail of a file carrying a fitting one: not a decode.
  const read = reads.filter((r) => !(r.coarse && r.file.kind === 'jpeg' && r.file.thumbnail === 'fresh'));
  const decoded = read.filter(
    (r) => (r.file.kind === 'jpeg' && !r.file.progressive) || r.file.kind === 'png' || r.file.kind === 'webp',
  );
  const dc = read.filter((r) => r.file.kind === 'jpeg' && r.file.progressive);
  if (decoded.length === 0) return null;
  const readMs = mean(decoded.map((r) => r.ms));
  const overheadMs = mean(decoded.map((r) => r.overhead));
  const floorMs = mean(decoded.map((r) => floor.msByPath[r.file.path]!));
  const subset = (reads: typeof decoded): Subset => ({
    photos: reads.length,
    workerMs: reads.length > 0 ? mean(reads.map((r) => r.ms + r.overhead)) : 0,
    floorMs: reads.length > 0 ? mean(reads.map((r) => floor.msByPath[r.file.path]!)) : 0,
  });
  return {
    photos: decoded.length,
    workerMs: readMs + overheadMs,
    readMs,
    overheadMs,
    floorMs,
    ratio: (readMs + overheadMs) / floorMs,
    squares: subset(decoded.filter((r) => r.square)),
    plain: subset(decoded.filter((r) => !r.square)),
    dc:
      dc.length > 0
        ? {
            photos: dc.length,
            workerMs: mean(dc.map((r) => r.ms + r.overhead)),
            floorMs: mean(dc.map((r) => floor.msByPath[r.file.path]!)),
          }
        : null,
  };
}

function sourcesText(sources: Record<string, number>): string {
  const parts = Object.entries(sources).map(([k, v]) => `${k} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'not recorded';
}

export function renderSection(result: BenchResult, others: readonly BenchResult[]): string {
  const { run, floor, machine, corpus, headProbe } = result;
  const m = machine;
  const title = `## ${result.photos} photos${result.latencyMs > 0 ? `, ${result.latencyMs} ms read latency` : ''} — ${result.date}`;
  const lines = [
    `<!-- bench:${result.key} -->`,
    title,
    '',
    hostLine(m, `, sharp ${m.sharp} (libvips ${m.libvips}), libheif-js ${m.libheifJs}`),
    '',
    `Corpus: ${result.photos} photos cycled over ${result.unique} distinct files (mean ${f1(corpus.meanBytes / MB)} MB): ` +
      `${corpus.jpeg} JPEG 24 MP (${corpus.progressive} progressive, ${corpus.withThumbnail} with an EXIF thumbnail of which ${corpus.staleThumbnail} stale), ` +
      `${corpus.png} PNG, ${corpus.webp} WebP, ${corpus.heic} HEIC${corpus.heicWithoutThumbnail ? ` (${corpus.heicWithoutThumbnail} without a thumbnail item)` : ''}` +
      (corpus.heicSkipped > 0 ? ` (${corpus.heicSkipped} HEIC left out: heif-enc not installed)` : '') +
      `. Worker: \`${Object.entries(WORKER_MALLOC_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ' ',
        )} node ${WORKER_NODE_ARGS.join(' ')} apps/worker/dist/main.js\`, local storage, offline provider, two passes, target 10 %.`,
    '',
    '| figure | worker | floor (bare sharp loop, 84 px) | ratio |',
    '|---|---|---|---|',
    `| peak RSS (VmHWM) | ${mbs(run.peakRss)} (idle ${mbs(run.idleRss)}) | ${mbs(floor.peakRss)} | ${f2(run.peakRss / floor.peakRss)} × |`,
    `| ms per photo, coarse pass | ${f0(run.coarse.msPerPhoto)} (${run.coarse.photos} photos, ${run.coarse.grids} grids) | ${f0(floor.msPerPhoto)} | ${f2(run.coarse.msPerPhoto / floor.msPerPhoto)} × |`,
    run.fine
      ? `| ms per photo, fine pass | ${f0(run.fine.msPerPhoto)} (${run.fine.photos} photos, ${run.fine.grids} grids) | ${f0(floor.msPerPhoto)} | ${f2(run.fine.msPerPhoto / floor.msPerPhoto)} × |`
      : '| ms per photo, fine pass | — | | |',
    `| photos per second (whole job, submit → completed) | ${f2(run.photosPerSecond)} (${f1(run.wallMs / 1000)} s) | ${f2(1000 / floor.msPerPhoto)} | ${f2(run.photosPerSecond / (1000 / floor.msPerPhoto))} × |`,
    `| bytes read from storage per photo (GridRecord.bytesRead) | coarse ${run.coarse.bytesReadPerPhoto === null ? 'not recorded' : kb(run.coarse.bytesReadPerPhoto)}${run.fine ? `, fine ${run.fine.bytesReadPerPhoto === null ? 'not recorded' : kb(run.fine.bytesReadPerPhoto)}` : ''} (whole files would be ${kb(run.coarse.fileBytesPerPhoto)}${run.fine ? ` / ${kb(run.fine.fileBytesPerPhoto)}` : ''}) | | |`,
    `| thumbnail sources | coarse: ${sourcesText(run.coarse.sources)}${run.fine ? `; fine: ${sourcesText(run.fine.sources)}` : ''} | | |`,
    `| read() bytes of the worker per photo (rchar; libvips maps files instead of read()ing them, so it undercounts) | ${kb(run.bytesReadPerPhoto)} | | |`,
    `| photos failed / selected | ${run.failed} / ${run.selected} | ${floor.unreadable} unreadable by sharp | |`,
    '',
    `Floor by kind (ms per photo): ${Object.entries(floor.msBy)
      .map(([k, v]) => `${k} ${f0(v)}`)
      .join(', ')}. ` +
      `Embedded-thumbnail probe on the ${headProbe.eligible} files whose thumbnail fits an 84 px cell: median head ${kb(headProbe.medianHeadBytes)}, ` +
      `parse ${f2(headProbe.parseMsPerPhoto)} ms + thumbnail ${f1(headProbe.thumbMsPerPhoto)} ms per photo.`,
    '',
    '| target | measured | status | what limits it |',
    '|---|---|---|---|',
    ...targets(result, others).map((t) => `| ${t.id}. ${t.target} | ${t.measured} | **${t.status}** | ${t.limits} |`),
    `<!-- /bench:${result.key} -->`,
  ];
  return lines.join('\n');
}

const HEADER = `# Benchmarks

Written by \`npm run bench\`, \`npm run bench:quality\`, \`npm run load\` and \`npm run bench:time\` (apps/bench): one section per job size (or scenario), replaced when the same one runs again.
See the README for the options. Figures are from the operating system (VmHWM, rchar), never from inside V8.
`;

/** Puts the section into docs/benchmarks.md, replacing the one with the same key. */
export async function writeReport(
  docPath: string,
  result: BenchResult,
  others: readonly BenchResult[],
): Promise<string> {
  const section = renderSection(result, others);
  await writeSection(docPath, result.key, section);
  return section;
}

/**
 * Puts a section (which starts with `<!-- bench:KEY -->` and ends with `<!-- /bench:KEY -->`) into the
 * document, replacing the one with the same key, or appending it.
 */
export async function writeSection(docPath: string, key: string, section: string): Promise<void> {
  let doc = existsSync(docPath) ? await readFile(docPath, 'utf8') : HEADER;
  const re = new RegExp(
    `<!-- bench:${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -->[\\s\\S]*?<!-- /bench:${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -->`,
  );
  doc = re.test(doc) ? doc.replace(re, () => section) : `${doc.trimEnd()}\n\n${section}\n`;
  await mkdir(dirname(docPath), { recursive: true });
  await writeFile(docPath, doc);
}

export async function saveResult(dir: string, result: BenchResult): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${result.key}.json`), `${JSON.stringify(result, null, 2)}\n`);
}

export async function loadResults(dir: string): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const key of ['200', '2000', '200-latency50', '2000-latency50']) {
    const path = join(dir, `${key}.json`);
    if (existsSync(path)) out.push(JSON.parse(await readFile(path, 'utf8')) as BenchResult);
  }
  return out;
}
