#!/usr/bin/env node
/**
 * npm run load [-- options]: the service under load, from the outside (see load.ts), written to
 * docs/benchmarks.md as dated sections with every target marked met / not met.
 *
 *   --only fairness|throughput|transfer   one part (default: all three)
 *   --users U --photos P --pollers C      the fairness run (default 50 users × 100 photos, 200 pollers)
 *   --workers 1,2                         worker counts of the fairness run (one run each)
 *   --connections N --duration S          autocannon on the status route (default 50, 10 s)
 *   --job-photos N                        the job running meanwhile (default 2000 small photos)
 *   --rounds R                            rounds of the status measurement, variants in turn (default 3)
 *   --files N                             the upload / ZIP size (default 200 × 8 MiB)
 *   --api-node-options="..."              NODE_OPTIONS for the API processes (e.g. a V8 heap setting to try)
 *   --api-script=PATH                     another build of the API's server.js (a candidate fix), measured the same way
 *   --api-env="K=V K2=V2"                 more environment for the API processes
 *   --worker-nice N                       run the workers at nice N (a candidate setting)
 *   --candidate "LABEL|K=V K2=V2"         with --variant and --only throughput: one more API variant (the --api-script
 *                                         build with this environment), measured in the same rounds; repeatable
 *   --variant NAME                        names such a candidate: its sections get their own keys and titles
 *   --render                              no measurement: render the sections again from the saved results
 *                                         (.bench/load/results), e.g. to cite candidate runs made since
 *   --no-report                           print the sections without touching docs/benchmarks.md
 *   --smoke                               5 users × 20 photos, 20 pollers, 3 s autocannon, 10 files
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WORKER_MALLOC_ENV, WORKER_NODE_ARGS } from '@triage/queue';
import { describeHost, hostLine, writeSection } from './report.js';
import {
  runFairness,
  runThroughput,
  runTransfers,
  type FairnessResult,
  type LoadContext,
  type LoadSnapshot,
  type MemoryRun,
  type ThroughputRun,
  type TransferResult,
  type ApiVariant,
  median,
} from './load.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const log = (line: string) => process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    users: { type: 'string' },
    photos: { type: 'string' },
    pollers: { type: 'string' },
    workers: { type: 'string' },
    connections: { type: 'string' },
    duration: { type: 'string' },
    'job-photos': { type: 'string' },
    rounds: { type: 'string' },
    files: { type: 'string' },
    'api-node-options': { type: 'string' },
    'api-script': { type: 'string' },
    'api-env': { type: 'string' },
    'worker-nice': { type: 'string' },
    variant: { type: 'string' },
    candidate: { type: 'string', multiple: true },
    smoke: { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
    'no-report': { type: 'boolean', default: false },
  },
});

function int(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a whole number ≥ 1, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const smoke = values.smoke;
const users = int('users', values.users, smoke ? 5 : 50);
const photos = int('photos', values.photos, smoke ? 20 : 100);
const pollers = int('pollers', values.pollers, smoke ? 20 : 200);
const workerCounts = (values.workers ?? '1,2').split(',').map((w) => int('workers', w.trim(), 1));
const connections = int('connections', values.connections, 50);
const duration = int('duration', values.duration, smoke ? 3 : 10);
const jobPhotos = int('job-photos', values['job-photos'], smoke ? 300 : 2000);
const files = int('files', values.files, smoke ? 10 : 200);
const rounds = int('rounds', values.rounds, smoke ? 1 : 3);
const only = values.only;
if (only !== undefined && !['fairness', 'throughput', 'transfer'].includes(only)) {
  console.error('--only must be fairness, throughput or transfer');
  process.exit(2);
}

const ctx: LoadContext = {
  repoRoot,
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  workDir: join(repoRoot, '.bench/load'),
  log,
};
const apiNodeOptions = values['api-node-options'];
const apiEnv: Record<string, string> = {};
if (apiNodeOptions) apiEnv.NODE_OPTIONS = apiNodeOptions;
for (const pair of (values['api-env'] ?? '').split(/\s+/).filter(Boolean)) {
  const eq = pair.indexOf('=');
  if (eq < 1) {
    console.error(`--api-env takes K=V pairs, got "${pair}"`);
    process.exit(2);
  }
  apiEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
}
ctx.apiEnv = apiEnv;
if (values['worker-nice'] !== undefined) ctx.workerNice = int('worker-nice', values['worker-nice'], 0);
const variant = values.variant;
if (variant !== undefined && !/^[a-z0-9-]+$/.test(variant)) {
  console.error('--variant may hold a-z, 0-9 and - only');
  process.exit(2);
}
const candidate = variant
  ? ` (candidate: ${variant}${apiNodeOptions ? `, NODE_OPTIONS=${apiNodeOptions}` : ''}${ctx.workerNice ? `, workers at nice ${ctx.workerNice}` : ''})`
  : '';
const keyed = (key: string) => (variant ? `${key}-${variant}` : key);
if (values['api-script']) ctx.apiScript = resolve(values['api-script']);
const doc = join(repoRoot, 'docs/benchmarks.md');
const host = describeHost();
const MB = 1048576;
const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '—');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
const s1 = (ms: number) => `${f1(ms / 1000)} s`;
const mbs = (n: number) => `${f0(n / MB)} MB`;
const loadText = (l: LoadSnapshot) =>
  `${l.loadAtStart.toFixed(2)} at the start, ${l.loadMax.toFixed(2)} at most during the run (this run's own processes count in it)`;
const met = (ok: boolean) => (ok ? 'met' : 'not met');
const WORKER_BOUND_MB = 192;

/** Raw figures, kept beside the other results (.bench/load/results/KEY.json) for a closer look. */
async function save(key: string, data: unknown): Promise<void> {
  const dir = join(ctx.workDir, 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${key}.json`), `${JSON.stringify(data, null, 2)}\n`);
}

/** A saved result, or null. Throughput and transfer results are saved as {date, data}; older files as the data alone. */
function loadSaved<T>(key: string): { date: string; data: T } | null {
  const path = join(ctx.workDir, 'results', `${key}.json`);
  if (!existsSync(path)) return null;
  const raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (raw && typeof raw === 'object' && 'date' in raw && 'data' in raw) return raw as { date: string; data: T };
  const date =
    (raw as { date?: string }).date ?? statSync(path).mtime.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  return { date, data: raw as T };
}

async function emit(key: string, section: string): Promise<void> {
  log(`\n${section}\n`);
  if (!values['no-report']) {
    await writeSection(doc, key, section);
    log(`written to ${doc} (${key})`);
  }
}

/** What the same run gave with the workers at nice 10 (a candidate run with --worker-nice 10), when one was saved. */
function niceNote(o: FairnessResult['options']): string {
  const nice = loadSaved<FairnessResult>(`load-fairness-${o.users}x${o.photosPerJob}-${o.workers}w-worker-nice-10`);
  if (!nice || variant) return '';
  const n = nice.data;
  return (
    `. The same run with the worker${o.workers > 1 ? 's' : ''} at nice 10 (\`npm run load -- --only fairness --workers ${o.workers} --worker-nice 10 --variant worker-nice-10 --no-report\`, ${nice.date}; ` +
    `not in the start scripts): status p99 ${f1(n.polls.p99)} ms, max ${f1(n.polls.max)} ms, all completed: ${n.allCompleted ? 'yes' : 'no'}, in ${s1(n.wallMs)}: the kernel then lets the API run first when it has work, and the worker takes the idle time`
  );
}

function fairnessSection(r: FairnessResult): string {
  const o = r.options;
  const key = keyed(`load-fairness-${o.users}x${o.photosPerJob}-${o.workers}w`);
  const roundRobin = o.users / o.workers;
  const worst = r.jobs[r.longest.jobIndex]!;
  const peakWorker = Math.max(...r.workerPeakRss);
  const fewGridTimes = r.longest.gridTimes <= 5;
  const jobsByStart = [...r.jobs];
  const firstGrids = jobsByStart.map((j) => f1(j.firstGridMs / 1000)).join(', ');
  const totals = jobsByStart.map((j) => f1(j.totalMs / 1000)).join(', ');
  const lines = [
    `<!-- bench:${key} -->`,
    `## Load and fairness: ${o.users} users × ${o.photosPerJob} photos, ${o.workers} worker${o.workers > 1 ? 's' : ''}${candidate} — ${r.date}`,
    '',
    hostLine(
      host,
      `; load average (1 min) ${loadText(r.load)}: other processes of the machine may share these 2 cores`,
    ),
    '',
    `Setup (\`npm run load -- --only fairness\`): the API process (\`node apps/api/dist/server.js\`, HS256 tokens signed for ${o.users} users, LOG_LEVEL=info, ` +
      `RATE_LIMIT_PER_MINUTE and MAX_ACTIVE_JOBS_PER_USER raised) and ${o.workers} worker process${o.workers > 1 ? 'es' : ''} (\`node ${WORKER_NODE_ARGS.join(' ')} apps/worker/dist/main.js\`, ${Object.entries(
        WORKER_MALLOC_ENV,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}, as the start scripts run it) ` +
      `on Redis 7 with their own prefix and storage folder; ${o.photosPerJob} generated 480 × 360 sample photos (defects and 3 unreadable files included) linked into each user's ` +
      `\`triage/{user}/{job}/\`; the ${o.users} POST /start-from-storage (target 10 %, two passes, offline provider, default grids) sent at once; ` +
      `${o.pollers} clients poll GET /{id}/status every ${o.pollEveryMs / 1000} s (client i follows job i mod ${o.users} with its owner's token) until every job has ended; every latency recorded, as the client sees it. ` +
      "Worker peaks are VmHWM since the process started (as in the worker sections); the API's VmHWM is reset once it is up, so its peak is the run's own.",
    '',
    '| figure | value |',
    '|---|---|',
    `| jobs ended | ${Object.entries(r.statuses)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')} (all completed: ${r.allCompleted ? 'yes' : 'no'}) in ${s1(r.wallMs)} |`,
    `| start requests (all at once) | p50 ${f0(r.startMs.p50)} ms, max ${f0(r.startMs.max)} ms |`,
    `| status polls | ${r.polls.count} (${r.polls.errors} errors${r.polls.errorSample.length > 0 ? `: ${r.polls.errorSample.join('; ')}` : ''}) |`,
    `| status latency | p50 ${f1(r.polls.p50)} ms, p90 ${f1(r.polls.p90)} ms, p99 ${f1(r.polls.p99)} ms, max ${f1(r.polls.max)} ms (mean ${f1(r.polls.mean)} ms); ` +
      `polls sent in the first 5 s (${r.polls.early.count}, while the ${o.users} starts are accepted): p99 ${f1(r.polls.early.p99)} ms, max ${f1(r.polls.early.max)} ms; after (${r.polls.steady.count}): p99 ${f1(r.polls.steady.p99)} ms, max ${f1(r.polls.steady.max)} ms |`,
    `| grids | ${r.grids.count} (${r.grids.coarse} coarse, ${r.grids.fine} fine); duration median ${f0(r.grids.medianMs)} ms = 1 grid-time (coarse ${f0(r.grids.medianCoarseMs)} ms, fine ${f0(r.grids.medianFineMs)} ms, p90 ${f0(r.grids.p90Ms)} ms) |`,
    `| longest gap between two consecutive grids of one job (finishedAt) | ${s1(r.longest.gapMs)} = **${f1(r.longest.gridTimes)} grid-times** (${worst.user}); round-robin bound ${o.users} jobs ÷ ${o.workers} worker${o.workers > 1 ? 's' : ''} = ${f1(roundRobin)} grid-times |`,
    `| grids of other jobs inside one gap | at most ${r.longest.othersInGap} in all (${o.users - 1} other jobs), at most **${r.longest.oneOtherInGap} from any single other job**; ` +
      `the longest gap holds ${s1(worst.workInLongestGapMs)} of other jobs' grids (÷ ${o.workers} worker${o.workers > 1 ? 's' : ''} = ${s1(worst.workInLongestGapMs / o.workers)}): ` +
      `in coarse grid-times the gap is ${f1(r.longest.gapMs / r.grids.medianCoarseMs)} |`,
    `| time to first grid (accepted → first grid recorded) | p50 ${s1(r.firstGrid.p50)}, max ${s1(r.firstGrid.max)} |`,
    `| total time (accepted → completed) | p50 ${s1(r.total.p50)}, max ${s1(r.total.max)} |`,
    `| worker peak RSS (VmHWM) | ${r.workerPeakRss.map(mbs).join(', ')} (idle ${r.workerIdleRss.map(mbs).join(', ')}) |`,
    `| API peak RSS (VmHWM, reset after start-up) | ${mbs(r.apiPeakRss)} (start-up peak ${mbs(r.apiStartupPeak)}) |`,
    '',
    `Each job, in the order the users started (s): time to first grid ${firstGrids}; total ${totals}.`,
    '',
    '| target (issue 6, load and fairness) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| every job completes | ${Object.entries(r.statuses)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')} | **${met(r.allCompleted)}** | |`,
    `| status p99 < 50 ms (${o.pollers} clients every ${o.pollEveryMs / 1000} s) | p99 ${f1(r.polls.p99)} ms, max ${f1(r.polls.max)} ms | **${met(r.polls.p99 < 50 && r.polls.errors === 0)}** | ` +
      `${r.polls.p99 < 50 ? `about ${f0(r.polls.count / (r.wallMs / 1000))} req/s is far below the route’s capacity (see the status-route section); the tail is waiting for a core` : `about ${f0(r.polls.count / (r.wallMs / 1000))} req/s is far below the route’s capacity (see the status-route section), so the tail is time spent waiting for a core, not work: the API shares 2 cores with the worker${o.workers > 1 ? 's' : ''} (busy a full core while it builds a grid), the ${o.pollers} clients in this process, Redis and whatever else the machine runs (load average up to ${r.load.loadMax.toFixed(1)})`}; ` +
      `first 5 s (the ${o.users} starts being accepted, each checking ${o.photosPerJob} files): p99 ${f1(r.polls.early.p99)} ms; after: p99 ${f1(r.polls.steady.p99)} ms` +
      niceNote(o) +
      ' |',
    `| no job waits for another's whole run; longest gap within a few grid-times | ${f1(r.longest.gridTimes)} grid-times; at most ${r.longest.oneOtherInGap} grid(s) of any one other job inside a gap | ` +
      `**${fewGridTimes ? 'met' : r.longest.oneOtherInGap <= 2 ? 'not met (a few grid-times); met (no job waits for another’s whole run)' : 'not met'}** | ` +
      `${fewGridTimes ? '' : `grid jobs take turns by user (BullMQ priorities: each user's job takes turns 1, 2, 3, … beside the others'): between two grids of one job every other user's job gets about one grid, so the gap is about jobs ÷ workers = ${f1(roundRobin)} grid-times, not "a few", whenever ${o.users} jobs run on ${o.workers} worker${o.workers > 1 ? 's' : ''}. "A few grid-times" would need about as many workers as jobs, or a cap on a user's share; `}` +
      `a ${o.photosPerJob}-photo job has ${f1(r.grids.count / o.users)} grids on average: one coarse grid (up to 120 cells, median ${f0(r.grids.medianCoarseMs)} ms) and small fine grids (16 cells, median ${f0(r.grids.medianFineMs)} ms), so the median grid is a fine one, while the longest gap is a job's wait from its coarse grid to its first fine grid, ` +
      `filled with the other jobs' coarse grids: in median grid-times it exceeds jobs ÷ workers by about the ratio coarse ÷ median |`,
    `| worker memory in bound (≤ ${WORKER_BOUND_MB} MB, issue 5) | ${r.workerPeakRss.map(mbs).join(', ')} | **${met(peakWorker / MB <= WORKER_BOUND_MB)}** | ` +
      `${peakWorker / MB <= WORKER_BOUND_MB ? 'small photos (480 × 360): one pipeline at a time keeps the peak near the idle footprint' : 'the worker’s idle footprint plus one image pipeline; see the worker sections above'} |`,
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}

