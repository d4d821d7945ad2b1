/**
 * Fairness: U users each start a P-photo job at once (POST /start-from-storage) while C clients poll
 * GET /{id}/status every 2 s; reports status latency, every job's time to first grid and total time, the
 * longest gap between two consecutive grids of one job in grid-times, and the workers' peak RSS. Memory comes
 * from /proc/<pid>/status (VmHWM), never from inside V8.
 */
import { randomUUID } from 'node:crypto';
import type { GridRecord, TriageStatus } from '@triage/queue';
import type { SampleFile } from '@triage/images';
import { memoryOf, MemorySampler, resetPeak } from '../proc.js';
import { mb, sleep, utcStamp } from '../util.js';
import { samplePhotos, stagePhotos, startFromStorage, type StagedFile } from './photos.js';
import { startApi, startWorkers, type Api, type Proc } from './processes.js';
import { API_PREFIX, openService, signHs256, TERMINAL, type LoadContext, type Service } from './service.js';
import { loadWatch, median, quantile, splitAt, type LoadSnapshot } from './stats.js';

export interface FairnessOptions {
  users: number;
  photosPerJob: number;
  pollers: number;
  workers: number;
  pollEveryMs: number;
  timeoutMs: number;
}

export interface JobFigures {
  user: string;
  jobId: string;
  status: string;
  grids: number;
  /** POST accepted → first grid recorded, ms. */
  firstGridMs: number;
  /** POST accepted → completed, ms. */
  totalMs: number;
  /** Longest time between two consecutive grids of this job (finishedAt), ms. */
  longestGapMs: number;
  /** Most grids of other jobs recorded inside one such gap. */
  othersInGap: number;
  /** Most grids of any single other job recorded inside one such gap (1 = strict round robin). */
  oneOtherInGap: number;
  /** Inside the longest gap: the durations of the other jobs' grids recorded in it, summed, ms. */
  workInLongestGapMs: number;
}

export interface FairnessResult {
  options: FairnessOptions;
  date: string;
  load: LoadSnapshot;
  allCompleted: boolean;
  statuses: Record<string, number>;
  wallMs: number;
  /** Start requests: latency of the POSTs sent all at once. */
  startMs: { p50: number; max: number };
  polls: {
    count: number;
    errors: number;
    errorSample: string[];
    p50: number;
    p90: number;
    p99: number;
    max: number;
    mean: number;
    /** The polls sent in the first 5 s (while the starts are accepted and the first grids run) and after. */
    early: { count: number; p99: number; max: number };
    steady: { count: number; p99: number; max: number };
  };
  grids: {
    count: number;
    coarse: number;
    fine: number;
    medianMs: number;
    medianCoarseMs: number;
    medianFineMs: number;
    p90Ms: number;
  };
  jobs: JobFigures[];
  longest: { gapMs: number; gridTimes: number; jobIndex: number; othersInGap: number; oneOtherInGap: number };
  firstGrid: { p50: number; max: number };
  total: { p50: number; max: number };
  workerPeakRss: number[];
  workerIdleRss: number[];
  /** The API's VmHWM at start-up, then reset: apiPeakRss is the run's own peak. */
  apiStartupPeak: number;
  apiPeakRss: number;
}

interface FairUser {
  id: string;
  jobId: string;
  token: string;
  files: StagedFile[];
  acceptedAt: number;
}

/** What is measured from the moment the processes are up: memory, the machine's load, the date. */
interface Meters {
  workerIdleRss: number[];
  samplers: MemorySampler[];
  apiStartupPeak: number;
  apiSampler: MemorySampler;
  watch: { stop(): LoadSnapshot };
  date: string;
}

interface Polls {
  latencies: number[];
  /** When each poll was sent, ms after the starts: splits the start burst from the steady state. */
  sentAt: number[];
  errorSample: string[];
  errors: number;
}

/** The run as measured, before it is summed up. */
interface FairRun {
  users: FairUser[];
  startLatencies: number[];
  polls: Polls;
  finalStatus: Map<string, TriageStatus | null>;
  wallMs: number;
  load: LoadSnapshot;
}

