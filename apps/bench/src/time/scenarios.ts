/**
 * The time a user waits for picks (issue 13), from the outside: each scenario on its own service (a private
 * prefix on the shared Redis and its own storage folder, as the load benchmark opens them), with real worker
 * processes started as the load benchmark starts them, the Anthropic provider pointed at the local Messages API
 * server (`FakeAnthropic`) answering every call after a set latency, and photos of the camera-like corpus
 * submitted straight through @triage/queue (prepareTriage + submitTriage), each job with its user id.
 *
 * A job's time is the store's own: created_at (submitted) → completed_at, whatever the worker does inside.
 * Every wait is on state read from Redis (a job ended, a job recorded a grid), never a fixed time.
 */
import { randomUUID } from 'node:crypto';
import type { VisionProfile } from '@triage/core';
import {
  prepareTriage,
  submitTriage,
  type GridRecord,
  type PhotoInput,
  type TriageJobData,
  type TriageStatus,
} from '@triage/queue';
import type { FakeAnthropic } from '@triage/vision/testing';
import type { Queue } from 'bullmq';
import type { CorpusFile } from '../corpus.js';
import { stagePhotos } from '../load/photos.js';
import { startWorkers, type Proc } from '../load/processes.js';
import { BUCKET, openService, type LoadContext, type Service } from '../load/service.js';
import { loadWatch, type LoadSnapshot } from '../load/stats.js';
import { sleep } from '../util.js';
import { queueOf } from '../prefix.js';
import { MemorySampler } from '../proc.js';

const TERMINAL = ['completed', 'failed', 'cancelled'];
const POLL_MS = 250;

export interface TimeBench {
  /** The load benchmark's context; its workerEnv points the workers at the local Messages API server. */
  ctx: LoadContext;
  fake: FakeAnthropic;
  corpus: readonly CorpusFile[];
  /** The model's profile, which the grids are planned for. */
  profile: VisionProfile;
  /** The longest any one wait may take. */
  timeoutMs: number;
}

/** Every model call answered after `ms` from now on (0: at once): the server's own latency rule. */
export function setModelLatency(fake: FakeAnthropic, ms: number): void {
  fake.clearFaults();
  if (ms > 0) fake.inject({ fault: { kind: 'latency', ms } });
}

interface StagedJob {
  triageId: string;
  userId: string;
  photos: PhotoInput[];
}

/** A service with its workers up, as a scenario sees it. */
interface Running {
  svc: Service;
  queue: Queue<TriageJobData>;
  workers: Proc[];
  /** Links `count` corpus photos into the user's folder (before the clock starts). */
  stage(userId: string, count: number): Promise<StagedJob>;
  submit(job: StagedJob): Promise<void>;
  /** Polls the jobs' statuses until `done` says so; fails if a worker dies or the timeout passes. */
  waitUntil(ids: readonly string[], what: string, done: (statuses: TriageStatus[]) => boolean): Promise<TriageStatus[]>;
}

/** What every run reports besides its own figures. */
export interface RunFacts {
  /** Each worker's peak RSS (VmHWM). */
  peakRss: number[];
  /** The machine's load average (1 min) when the run started and the highest seen during it. */
  load: LoadSnapshot;
}

/** Runs `fn` on a fresh service with `workerCount` worker processes; adds the workers' peaks and the machine's load. */
async function withService<T>(
  bench: TimeBench,
  name: string,
  workerCount: number,
  fn: (run: Running) => Promise<T>,
): Promise<T & RunFacts> {
  const svc = await openService(bench.ctx, name);
  const queue = queueOf(svc);
  const workers: Proc[] = [];
  let samplers: MemorySampler[] = [];
  let watch: ReturnType<typeof loadWatch> | null = null;
  try {
    workers.push(...(await startWorkers(bench.ctx, svc, workerCount)));
    samplers = workers.map((w) => new MemorySampler(w.pid, 100));
    watch = loadWatch();
    const run: Running = {
      svc,
      queue,
      workers,
      async stage(userId, count) {
        const triageId = randomUUID();
        const files = await stagePhotos(svc, userId, triageId, bench.corpus, count);
        return { triageId, userId, photos: files.map((f) => ({ name: f.original_name, path: f.storage_path })) };
      },
      async submit(job) {
        const input = {
          triageId: job.triageId,
          userId: job.userId,
          bucket: BUCKET,
          photos: job.photos,
          target: '10%',
          passes: 2,
        };
        await submitTriage(queue, svc.store, prepareTriage(input, bench.profile, {}));
      },
      waitUntil: (ids, what, done) => waitUntil(bench, svc, workers, ids, what, done),
    };
    const result = await fn(run);
    samplers.forEach((s) => s.stop());
    return {
      ...result,
      load: watch.stop(),
      peakRss: samplers.map((s) => s.peak()),
    };
  } finally {
    samplers.forEach((s) => s.stop());
    watch?.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await queue.close();
    await svc.cleanup();
  }
}

