/**
 * The time-to-picks section of docs/benchmarks.md: issue 13's four targets, each a ratio against a reference
 * measured in the same run, marked met / not met, with the runs behind them.
 */
import { WORKER_MALLOC_ENV, WORKER_NODE_ARGS } from '@triage/queue';
import { median } from '../load/stats.js';
import { hostLine, type Machine } from '../report.js';
import type { FairRun, OneJobRun, RunFacts, SmallJobRun } from './scenarios.js';

export interface TimeResult {
  key: string;
  date: string;
  /** A note for the title (e.g. which build of the worker was measured), or null. */
  label: string | null;
  quick: boolean;
  latencyMs: number;
  /** WORKER_CONCURRENCY given to the workers, or null when left to the worker. */
  workerConcurrency: string | null;
  /** WORKER_NICE given to the workers, or null (the worker's default, 10). */
  workerNice?: string | null;
  host: Pick<Machine, 'cores' | 'cpu' | 'memoryGiB' | 'node'>;
  corpus: { unique: number; meanBytes: number; heicSkipped: number };
  /** The corpus was read once before the first run (results saved before this was done lack it). */
  corpusWarmed?: boolean;
  instant: OneJobRun;
  latency: OneJobRun;
  twoWorkers: OneJobRun;
  small: SmallJobRun;
  fair: FairRun;
}

export interface TargetFigure {
  target: string;
  measured: string;
  reference: string;
  ratio: number;
  bound: string;
  met: boolean;
  note: string;
}

const MB = 1048576;
const RSS_BOUND_MB = 192;
const s1 = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const f2 = (n: number) => n.toFixed(2);
const mbs = (n: number) => `${(n / MB).toFixed(0)} MB`;

/**
 * Targets 1 and 2 compare runs made one after the other: when the machine's other work changed between them,
 * that moves the reference as much as what is measured, and the detail says so.
 */
function loadNote(a: RunFacts, b: RunFacts): string {
  const [x, y] = [a.load.loadAtStart, b.load.loadAtStart];
  const steady = Math.abs(x - y) <= 0.25 * Math.max(x, y, 1);
  return steady
    ? ''
    : `; **caution**: load average ${x.toFixed(1)} at the start of one run and ${y.toFixed(1)} of the other, so the machine's other work moved this ratio too`;
}

export function timeTargets(r: TimeResult): TargetFigure[] {
  const L = r.latencyMs;
  const overlapRef = r.instant.ms + 2 * L;
  const peak = Math.max(...r.latency.peakRss, ...r.instant.peakRss);
  const s = r.small;
  const allowance = 3 * s.idleMs + s.drainMs;
  const aMedian = median(r.fair.aMs);
  return [
    {
      target: `1. model waits overlapped: ${r.latency.photos}-photo two-pass job, 1 worker, model at ${L} ms vs instant`,
      measured: s1(r.latency.ms),
      reference: `T₀ + 2 × L = ${s1(r.instant.ms)} + ${s1(2 * L)} = ${s1(overlapRef)}`,
      ratio: r.latency.ms / overlapRef,
      bound: '≤ 1.20',
      met: r.latency.ms <= 1.2 * overlapRef,
      note: `${r.latency.grids} grids, ${r.latency.modelCalls} model calls: the waits alone are ${s1(r.latency.modelCalls * L)}, T_L − T₀ = ${s1(r.latency.ms - r.instant.ms)}${loadNote(r.instant, r.latency)}`,
    },
    {
      target: `1. worker peak RSS (VmHWM), 1 worker, ${r.latency.photos} photos`,
      measured: mbs(peak),
      reference: `${RSS_BOUND_MB} MB`,
      ratio: peak / (RSS_BOUND_MB * MB),
      bound: '≤ 1.00',
      met: peak <= RSS_BOUND_MB * MB,
      note: `instant model ${mbs(Math.max(...r.instant.peakRss))}, model at ${L} ms ${mbs(Math.max(...r.latency.peakRss))}${r.latency.photos === 2000 ? '' : '; the target is stated for 2,000 photos'}`,
    },
    {
      target: `2. one job uses all the workers: the same job on 2 workers vs 1 (model at ${L} ms)`,
      measured: s1(r.twoWorkers.ms),
      reference: `1 worker: ${s1(r.latency.ms)}`,
      ratio: r.twoWorkers.ms / r.latency.ms,
      bound: '≤ 0.60',
      met: r.twoWorkers.ms <= 0.6 * r.latency.ms,
      note: `grids recorded by ${r.twoWorkers.workersUsed} of the 2 workers${loadNote(r.latency, r.twoWorkers)}`,
    },
    {
      target: `3. small jobs stay small: ${s.smallPhotos} photos beside ${s.bigJobs} × ${s.bigPhotos} photos of ${s.bigJobs} other users, ${s.workers} workers`,
      measured: s1(s.loadedMs),
      reference: `alone on the idle service: ${s1(s.idleMs)}`,
      ratio: s.loadedMs / s.idleMs,
      bound: '≤ 3, plus the grids in flight',
      met: s.loadedMs <= allowance,
      note:
        `${s.inFlight} grids of the big jobs in flight at submission (BullMQ active jobs: ${s.activeAtSubmit}), the last recorded ${s1(s.drainMs)} later; ` +
        `3 × idle + that = ${s1(allowance)}; ${s.bigGridsMeanwhile} grids of the big jobs recorded while it ran`,
    },
    {
      target: `4. fair shares by user: A submits 3 jobs, B 1, ${r.fair.photos} photos each, at once (B's last), ${r.fair.workers} workers`,
      measured: `B done at ${s1(r.fair.bMs)}`,
      reference: `median of A's: ${s1(aMedian)}`,
      ratio: r.fair.bMs / aMedian,
      bound: '≤ 1.00',
      met: r.fair.bMs <= aMedian,
      note: `A's done at ${r.fair.aMs.map(s1).join(', ')} (from the first submission; the four spread over ${r.fair.submitSpreadMs} ms); B − median of A's = ${r.fair.bMs - aMedian >= 0 ? '+' : ''}${((r.fair.bMs - aMedian) / 1000).toFixed(2)} s`,
    },
  ];
}