export async function runFairness(ctx: LoadContext, opts: FairnessOptions): Promise<FairnessResult> {
  const svc = await openService(ctx, `fair${opts.workers}w`);
  const photos = await samplePhotos(ctx, Math.min(opts.photosPerJob, 100));
  const procs: Proc[] = [];
  try {
    const users = await stageUsers(svc, opts, photos);
    ctx.log(
      `fairness: staged ${opts.users} × ${opts.photosPerJob} photos; starting the API and ${opts.workers} worker(s)`,
    );
    const api = await startApi(ctx, svc);
    procs.push(api);
    const workers = await startWorkers(ctx, svc, opts.workers);
    procs.push(...workers);
    const meters = await startMeters(api, workers);
    const run = await runJobs(ctx, svc, opts, { api, users, procs, samplers: meters.samplers });
    meters.samplers.forEach((s) => s.stop());
    meters.apiSampler.stop();
    const load = meters.watch.stop();
    const recordsByJob = await Promise.all(users.map((u) => svc.store.gridRecords(u.jobId)));
    return fairnessFigures(opts, { ...run, load }, recordsByJob, {
      date: meters.date,
      workerPeakRss: meters.samplers.map((s) => s.peak()),
      workerIdleRss: meters.workerIdleRss,
      apiStartupPeak: meters.apiStartupPeak,
      apiPeakRss: meters.apiSampler.peak(),
    });
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

async function stageUsers(svc: Service, opts: FairnessOptions, photos: readonly SampleFile[]): Promise<FairUser[]> {
  const users: FairUser[] = Array.from({ length: opts.users }, (_, i) => ({
    id: `load-user-${String(i + 1).padStart(3, '0')}`,
    jobId: randomUUID(),
    token: '',
    files: [],
    acceptedAt: 0,
  }));
  for (const u of users) {
    u.token = signHs256(svc.secret, u.id);
    u.files = await stagePhotos(svc, u.id, u.jobId, photos, opts.photosPerJob);
  }
  return users;
}

async function startMeters(api: Api, workers: readonly Proc[]): Promise<Meters> {
  await sleep(500);
  const workerIdleRss = workers.map((w) => memoryOf(w.pid)?.rss ?? 0);
  const samplers = workers.map((w) => new MemorySampler(w.pid, 100));
  const apiStartupPeak = memoryOf(api.pid)?.hwm ?? 0;
  resetPeak(api.pid);
  const apiSampler = new MemorySampler(api.pid, 100);
  return { workerIdleRss, samplers, apiStartupPeak, apiSampler, watch: loadWatch(), date: utcStamp() };
}

/** Every user starts at once; the pollers run until every job has ended (or the run's time is up). */
async function runJobs(
  ctx: LoadContext,
  svc: Service,
  opts: FairnessOptions,
  run: { api: Api; users: FairUser[]; procs: readonly Proc[]; samplers: readonly MemorySampler[] },
): Promise<Omit<FairRun, 'load'>> {
  const { api, users } = run;
  const t0 = performance.now();
  const startLatencies = await Promise.all(
    users.map(async (u) => {
      const s = performance.now();
      await startFromStorage(api, u.token, u.jobId, u.files);
      u.acceptedAt = Date.now();
      return performance.now() - s;
    }),
  );
  ctx.log(
    `fairness: ${opts.users} jobs accepted in ${Math.round(performance.now() - t0)} ms; ${opts.pollers} clients poll every ${opts.pollEveryMs} ms`,
  );
  const deadline = performance.now() + opts.timeoutMs;
  const pollers = startPollers(api, users, opts, t0, deadline);
  const finalStatus = await untilJobsEnd(ctx, svc, { ...run, t0, deadline, polls: pollers.polls });
  const wallMs = performance.now() - t0;
  await pollers.stop();
  return { users, startLatencies, polls: pollers.polls, finalStatus, wallMs };
}

/** Client i follows job i mod users with its owner's token, every pollEveryMs, until stopped. */
function startPollers(
  api: Api,
  users: readonly FairUser[],
  opts: FairnessOptions,
  t0: number,
  deadline: number,
): { polls: Polls; stop(): Promise<void> } {
  const polls: Polls = { latencies: [], sentAt: [], errorSample: [], errors: 0 };
  let done = false;
  const failed = (what: string) => {
    polls.errors++;
    if (polls.errorSample.length < 5) polls.errorSample.push(what);
  };
  const pollers = Array.from({ length: opts.pollers }, async (_, i) => {
    const u = users[i % users.length]!;
    await sleep(Math.random() * opts.pollEveryMs);
    while (!done && performance.now() < deadline) {
      const s = performance.now();
      try {
        const res = await fetch(`${api.base}${API_PREFIX}/${u.jobId}/status`, {
          headers: { authorization: `Bearer ${u.token}` },
        });
        const body = await res.text();
        polls.latencies.push(performance.now() - s);
        polls.sentAt.push(s - t0);
        if (res.status !== 200) failed(`${res.status} ${body.slice(0, 120)}`);
      } catch (err) {
        failed((err as Error).message);
      }
      await sleep(Math.max(0, opts.pollEveryMs - (performance.now() - s)));
    }
  });
  return {
    polls,
    async stop() {
      done = true;
      await Promise.all(pollers);
    },
  };
}

/** Completion, from Redis directly (independent of the pollers); each job's last status. */
async function untilJobsEnd(
  ctx: LoadContext,
  svc: Service,
  run: {
    users: readonly FairUser[];
    procs: readonly Proc[];
    samplers: readonly MemorySampler[];
    t0: number;
    deadline: number;
    polls: Polls;
  },
): Promise<Map<string, TriageStatus | null>> {
  const { users, t0 } = run;
  let lastLine = '';
  const finalStatus = new Map<string, TriageStatus | null>();
  while (performance.now() < run.deadline) {
    const statuses = await Promise.all(users.map((u) => svc.store.status(u.jobId)));
    statuses.forEach((s, i) => finalStatus.set(users[i]!.jobId, s));
    const ended = statuses.filter((s) => s && TERMINAL.includes(s.status)).length;
    const gridsDone = statuses.reduce((n, s) => n + (s?.grids_done ?? 0), 0);
    const line = `${ended}/${users.length} jobs ended, ${gridsDone} grids`;
    if (line !== lastLine) {
      ctx.log(
        `  ${line} (${Math.round((performance.now() - t0) / 1000)} s, ${run.polls.latencies.length} polls, workers peak ${run.samplers.map((s) => mb(s.peakHwm)).join('/')} MB)`,
      );
      lastLine = line;
    }
    if (ended === users.length) break;
    const dead = run.procs.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`a process died mid-run:\n${dead.tail()}`);
    await sleep(500);
  }
  return finalStatus;
}

interface Finish {
  at: number;
  j: number;
  ms: number;
}

/** The gaps between consecutive grids of job j, and the other jobs' grids recorded inside them. */
function gapsOf(records: readonly GridRecord[], finishes: readonly Finish[], j: number) {
  let longestGapMs = 0;
  let othersInGap = 0;
  let oneOtherInGap = 0;
  let workInLongestGapMs = 0;
  for (let k = 1; k < records.length; k++) {
    const from = records[k - 1]!.finishedAt;
    const to = records[k]!.finishedAt;
    const gap = to - from;
    const inside = finishes.filter((f) => f.j !== j && f.at > from && f.at < to);
    const perJob = new Map<number, number>();
    for (const f of inside) perJob.set(f.j, (perJob.get(f.j) ?? 0) + 1);
    if (gap > longestGapMs) {
      longestGapMs = gap;
      workInLongestGapMs = inside.reduce((n, f) => n + f.ms, 0);
    }
    othersInGap = Math.max(othersInGap, inside.length);
    oneOtherInGap = Math.max(oneOtherInGap, ...perJob.values(), 0);
  }
  return { longestGapMs, othersInGap, oneOtherInGap, workInLongestGapMs };
}

function jobFigures(
  users: readonly FairUser[],
  recordsByJob: readonly GridRecord[][],
  finalStatus: Map<string, TriageStatus | null>,
  finishes: readonly Finish[],
): JobFigures[] {
  return users.map((u, j) => {
    const records = [...recordsByJob[j]!].sort((a, b) => a.finishedAt - b.finishedAt);
    const status = finalStatus.get(u.jobId) ?? null;
    const completedAt = status?.completed_at ? Date.parse(status.completed_at) : NaN;
    return {
      user: u.id,
      jobId: u.jobId,
      status: status?.status ?? 'missing',
      grids: records.length,
      firstGridMs: records.length > 0 ? records[0]!.finishedAt - u.acceptedAt : NaN,
      totalMs: completedAt - u.acceptedAt,
      ...gapsOf(records, finishes, j),
    };
  });
}

function pollFigures(polls: Polls): FairnessResult['polls'] {
  const { latencies } = polls;
  const sortedLat = [...latencies].sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors: polls.errors,
    errorSample: polls.errorSample,
    p50: quantile(sortedLat, 0.5),
    p90: quantile(sortedLat, 0.9),
    p99: quantile(sortedLat, 0.99),
    max: sortedLat.at(-1) ?? NaN,
    mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    ...splitAt(latencies, polls.sentAt, 5000),
  };
}