interface VariantSummary {
  variant: string;
  rounds: number;
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p99: number;
  p99Min: number;
  p99Max: number;
  non2xx: number;
}

function summarize(runs: readonly ThroughputRun[]): VariantSummary[] {
  const names = [...new Set(runs.map((r) => r.variant))];
  return names.map((variant) => {
    // Only the runs during which a job was running (the target's condition), unless none was.
    const all = runs.filter((r) => r.variant === variant && r.path.endsWith('/status'));
    const xs = all.some((r) => r.jobRunning !== false) ? all.filter((r) => r.jobRunning !== false) : all;
    const rps = xs.map((r) => r.rps);
    const p99 = xs.map((r) => r.p99);
    return {
      variant,
      rounds: xs.length,
      rps: median(rps),
      rpsMin: Math.min(...rps),
      rpsMax: Math.max(...rps),
      p99: median(p99),
      p99Min: Math.min(...p99),
      p99Max: Math.max(...p99),
      non2xx: xs.reduce((n, r) => n + r.non2xx + r.errors, 0),
    };
  });
}

/** Candidate runs of the status route saved since (--variant), each against the code as it is in the same rounds. */
function candidateNotes(): string {
  if (variant) return '';
  const notes: string[] = [];
  const runsOf: Record<string, string> = {
    'api-fixes': 'A patched copy of the current build',
    'api-fixes-nice': 'The same patched copy, with the worker at nice 10',
    'semi-space-1': 'The API with a 1 MB young generation (it brings the upload and ZIP under 128 MB, below)',
    'semi-space-2': 'The API with a 2 MB young generation (which also does)',
  };
  for (const [name, what] of Object.entries(runsOf)) {
    const saved = loadSaved<ThroughputRun[]>(`load-api-status-${name}`);
    if (!saved) continue;
    const [base, ...cands] = summarize(saved.data);
    if (!base || cands.length === 0) continue;
    notes.push(
      `${what} (${saved.date}, ${base.rounds} interleaved rounds): ` +
        cands
          .map(
            (c) =>
              `${c.variant.replace(/^candidate:? /, '')}: median ${f0(c.rps)} req/s (${f0(c.rpsMin)}–${f0(c.rpsMax)}), p99 ${f1(c.p99)} ms`,
          )
          .join('; ') +
        `; the code as it is in the same rounds: ${f0(base.rps)} req/s (${f0(base.rpsMin)}–${f0(base.rpsMax)}), p99 ${f1(base.p99)} ms`,
    );
  }
  return notes.length > 0
    ? ` Candidates measured with \`--variant\` on earlier builds (the CryptoKey, request lines at debug only, the worker at nice 10 and the API's 2 MB young generation have since been adopted, and verified tokens are remembered; the figures above are of the code with all of them): ${notes.join('. ')}.`
    : '';
}