async function waitUntil(
  bench: TimeBench,
  svc: Service,
  workers: readonly Proc[],
  ids: readonly string[],
  what: string,
  done: (statuses: TriageStatus[]) => boolean,
): Promise<TriageStatus[]> {
  const started = performance.now();
  let lastLine = '';
  for (;;) {
    const statuses = await Promise.all(ids.map((id) => svc.store.status(id)));
    if (statuses.every((s): s is TriageStatus => s !== null) && done(statuses)) return statuses;
    const dead = workers.find((w) => w.child.exitCode !== null);
    if (dead) throw new Error(`a worker exited while waiting for ${what}:\n${dead.tail()}`);
    if (performance.now() - started > bench.timeoutMs)
      throw new Error(`${what}: not within ${bench.timeoutMs / 1000} s`);
    const grids = statuses.reduce((n, s) => n + (s?.grids_done ?? 0), 0);
    const line = `  ${what}: ${grids} grids recorded`;
    if (line !== lastLine) {
      bench.ctx.log(`${line} (${Math.round((performance.now() - started) / 1000)} s)`);
      lastLine = line;
    }
    await sleep(POLL_MS);
  }
}

const allEnded = (statuses: TriageStatus[]) => statuses.every((s) => TERMINAL.includes(s.status));

/** created_at → completed_at of a completed job, ms; a job that did not complete has no time to report. */
function jobMs(status: TriageStatus): number {
  if (status.status !== 'completed' || !status.completed_at) {
    throw new Error(
      `job ${status.job_id} ended ${status.status}${status.error_message ? `: ${status.error_message}` : ''}`,
    );
  }
  return Date.parse(status.completed_at) - Date.parse(status.created_at);
}

export interface OneJobRun extends RunFacts {
  workers: number;
  latencyMs: number;
  photos: number;
  ms: number;
  grids: number;
  modelCalls: number;
  /** How many worker processes recorded grids of the job. */
  workersUsed: number;
}

/** Targets 1 and 2: one two-pass job alone on `workers` worker processes, the model answering after `latencyMs`. */
export async function runOneJob(
  bench: TimeBench,
  workers: number,
  latencyMs: number,
  photos: number,
): Promise<OneJobRun> {
  setModelLatency(bench.fake, latencyMs);
  const callsBefore = bench.fake.requests.length;
  bench.ctx.log(`one job: ${photos} photos, ${workers} worker(s), model latency ${latencyMs} ms`);
  const r = await withService(bench, `time-${workers}w`, workers, async (run) => {
    const job = await run.stage('time-user-a', photos);
    await run.submit(job);
    const [status] = await run.waitUntil([job.triageId], `${photos}-photo job`, allEnded);
    const records = await run.svc.store.gridRecords(job.triageId);
    return { ms: jobMs(status!), grids: records.length, workersUsed: new Set(records.map((g) => g.worker)).size };
  });
  return { workers, latencyMs, photos, modelCalls: bench.fake.requests.length - callsBefore, ...r };
}

export interface SmallJobRun extends RunFacts {
  workers: number;
  latencyMs: number;
  smallPhotos: number;
  bigJobs: number;
  bigPhotos: number;
  idleMs: number;
  loadedMs: number;
  /** Grids of the big jobs being built or judged when the small job was submitted (from their records). */
  inFlight: number;
  /** BullMQ's active jobs at that moment (a cross-check of the above). */
  activeAtSubmit: number;
  /** Submission → the last of those grids recorded, ms. */
  drainMs: number;
  /** Grids of the big jobs recorded while the small job ran. */
  bigGridsMeanwhile: number;
}