function gridFigures(all: readonly GridRecord[]): FairnessResult['grids'] {
  const durations = all.map((r) => r.durationMs);
  const coarse = all.filter((r) => r.pass === 'coarse').map((r) => r.durationMs);
  const fine = all.filter((r) => r.pass === 'fine').map((r) => r.durationMs);
  const sortedDur = [...durations].sort((a, b) => a - b);
  return {
    count: all.length,
    coarse: coarse.length,
    fine: fine.length,
    medianMs: median(durations),
    medianCoarseMs: median(coarse),
    medianFineMs: median(fine),
    p90Ms: quantile(sortedDur, 0.9),
  };
}

function longestFigures(jobs: readonly JobFigures[], gridTime: number): FairnessResult['longest'] {
  const worst = jobs.reduce((best, job, i) => (job.longestGapMs > (jobs[best]?.longestGapMs ?? -1) ? i : best), 0);
  return {
    gapMs: jobs[worst]?.longestGapMs ?? 0,
    gridTimes: (jobs[worst]?.longestGapMs ?? 0) / gridTime,
    jobIndex: worst,
    othersInGap: Math.max(...jobs.map((j) => j.othersInGap)),
    oneOtherInGap: Math.max(...jobs.map((j) => j.oneOtherInGap)),
  };
}