function throughputSection(runs: ThroughputRun[], date: string): string {
  const key = keyed('load-api-status');
  const summaries = summarize(runs);
  const main = summaries[0]!;
  const first = runs[0]!;
  const loads = runs.map((r) => r.load);
  const loadStart = Math.min(...loads.map((l) => l.loadAtStart));
  const loadMax = Math.max(...loads.map((l) => l.loadMax));
  const row = (r: ThroughputRun) =>
    `| ${r.round} | ${r.label} | ${f0(r.rps)} | ${f1(r.p50)} / ${f1(r.p90)} / ${f1(r.p99)} / ${f1(r.max)} | ${r.requests} (${r.non2xx} non-2xx, ${r.errors} errors) | ${r.jobRunning === null ? '—' : r.jobRunning ? `yes (${r.gridsDuring} grids meanwhile)` : 'no'} | ${mbs(r.apiPeakRss)} | ${r.load.loadAtStart.toFixed(2)} / ${r.load.loadMax.toFixed(2)} |`;
  const ok = main.rps >= 10_000 && main.p99 <= 20 && main.non2xx === 0;
  const health = runs.find((r) => r.path.endsWith('/health'));
  const others = summaries.slice(1);
  const lines = [
    `<!-- bench:${key} -->`,
    `## API: the status route's throughput${candidate} — ${date}`,
    '',
    hostLine(
      host,
      `; autocannon 9 (its own process, -c ${first.connections} -d ${first.durationS}) on the same 2 cores; load average (1 min) ${loadStart.toFixed(2)} at the lowest start of a run, ${loadMax.toFixed(2)} at most (this run's own processes count in it): other processes of the machine may share these 2 cores`,
    ),
    '',
    `Setup (\`npm run load -- --only throughput\`): ${summaries.length} API processes (${summaries.map((v) => v.variant).join('; ')}), each with an HS256 secret (every request carries a token, verified), ` +
      `on one prefix; one worker process running jobs of ${jobPhotos} small photos meanwhile (several queued, so that one is always running; a run during which none was is left out of the medians); autocannon on the first job's GET /{id}/status with its owner's token, ` +
      `one API at a time, in ${Math.max(...runs.map((r) => r.round))} round${Math.max(...runs.map((r) => r.round)) > 1 ? 's' : ''} taking the variants in turn (so that a change in the machine's other load falls on all of them), plus /health once. ` +
      'Three processes (API, worker, autocannon) and Redis share 2 cores, besides whatever else the machine runs.',
    '',
    '| variant | status route: median req/s (range) | median p99 (range) | errors |',
    '|---|---|---|---|',
    ...summaries.map(
      (v) =>
        `| ${v.variant} | ${f0(v.rps)} (${f0(v.rpsMin)}–${f0(v.rpsMax)}) | ${f1(v.p99)} ms (${f1(v.p99Min)}–${f1(v.p99Max)}) | ${v.non2xx} |`,
    ),
    '',
    '| round | run | req/s | latency p50 / p90 / p99 / max (ms) | requests | job running | API peak RSS (during the run) | load avg start / max |',
    '|---|---|---|---|---|---|---|---|',
    ...runs.map(row),
    '',
    '| target (issue 5, item 6) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| status route ≥ 10,000 req/s with p99 ≤ 20 ms while a job runs | ${main.variant}: median ${f0(main.rps)} req/s, p99 ${f1(main.p99)} ms | **${met(ok)}** | ` +
      (ok
        ? ''
        : `the API is one Node process, and while the worker takes about a core and autocannon another, it gets what is left of 2 cores (less with the machine's other load)` +
          (health ? `: even GET /health (no token, no Redis) gives ${f0(health.rps)} req/s here. ` : '. ') +
          `Per status request the API finds the token among those it has verified (a SHA-256; a new token is verified with jose), ` +
          `reads owner and status in one HMGET and serializes the reply; request lines are logged at debug level only, so LOG_LEVEL changes little` +
          (others.length > 0
            ? `; ${others.map((v) => `${v.variant}: median ${f0(v.rps)} req/s, p99 ${f1(v.p99)} ms`).join('; ')}`
            : '') +
          '.' +
          candidateNotes()) +
      ' |',
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}

/** The same transfer with NODE_OPTIONS=--max-semi-space-size=1 (a candidate run), when one was saved. */
function semiNote(which: 'upload' | 'download'): string {
  if (variant) return '';
  const notes: string[] = [];
  for (const mbSemi of [1, 2, 4]) {
    const saved = loadSaved<TransferResult>(`load-api-transfer-${files}-semi-space-${mbSemi}`);
    const r = saved?.data[which];
    if (!saved || !r) continue;
    notes.push(
      `NODE_OPTIONS=--max-semi-space-size=${mbSemi}: ${mbs(r.apiPeakRss)} (idle ${mbs(r.apiIdleRss)}), ${s1(r.ms)} (${saved.date})`,
    );
  }
  return notes.length > 0
    ? `. The same transfer with a smaller young generation for the API (\`--api-node-options=--max-semi-space-size=N --variant semi-space-N\`; not in the start scripts yet): ${notes.join('; ')}`
    : '';
}

function transferSection(t: TransferResult, date: string): string {
  const key = keyed(`load-api-transfer-${t.upload.files}`);
  const row = (r: MemoryRun) =>
    `| ${r.label} | ${r.status} | ${f0(r.bytes / MB)} MB in ${s1(r.ms)} (${f0(r.bytes / MB / (r.ms / 1000))} MB/s) | ${mbs(r.apiPeakRss)} (idle ${mbs(r.apiIdleRss)}, start-up peak ${mbs(r.apiStartupPeak)}${r.peakReset ? '' : ', not reset: the peak includes start-up'}) | ${r.load.loadAtStart.toFixed(2)} / ${r.load.loadMax.toFixed(2)} |`;
  const up = t.upload;
  const down = t.download;
  const lines = [
    `<!-- bench:${key} -->`,
    `## API: memory during a ${up.files} × 8 MB upload and a ${up.files}-file ZIP${candidate} — ${date}`,
    '',
    hostLine(host, `; load average (1 min) ${loadText(up.load)}`),
    '',
    `Setup (\`npm run load -- --only transfer\`): a fresh API process (MALLOC_ARENA_MAX=2, LOG_LEVEL=info, HS256 tokens) for each transfer; half a second after it answers, its VmHWM (the start-up peak) is read and reset to the current RSS (\`5\` to /proc/<pid>/clear_refs), so that the peak reported is the transfer's own. ` +
      `Upload: ${up.files} files of 8 MiB (a small real JPEG followed by filler) as one multipart POST /start, built as a stream: a FormData of file-backed Blobs (\`fs.openAsBlob\`) that fetch reads from disk as it sends. ` +
      `Download: the accepted job marked completed with all ${up.files} photos picked (through the store: no worker needed for the route), its ZIP read by this process and counted.`,
    '',
    '| transfer | HTTP | bytes, time | API peak RSS (VmHWM) | load avg start / max |',
    '|---|---|---|---|---|',
    row(up),
    ...(down ? [row(down)] : []),
    '',
    '| target (issue 5, item 6) | measured | status | what limits it |',
    '|---|---|---|---|',
    `| ${up.files} × 8 MB multipart upload: API peak RSS < 128 MB | ${mbs(up.apiPeakRss)} | **${up.status === 200 ? met(up.apiPeakRss < 128 * MB) : 'not met'}** | ` +
      `${up.status !== 200 ? `the upload failed: ${up.detail}` : up.apiPeakRss < 128 * MB ? `parts are streamed to storage; the idle process is already ${mbs(up.apiIdleRss)}` : `not the streaming (every part goes to storage as it arrives) but V8's young generation: its 16 MB semi-spaces fill with the parts' short-lived Buffers, whose memory returns only when a scavenge collects them, and the idle process is already ${mbs(up.apiIdleRss)}${semiNote('upload')}`} |`,
    down
      ? `| ZIP of ${down.files} picks of 8 MB: API peak RSS < 128 MB | ${mbs(down.apiPeakRss)} (${f0(down.bytes / MB)} MB sent) | **${down.status === 200 ? met(down.apiPeakRss < 128 * MB) : 'not met'}** | ` +
        `${down.apiPeakRss < 128 * MB ? `entries are stored and read lazily, one at a time; the idle process is already ${mbs(down.apiIdleRss)}` : `entries are read lazily, one at a time; as for the upload, the read Buffers wait in V8's young generation for a scavenge, over an idle footprint of ${mbs(down.apiIdleRss)}${semiNote('download')}`} |`
      : `| ZIP: API peak RSS < 128 MB | — | **not measured** | the upload did not produce a job |`,
    `<!-- /bench:${key} -->`,
  ];
  return lines.join('\n');
}

// Process logs of the previous run (an API at LOG_LEVEL=info under autocannon writes tens of MB).
await rm(join(ctx.workDir, 'logs'), { recursive: true, force: true });

const stamp = () => new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';

if (values.render) {
  if (!only || only === 'fairness') {
    for (const workers of workerCounts) {
      const saved = loadSaved<FairnessResult>(keyed(`load-fairness-${users}x${photos}-${workers}w`));
      if (saved) await emit(keyed(`load-fairness-${users}x${photos}-${workers}w`), fairnessSection(saved.data));
    }
  }
  if (!only || only === 'throughput') {
    const saved = loadSaved<ThroughputRun[]>(keyed('load-api-status'));
    if (saved) await emit(keyed('load-api-status'), throughputSection(saved.data, saved.date));
  }
  if (!only || only === 'transfer') {
    const saved = loadSaved<TransferResult>(keyed(`load-api-transfer-${files}`));
    if (saved) await emit(keyed(`load-api-transfer-${files}`), transferSection(saved.data, saved.date));
  }
  process.exit(0);
}

if (!only || only === 'fairness') {
  for (const workers of workerCounts) {
    log(`fairness: ${users} users × ${photos} photos, ${pollers} pollers, ${workers} worker(s)`);
    const r = await runFairness(ctx, {
      users,
      photosPerJob: photos,
      pollers,
      workers,
      pollEveryMs: 2000,
      timeoutMs: 20 * 60_000,
    });
    await save(keyed(`load-fairness-${users}x${photos}-${workers}w`), r);
    await emit(keyed(`load-fairness-${users}x${photos}-${workers}w`), fairnessSection(r));
  }
}
if (!only || only === 'throughput') {
  const date = stamp();
  const repoScript = join(repoRoot, 'apps/api/dist/server.js');
  // Candidates (--variant with --api-script / --api-env / --api-node-options) are compared with the code as it is, in the same rounds.
  const parseEnv = (spec: string) =>
    Object.fromEntries(
      spec
        .split(/\s+/)
        .filter(Boolean)
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    ) as Record<string, string>;
  const candidates = (values.candidate ?? []).map((c) => {
    const [label, spec = ''] = c.split('|');
    return { name: `candidate: ${label}`, script: ctx.apiScript ?? repoScript, env: { ...apiEnv, ...parseEnv(spec) } };
  });
  const variants: ApiVariant[] = variant
    ? [
        { name: 'LOG_LEVEL=info (the code as it is)', script: repoScript, env: {} },
        ...(candidates.length > 0
          ? candidates
          : [
              {
                name: `candidate ${variant}${apiNodeOptions ? ` (NODE_OPTIONS=${apiNodeOptions})` : ''}`,
                script: ctx.apiScript ?? repoScript,
                env: { ...apiEnv },
              },
            ]),
      ]
    : [
        { name: 'LOG_LEVEL=info', script: repoScript, env: { ...apiEnv } },
        { name: 'LOG_LEVEL=warn', script: repoScript, env: { ...apiEnv, LOG_LEVEL: 'warn' } },
      ];
  const saved = { env: ctx.apiEnv, script: ctx.apiScript };
  ctx.apiEnv = {};
  delete ctx.apiScript;
  const runs = await runThroughput(ctx, { connections, durationS: duration, jobPhotos, rounds }, variants);
  ctx.apiEnv = saved.env;
  if (saved.script) ctx.apiScript = saved.script;
  await save(keyed('load-api-status'), { date, data: runs });
  await emit(keyed('load-api-status'), throughputSection(runs, date));
}
if (!only || only === 'transfer') {
  const date = stamp();
  const t = await runTransfers(ctx, files);
  await save(keyed(`load-api-transfer-${files}`), { date, data: t });
  await emit(keyed(`load-api-transfer-${files}`), transferSection(t, date));
}
