/**
 * The status route's throughput: autocannon (its own process) against GET /{id}/status while a job runs,
 * through one or more API processes (variants: log level, a candidate build) measured in turn over several
 * rounds.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { MemorySampler, resetPeak } from '../proc.js';
import { sleep } from '../util.js';
import { samplePhotos, stagePhotos, startFromStorage, type StagedFile } from './photos.js';
import { startApi, startWorkers, type Api, type Proc } from './processes.js';
import { API_PREFIX, openService, signHs256, type LoadContext, type Service } from './service.js';
import { loadWatch, type LoadSnapshot } from './stats.js';

export interface ThroughputRun {
  /** The API variant measured (e.g. "LOG_LEVEL=info"). */
  variant: string;
  label: string;
  path: string;
  round: number;
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  /** The job was still processing when autocannon finished. */
  jobRunning: boolean | null;
  gridsDuring: number | null;
  apiPeakRss: number;
  load: LoadSnapshot;
}

export interface ThroughputOptions {
  connections: number;
  durationS: number;
  /** Photos of the job that runs meanwhile. */
  jobPhotos: number;
  /** Rounds: each round measures every variant once, in turn, so that a change in the machine's load falls on all. */
  rounds: number;
}

/** One API process to measure: its name, and what differs from the default (environment, another build). */
export interface ApiVariant {
  name: string;
  env?: Record<string, string>;
  script?: string;
}

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}

async function autocannon(
  ctx: LoadContext,
  url: string,
  token: string | null,
  connections: number,
  durationS: number,
): Promise<AutocannonJson> {
  const bin = join(ctx.repoRoot, 'node_modules/autocannon/autocannon.js');
  const args = [
    bin,
    '-c',
    String(connections),
    '-d',
    String(durationS),
    '--json',
    ...(token ? ['-H', `authorization=Bearer ${token}`] : []),
    url,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`autocannon exited with ${code}: ${err}`);
  return JSON.parse(out) as AutocannonJson;
}

/** The jobs running meanwhile, the API processes (one per variant) and the token of the jobs' owner. */
interface Bench {
  svc: Service;
  apis: Api[];
  token: string;
  jobIds: string[];
}

interface Target {
  label: string;
  path: string;
  token: string | null;
}

/**
 * One API process per variant, all on the same prefix, with one worker running a `jobPhotos` job meanwhile;
 * in each round, autocannon on the job's status through every variant in turn for `durationS` (only one
 * API is loaded at a time), and, in the first round, on /health (no auth, no Redis) of the first variant:
 * the framework's own ceiling on this machine at that moment.
 */
export async function runThroughput(
  ctx: LoadContext,
  opts: ThroughputOptions,
  variants: readonly ApiVariant[],
): Promise<ThroughputRun[]> {
  const svc = await openService(ctx, 'tput');
  const procs: Proc[] = [];
  const runs: ThroughputRun[] = [];
  try {
    const bench = await startBench(ctx, svc, opts, variants, procs);
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [i, v] of variants.entries()) {
        for (const t of targetsOf(v, round, i, bench)) {
          runs.push(await measure(ctx, opts, bench, { api: bench.apis[i]!, variant: v, round, target: t }));
        }
      }
    }
    return runs;
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

/** Jobs staged, the APIs and the worker started, the jobs submitted and the first one processing. */
async function startBench(
  ctx: LoadContext,
  svc: Service,
  opts: ThroughputOptions,
  variants: readonly ApiVariant[],
  procs: Proc[],
): Promise<Bench> {
  const photos = await samplePhotos(ctx, 100);
  const userId = 'load-user-tput';
  const token = signHs256(svc.secret, userId);
  // Enough jobs that one is still running however long the rounds take (a small-photo job of 2,000 takes
  // well under a minute on a quiet machine); the status measured is the first's.
  const measuredS = (opts.rounds * variants.length + 1) * opts.durationS;
  const jobIds = Array.from({ length: Math.max(3, Math.ceil((measuredS * opts.jobPhotos) / (2000 * 20)) + 1) }, () =>
    randomUUID(),
  );
  const staged: StagedFile[][] = [];
  for (const id of jobIds) staged.push(await stagePhotos(svc, userId, id, photos, opts.jobPhotos));
  const apis: Api[] = [];
  for (const v of variants) {
    const api = await startApi(ctx, svc, v.env ?? {}, [], v.script);
    procs.push(api);
    apis.push(api);
  }
  const workers = await startWorkers(ctx, svc, 1);
  procs.push(...workers);
  for (const [k, id] of jobIds.entries()) await startFromStorage(apis[0]!, token, id, staged[k]!);
  for (let i = 0; i < 50; i++) {
    const s = await svc.store.status(jobIds[0]!);
    if (s?.status === 'processing') break;
    await sleep(100);
  }
  return { svc, apis, token, jobIds };
}

/** The first job's status through this variant, and /health once, in the first round, of the first variant. */
function targetsOf(v: ApiVariant, round: number, i: number, bench: Bench): Target[] {
  return [
    {
      label: `GET /{id}/status, ${v.name}, a job running`,
      path: `${API_PREFIX}/${bench.jobIds[0]!}/status`,
      token: bench.token,
    },
    ...(round === 1 && i === 0
      ? [
          {
            label: `GET /health (no token, no Redis), ${v.name}, a job running`,
            path: `${API_PREFIX}/health`,
            token: null,
          },
        ]
      : []),
  ];
}

async function anyRunning(bench: Bench): Promise<boolean> {
  const statuses = await Promise.all(bench.jobIds.map((id) => bench.svc.store.status(id)));
  return statuses.some((st) => st?.status === 'processing');
}

async function gridsDone(bench: Bench): Promise<number> {
  const statuses = await Promise.all(bench.jobIds.map((id) => bench.svc.store.status(id)));
  return statuses.reduce((n, st) => n + (st?.grids_done ?? 0), 0);
}

async function measure(
  ctx: LoadContext,
  opts: ThroughputOptions,
  bench: Bench,
  at: { api: Api; variant: ApiVariant; round: number; target: Target },
): Promise<ThroughputRun> {
  const { api, target: t, round } = at;
  const before = await gridsDone(bench);
  resetPeak(api.pid);
  const sampler = new MemorySampler(api.pid, 100);
  const watch = loadWatch();
  const r = await autocannon(ctx, `${api.base}${t.path}`, t.token, opts.connections, opts.durationS);
  sampler.stop();
  const load = watch.stop();
  const after = await gridsDone(bench);
  const running = await anyRunning(bench);
  const run: ThroughputRun = {
    variant: at.variant.name,
    label: t.label,
    path: t.path,
    round,
    connections: opts.connections,
    durationS: opts.durationS,
    requests: r.requests.total,
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    jobRunning: running,
    gridsDuring: after - before,
    apiPeakRss: sampler.peakHwm,
    load,
  };
  ctx.log(
    `  round ${round}, ${t.label}: ${Math.round(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, max ${run.max} ms, non-2xx ${run.non2xx}, ` +
      `job ${run.jobRunning ? 'still running' : 'not running at the end'} (${run.gridsDuring} grids during), load ${load.loadAtStart.toFixed(2)}`,
  );
  return run;
}
