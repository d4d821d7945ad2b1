#!/usr/bin/env node
/**
 * npm run bench:time [-- options]: the time a user waits for picks with a model that takes its time (issue
 * 13), from the outside (see scenarios.ts), written to docs/benchmarks.md as a dated section with each target's
 * ratio against a reference measured in the same run.
 *
 *   --latency-ms MS           the model's answer time per call (default 2500)
 *   --quick                   smaller jobs (200 photos, 5 × 200 beside the small job, 4 × 60 for fair shares)
 *   --workers N               worker processes of targets 3 and 4 (default 2)
 *   --worker-concurrency N    WORKER_CONCURRENCY for every worker, only when given (a worker that does not read it ignores it)
 *   --worker-nice N           WORKER_NICE for every worker, only when given (default 10: on a machine shared with other
 *                             work, that work takes most of the cores from the workers and swamps the model's waits)
 *   --label TEXT              a note for the section's title and key (e.g. which build of the worker)
 *   --corpus DIR              where the corpus is generated and cached (default .bench/corpus)
 *   --no-report               print the section without touching docs/benchmarks.md
 *   --render                  no measurement: the section again from the saved result of the same options (.bench/time/results)
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL, profileFor } from '@triage/core';
import { FakeAnthropic } from '@triage/vision/testing';
import { ensureCorpus, type CorpusFile } from '../corpus.js';
import type { LoadContext } from '../load/service.js';
import { utcStamp, wholeArg } from '../util.js';
import { describeHost, writeSection } from '../report.js';
import { renderTimeSection, timeTargets, type TimeResult } from './report.js';
import { runFairShares, runOneJob, runSmallUnderLoad, type TimeBench } from './scenarios.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const log = (line: string) => process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    'latency-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string' },
    'worker-concurrency': { type: 'string' },
    'worker-nice': { type: 'string' },
    label: { type: 'string' },
    corpus: { type: 'string' },
    'no-report': { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
  },
});

const whole = (name: string, raw: string | undefined, fallback: number, min: number) =>
  wholeArg(name, raw, fallback, min);

const quick = values.quick;
const latencyMs = whole('latency-ms', values['latency-ms'], 2500, 1);
const workers = whole('workers', values.workers, 2, 1);
const concurrency =
  values['worker-concurrency'] === undefined
    ? null
    : String(whole('worker-concurrency', values['worker-concurrency'], 1, 1));
const nice = values['worker-nice'] === undefined ? null : String(whole('worker-nice', values['worker-nice'], 10, 0));
const sizes = quick
  ? { big: 200, small: 16, loadJobs: 5, loadPhotos: 200, fair: 60 }
  : { big: 2000, small: 16, loadJobs: 5, loadPhotos: 2000, fair: 300 };
const label = values.label?.trim() || null;
const slug = label
  ? `-${label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')}`
  : '';
const key = `time-to-picks${quick ? '-quick' : ''}${slug}`;
const workDir = join(repoRoot, '.bench/time');

const resultFile = join(workDir, 'results', `${key}.json`);
const result = values.render ? (JSON.parse(await readFile(resultFile, 'utf8')) as TimeResult) : await measure();
if (!values.render) {
  await mkdir(dirname(resultFile), { recursive: true });
  await writeFile(resultFile, `${JSON.stringify(result, null, 2)}\n`);
}
const section = renderTimeSection(result);
log(`\n${section}\n`);
for (const t of timeTargets(result))
  log(`${t.met ? 'met    ' : 'NOT MET'}  ${t.ratio.toFixed(2)} (${t.bound})  ${t.target}`);
if (!values['no-report']) {
  const doc = join(repoRoot, 'docs/benchmarks.md');
  await writeSection(doc, key, section);
  log(`written to ${doc} (${key})`);
}

async function measure(): Promise<TimeResult> {
  const { files, skippedHeic } = await ensureCorpus(resolve(values.corpus ?? join(repoRoot, '.bench/corpus')), 200, {
    log,
  });
  await warmPageCache(files);
  const fake = await FakeAnthropic.start();
  try {
    const ctx: LoadContext = {
      repoRoot,
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      workDir,
      log,
      workerEnv: workerEnvFor(fake),
    };
    const bench: TimeBench = { ctx, fake, corpus: files, profile: profileFor(DEFAULT_MODEL), timeoutMs: 20 * 60_000 };
    const date = utcStamp();
    const runs = await runScenarios(bench);
    const corpus = {
      unique: files.length,
      meanBytes: files.reduce((n, f) => n + f.size, 0) / files.length,
      heicSkipped: skippedHeic,
    };
    return {
      key,
      date,
      label,
      quick,
      latencyMs,
      workerConcurrency: concurrency,
      workerNice: nice,
      host: describeHost(),
      corpus,
      corpusWarmed: true,
      ...runs,
    };
  } finally {
    await fake.close();
  }
}

/** Every run finds the files in the page cache: else the first (T₀) would pay the disk reads alone. */
async function warmPageCache(files: readonly CorpusFile[]): Promise<void> {
  log(`corpus: reading the ${files.length} files once`);
  for (const f of files) for await (const chunk of createReadStream(f.path, { highWaterMark: 1 << 20 })) void chunk;
}

/** The workers' model: the Anthropic provider against the local server, and the worker settings given. */
function workerEnvFor(fake: FakeAnthropic): Record<string, string> {
  const env: Record<string, string> = {
    VISION_PROVIDER: 'anthropic',
    ANTHROPIC_API_KEY: fake.apiKey,
    ANTHROPIC_BASE_URL: fake.url,
  };
  if (concurrency !== null) env.WORKER_CONCURRENCY = concurrency;
  if (nice !== null) env.WORKER_NICE = nice;
  return env;
}

/** The scenarios in turn: one job instant and slow, on two workers, the small job under load, fair shares. */
async function runScenarios(
  bench: TimeBench,
): Promise<Pick<TimeResult, 'instant' | 'latency' | 'twoWorkers' | 'small' | 'fair'>> {
  const instant = await runOneJob(bench, 1, 0, sizes.big);
  const latency = await runOneJob(bench, 1, latencyMs, sizes.big);
  const twoWorkers = await runOneJob(bench, 2, latencyMs, sizes.big);
  const small = await runSmallUnderLoad(bench, {
    workers,
    latencyMs,
    smallPhotos: sizes.small,
    bigJobs: sizes.loadJobs,
    bigPhotos: sizes.loadPhotos,
  });
  const fair = await runFairShares(bench, { workers, latencyMs, photos: sizes.fair });
  return { instant, latency, twoWorkers, small, fair };
}