/** The run summed up: grids of every job by finishedAt, the gaps, the latencies, the memory. */
function fairnessFigures(
  opts: FairnessOptions,
  run: FairRun,
  recordsByJob: readonly GridRecord[][],
  memory: Pick<FairnessResult, 'date' | 'workerPeakRss' | 'workerIdleRss' | 'apiStartupPeak' | 'apiPeakRss'>,
): FairnessResult {
  const all = recordsByJob.flatMap((records, j) => records.map((r) => ({ r, j })));
  const finishes = all.map((x) => ({ at: x.r.finishedAt, j: x.j, ms: x.r.durationMs })).sort((a, b) => a.at - b.at);
  const grids = gridFigures(all.map((x) => x.r));
  const jobs = jobFigures(run.users, recordsByJob, run.finalStatus, finishes);
  const statuses: Record<string, number> = {};
  for (const job of jobs) statuses[job.status] = (statuses[job.status] ?? 0) + 1;
  const firsts = jobs.map((j) => j.firstGridMs).sort((a, b) => a - b);
  const totals = jobs.map((j) => j.totalMs).sort((a, b) => a - b);
  const sortedStarts = [...run.startLatencies].sort((a, b) => a - b);
  return {
    options: opts,
    date: memory.date,
    load: run.load,
    allCompleted: jobs.every((j) => j.status === 'completed'),
    statuses,
    wallMs: run.wallMs,
    startMs: { p50: quantile(sortedStarts, 0.5), max: sortedStarts.at(-1) ?? NaN },
    polls: pollFigures(run.polls),
    grids,
    jobs,
    longest: longestFigures(jobs, grids.medianMs),
    firstGrid: { p50: quantile(firsts, 0.5), max: firsts.at(-1) ?? NaN },
    total: { p50: quantile(totals, 0.5), max: totals.at(-1) ?? NaN },
    workerPeakRss: memory.workerPeakRss,
    workerIdleRss: memory.workerIdleRss,
    apiStartupPeak: memory.apiStartupPeak,
    apiPeakRss: memory.apiPeakRss,
  };
}