/**
 * Target 3: a small job alone on an idle service, then the same job submitted once each of `bigJobs` big jobs
 * (one per other user) has recorded at least one grid.
 */
export async function runSmallUnderLoad(
  bench: TimeBench,
  o: { workers: number; latencyMs: number; smallPhotos: number; bigJobs: number; bigPhotos: number },
): Promise<SmallJobRun> {
  setModelLatency(bench.fake, o.latencyMs);
  bench.ctx.log(
    `small job: ${o.smallPhotos} photos alone, then beside ${o.bigJobs} × ${o.bigPhotos} photos, ${o.workers} worker(s)`,
  );
  const r = await withService(bench, 'time-small', o.workers, async (run) => {
    const idle = await run.stage('time-small-user', o.smallPhotos);
    await run.submit(idle);
    const [idleStatus] = await run.waitUntil([idle.triageId], 'small job, idle service', allEnded);
    const bigs: StagedJob[] = [];
    for (let i = 0; i < o.bigJobs; i++) bigs.push(await run.stage(`time-big-user-${i + 1}`, o.bigPhotos));
    const loaded = await run.stage('time-small-user', o.smallPhotos);
    for (const big of bigs) await run.submit(big);
    await run.waitUntil(
      bigs.map((b) => b.triageId),
      'a grid of every big job',
      (st) => st.every((s) => s.grids_done >= 1),
    );
    const activeAtSubmit = await run.queue.getActiveCount();
    await run.submit(loaded);
    const [status] = await run.waitUntil([loaded.triageId], 'small job beside the big ones', allEnded);
    const records = (await Promise.all(bigs.map((b) => run.svc.store.gridRecords(b.triageId)))).flat();
    return { idleMs: jobMs(idleStatus!), loadedMs: jobMs(status!), activeAtSubmit, ...inFlightAt(records, status!) };
  });
  return { ...o, ...r };
}

/** The big jobs' grids in flight when the small job was created, and how many they recorded while it ran. */
function inFlightAt(
  records: readonly GridRecord[],
  small: TriageStatus,
): { inFlight: number; drainMs: number; bigGridsMeanwhile: number } {
  const t = Date.parse(small.created_at);
  const end = Date.parse(small.completed_at ?? small.created_at);
  const flying = records.filter((g) => g.finishedAt - g.durationMs <= t && g.finishedAt > t);
  return {
    inFlight: flying.length,
    drainMs: Math.max(0, ...flying.map((g) => g.finishedAt - t)),
    bigGridsMeanwhile: records.filter((g) => g.finishedAt > t && g.finishedAt <= end).length,
  };
}

export interface FairRun extends RunFacts {
  workers: number;
  latencyMs: number;
  photos: number;
  /** Submission of the first job → each of A's jobs completed, ms. */
  aMs: number[];
  /** The same for B's job. */
  bMs: number;
  /** Spread of the four submissions (created_at), ms. */
  submitSpreadMs: number;
}

/** Target 4: user A submits three jobs and user B one of the same size, all at once (B's last). */
export async function runFairShares(
  bench: TimeBench,
  o: { workers: number; latencyMs: number; photos: number },
): Promise<FairRun> {
  setModelLatency(bench.fake, o.latencyMs);
  bench.ctx.log(`fair shares: user A 3 × ${o.photos} photos, user B 1 × ${o.photos}, ${o.workers} worker(s)`);
  const r = await withService(bench, 'time-fair', o.workers, async (run) => {
    const jobs = [];
    for (const user of ['time-user-a', 'time-user-a', 'time-user-a', 'time-user-b'])
      jobs.push(await run.stage(user, o.photos));
    await Promise.all(jobs.map((j) => run.submit(j)));
    const statuses = await run.waitUntil(
      jobs.map((j) => j.triageId),
      'the four jobs',
      allEnded,
    );
    statuses.forEach(jobMs);
    const created = statuses.map((s) => Date.parse(s.created_at));
    const t0 = Math.min(...created);
    const done = statuses.map((s) => Date.parse(s.completed_at!) - t0);
    return { aMs: done.slice(0, 3), bMs: done[3]!, submitSpreadMs: Math.max(...created) - t0 };
  });
  return { ...o, ...r };
}