function runRows(r: TimeResult): string[] {
  const facts = (x: RunFacts) =>
    `${x.peakRss.map(mbs).join(', ')} | ${x.load.loadAtStart.toFixed(1)} / ${x.load.loadMax.toFixed(1)}`;
  const one = (name: string, x: OneJobRun) =>
    `| ${name} | ${x.workers} | ${x.latencyMs} ms | ${x.photos} | ${s1(x.ms)} | ${x.grids} grids, ${x.modelCalls} model calls, recorded by ${x.workersUsed} worker(s) | ${facts(x)} |`;
  const s = r.small;
  return [
    '| run | workers | model latency | photos | time (created → completed) | detail | worker peak RSS (VmHWM) | load average, start / max |',
    '|---|---|---|---|---|---|---|---|',
    one('one job, instant model (T₀)', r.instant),
    one('one job, model latency', r.latency),
    one('one job, two workers', r.twoWorkers),
    `| small job, idle service | ${s.workers} | ${s.latencyMs} ms | ${s.smallPhotos} | ${s1(s.idleMs)} | then, on the same workers: | |`,
    `| small job beside ${s.bigJobs} big jobs | ${s.workers} | ${s.latencyMs} ms | ${s.smallPhotos} (+ ${s.bigJobs} × ${s.bigPhotos}) | ${s1(s.loadedMs)} | submitted once every big job had recorded a grid | ${facts(s)} |`,
    `| fair shares, A × 3 and B × 1 | ${r.fair.workers} | ${r.fair.latencyMs} ms | 4 × ${r.fair.photos} | A ${r.fair.aMs.map(s1).join(', ')}; B ${s1(r.fair.bMs)} | from the first submission | ${facts(r.fair)} |`,
  ];
}

export function renderTimeSection(r: TimeResult): string {
  const title = ['Time to picks (issue 13)', r.label, r.quick ? 'quick sizes' : null].filter(Boolean).join(', ');
  const worker = `\`${Object.entries(WORKER_MALLOC_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')} node ${WORKER_NODE_ARGS.join(' ')} apps/worker/dist/main.js\``;
  const rows = timeTargets(r).map(
    (t) =>
      `| ${t.target} | ${t.measured} | ${t.reference} | **${f2(t.ratio)}** (${t.bound}) | **${t.met ? 'met' : 'not met'}** | ${t.note} |`,
  );
  return [
    `<!-- bench:${r.key} -->`,
    `## ${title} — ${r.date}`,
    '',
    hostLine(r.host, "; other processes of the machine may share these 2 cores (see each run's load average)"),
    '',
    `Setup (\`npm run bench:time${r.quick ? ' -- --quick' : ''}\`): real worker processes (${worker}, LOG_LEVEL=warn${r.workerConcurrency ? `, WORKER_CONCURRENCY=${r.workerConcurrency}` : ''}${r.workerNice ? `, WORKER_NICE=${r.workerNice}` : ''}) ` +
      `on Redis with a private prefix and the local storage driver, a fresh set of workers for each run; the Anthropic provider (VISION_PROVIDER=anthropic, grids planned for its default model) ` +
      `pointed at the local Messages API server (\`FakeAnthropic\` of @triage/vision/testing, in the benchmark's process) answering every call after ${r.latencyMs} ms (\`--latency-ms\`), or at once for T₀. ` +
      `Photos: the camera-like corpus of \`npm run bench\` (${r.corpus.unique} distinct 24 MP files, mean ${(r.corpus.meanBytes / MB).toFixed(1)} MB, cycled to the job size${r.corpus.heicSkipped > 0 ? `; ${r.corpus.heicSkipped} HEIC left out: no heif-enc` : ''}${r.corpusWarmed ? '; read once before the first run, so that every run finds it in the page cache' : ''}), ` +
      "each job submitted straight through @triage/queue with its user id, two passes, target 10 %. A job's time is the store's created_at → completed_at; " +
      "every wait is on state in Redis (a job ended, a job recorded a grid). Grids in flight are the big jobs' grids whose record spans the submission (finishedAt − durationMs ≤ created_at < finishedAt).",
    '',
    '| target (issue 13) | measured | reference (same run) | ratio (bound) | status | detail |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    ...runRows(r),
    `<!-- /bench:${r.key} -->`,
  ].join('\n');
}
