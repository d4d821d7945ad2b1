#!/usr/bin/env node
/**
 * npm run bench [-- options]: the worker's memory and speed on a camera-like corpus, against a bare sharp
 * loop, written to docs/benchmarks.md.
 *
 *   --photos N      job size (default 200); --smoke is 24 photos, about a minute once the corpus exists
 *   --unique K      distinct files, cycled to N (default min(N, 200): 2,000 × 8 MB would be 16 GB)
 *   --latency MS    STORAGE_READ_LATENCY_MS for the worker (the prefetch target uses 50)
 *   --corpus DIR    where the corpus is generated and cached (default .bench/corpus)
 *   --passes 1|2    default 2
 *   --no-report     print the section without touching docs/benchmarks.md
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  embeddedThumbnailFits,
  findEmbeddedThumbnail,
  JPEG_HEAD_BYTES,
  sharp,
  thumbnailFromEmbedded,
} from '@triage/images';
import { LocalStorage } from '@triage/storage';
import { ensureCorpus, type CorpusFile } from './corpus.js';
import { runFloor } from './floor.js';
import { describeMachine, loadResults, saveResult, writeReport, type BenchResult } from './report.js';
import { runWorkerJob } from './run.js';
import { utcStamp, wholeArg } from './util.js';

const COARSE_CELL = 84;
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const log = (line: string) => process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    photos: { type: 'string' },
    unique: { type: 'string' },
    latency: { type: 'string', default: '0' },
    corpus: { type: 'string' },
    passes: { type: 'string', default: '2' },
    smoke: { type: 'boolean', default: false },
    'no-report': { type: 'boolean', default: false },
  },
});

/** Options may be 0 (no latency), and their message names no bound. */
const positiveInt = (name: string, raw: string | undefined, fallback: number) => wholeArg(name, raw, fallback, 0, '');

const photos = values.smoke ? 24 : positiveInt('photos', values.photos, 200);
const unique = Math.min(photos, positiveInt('unique', values.unique, 200));
const latencyMs = positiveInt('latency', values.latency, 0);
const passes = values.passes === '1' ? 1 : 2;
const corpusDir = resolve(values.corpus ?? join(repoRoot, '.bench/corpus'));
const benchDir = join(repoRoot, '.bench');
const key = `${values.smoke ? 'smoke' : photos}${latencyMs > 0 ? `-latency${latencyMs}` : ''}`;

const { files, skippedHeic } = await ensureCorpus(corpusDir, unique, { log });
if (skippedHeic > 0)
  log(`corpus: ${skippedHeic} HEIC left out: install heif-enc (apt-get install libheif-examples) to include them`);
const job: CorpusFile[] = Array.from({ length: photos }, (_, i) => files[i % files.length]!);

log(`floor: bare sharp loop over ${files.length} files at ${COARSE_CELL} px`);
const floor = await runFloor(files, COARSE_CELL);
log(`floor: ${floor.msPerPhoto.toFixed(0)} ms per photo, peak RSS ${(floor.peakRss / 1048576).toFixed(0)} MB`);

log('probe: embedded-thumbnail fast path on the same files (range read of the head, pure JS parse)');
const headProbe = await probeHeads(files);

log(`worker: ${photos} photos, two passes${latencyMs > 0 ? `, ${latencyMs} ms read latency` : ''}`);
const run = await runWorkerJob({
  repoRoot,
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  storageDir: join(benchDir, 'storage'),
  photos: job,
  latencyMs,
  passes,
  timeoutMs: Math.max(600_000, photos * 5_000),
  log,
});

const require = createRequire(import.meta.url);
const libheifJs = (
  JSON.parse(
    await readFile(require.resolve('libheif-js/package.json', { paths: [join(repoRoot, 'packages/images')] }), 'utf8'),
  ) as { version: string }
).version;
const count = (p: (f: CorpusFile) => boolean) => job.filter(p).length;
const result: BenchResult = {
  key,
  date: utcStamp(),
  machine: describeMachine({ sharp: sharp.versions.sharp ?? '?', vips: sharp.versions.vips, libheifJs }),
  photos,
  unique: files.length,
  latencyMs,
  corpus: {
    jpeg: count((f) => f.kind === 'jpeg'),
    progressive: count((f) => f.progressive),
    withThumbnail: count((f) => f.thumbnail !== 'none' && f.kind === 'jpeg'),
    staleThumbnail: count((f) => f.thumbnail === 'stale'),
    png: count((f) => f.kind === 'png'),
    webp: count((f) => f.kind === 'webp'),
    heic: count((f) => f.kind === 'heic'),
    heicWithoutThumbnail: count((f) => f.kind === 'heic' && f.thumbnail === 'none'),
    meanBytes: job.reduce((n, f) => n + f.size, 0) / job.length,
    heicSkipped: skippedHeic,
  },
  headProbe,
  floor,
  run,
};
const results = join(benchDir, 'results');
if (key !== 'smoke') await saveResult(results, result);
const others = await loadResults(results);
const doc = join(repoRoot, 'docs/benchmarks.md');
const section = values['no-report']
  ? (await import('./report.js')).renderSection(result, others)
  : await writeReport(doc, result, others);
log(`\n${section}\n`);
if (!values['no-report']) log(`written to ${doc}`);
if (run.status !== 'completed') process.exitCode = 1;

/**
 * What the coarse pass's fast path would do on each JPEG carrying a fitting embedded thumbnail: a range read
 * of the head through the local driver, the pure-JS parse, then the small decode. Measured in this process.
 */
async function probeHeads(corpus: readonly CorpusFile[]): Promise<BenchResult['headProbe']> {
  const storage = new LocalStorage({ root: dirname(corpusDir) });
  const bucket = basename(corpusDir);
  const heads: number[] = [];
  let parseMs = 0;
  let thumbMs = 0;
  for (const file of corpus.filter((f) => f.kind === 'jpeg')) {
    const t0 = performance.now();
    const head = await storage.readRange(bucket, file.name, 0, JPEG_HEAD_BYTES);
    const embedded = findEmbeddedThumbnail(head);
    const t1 = performance.now();
    if (!embedded || !embeddedThumbnailFits(embedded, COARSE_CELL)) continue;
    await thumbnailFromEmbedded(embedded, COARSE_CELL);
    thumbMs += performance.now() - t1;
    parseMs += t1 - t0;
    heads.push(head.length);
  }
  heads.sort((a, b) => a - b);
  const n = Math.max(1, heads.length);
  return {
    eligible: heads.length,
    medianHeadBytes: heads[Math.floor(heads.length / 2)] ?? 0,
    parseMsPerPhoto: parseMs / n,
    thumbMsPerPhoto: thumbMs / n,
  };
}
