/**
 * The service under load, from the outside: the real API process (`node apps/api/dist/server.js`, HS256 tokens
 * for many users) and real worker processes (`node apps/worker/dist/main.js`) on real Redis, each run on its
 * own key prefix and storage folder, removed afterwards. Every figure about memory comes from
 * /proc/<pid>/status (VmHWM), never from inside V8. Traffic goes to 127.0.0.1 only, bounded in count and time.
 *
 * - fairness: U users each start a P-photo job at once (POST /start-from-storage) while C clients poll
 *   GET /{id}/status every 2 s; reports status latency, every job's time to first grid and total time, the
 *   longest gap between two consecutive grids of one job in grid-times, and the workers' peak RSS.
 * - status throughput: autocannon (its own process) against GET /{id}/status while a job runs, through one or
 *   more API processes (variants: log level, a candidate build) measured in turn over several rounds.
 *
 * Tokens are signed here with node:crypto (the bench does not depend on jose); the API verifies them with jose.
 * - upload: N × 8 MB multipart POST /start, streamed from disk (fs.openAsBlob in a FormData), API peak RSS.
 * - download: the ZIP of a completed job with N large picks, API peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createWriteStream, openAsBlob, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { generateSampleSet, type SampleFile } from '@triage/images';
import {
  API_NODE_ARGS,
  createTriageQueue,
  deleteKeysUnder,
  redisConnection,
  TriageStore,
  type RedisClient,
  WORKER_NODE_ARGS,
  workerEnv,
  type TriageStatus,
} from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { memoryOf, MemorySampler, resetPeak } from './proc.js';

export const BUCKET = 'photos';
const API_PREFIX = '/api/triage';
const TERMINAL = ['completed', 'failed', 'cancelled'];

export interface LoadContext {
  repoRoot: string;
  redisUrl: string;
  /** Scratch folder (.bench/load): generated photos, upload files, per-run storage folders, process logs. */
  workDir: string;
  /** Extra environment for every API process (e.g. NODE_OPTIONS to try a V8 setting). */
  apiEnv?: Record<string, string>;
  /** The API's entry script (default apps/api/dist/server.js): lets a candidate build be measured the same way. */
  apiScript?: string;
  /** Nice value to force on the worker processes (they lower their own priority to WORKER_NICE, 10, by default). */
  workerNice?: number;
  /** Extra environment for every worker process (e.g. the vision provider's settings). */
  workerEnv?: Record<string, string>;
  log(line: string): void;
}

// ---------------------------------------------------------------------------------------------------------
// Tokens: HS256 as Supabase's legacy system signs them (the secret's UTF-8 bytes), verified by the API with jose.

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

export function signHs256(secret: string, sub: string, ttlSeconds = 3 * 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(
    JSON.stringify({ sub, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + ttlSeconds }),
  );
  const sig = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// ---------------------------------------------------------------------------------------------------------
// Processes.

export interface Service {
  prefix: string;
  storageDir: string;
  secret: string;
  redis: RedisClient;
  store: TriageStore;
  storage: LocalStorage;
  /** Removes every key of the prefix, the BullMQ queue and the storage folder. */
  cleanup(): Promise<void>;
}

/** A private prefix and storage folder on the shared Redis. */
export async function openService(ctx: LoadContext, name: string): Promise<Service> {
  const prefix = `load-${name}-${randomUUID().slice(0, 8)}`;
  const storageDir = join(ctx.workDir, 'storage', prefix);
  await mkdir(storageDir, { recursive: true });
  const redis = redisConnection({ kind: 'single', url: ctx.redisUrl, explicit: true }, 'worker');
  const store = new TriageStore(redis, { prefix, retentionSeconds: 3600 });
  return {
    prefix,
    storageDir,
    secret: randomUUID() + randomUUID(),
    redis,
    store,
    storage: new LocalStorage({ root: storageDir }),
    async cleanup() {
      const queue = createTriageQueue({ connection: redis, prefix, retentionSeconds: 3600 });
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await deleteKeysUnder(redis, prefix);
      await redis.quit();
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** The last lines the process wrote (its log goes to a file, not through a pipe to this process). */
  tail(): string;
  stop(): Promise<void>;
}

function startProcess(
  script: string,
  env: Record<string, string>,
  logFile: string,
  nodeArgs: readonly string[] = [],
): Proc {
  // Output to a file: a pipe would make this process read every log line, on the same two cores.
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = once(child, 'exit');
  return {
    child,
    pid: child.pid!,
    logFile,
    tail: () => {
      try {
        return readFileSync(logFile, 'utf8').slice(-3000);
      } catch {
        return '';
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

export interface Api extends Proc {
  base: string;
}

/** `nodeArgs`: e.g. ['--cpu-prof'] to see where a route's time goes. */
export async function startApi(
  ctx: LoadContext,
  svc: Service,
  extra: Record<string, string> = {},
  nodeArgs: readonly string[] = [],
  script?: string,
): Promise<Api> {
  const port = await freePort();
  await mkdir(join(ctx.workDir, 'logs'), { recursive: true });
  const proc = startProcess(
    script ?? ctx.apiScript ?? join(ctx.repoRoot, 'apps/api/dist/server.js'),
    {
      REDIS_URL: ctx.redisUrl,
      TRIAGE_PREFIX: svc.prefix,
      STORAGE_DIR: svc.storageDir,
      STORAGE_SIGNING_KEY: 'load-benchmark-signing-key-0123456789',
      HOST: '127.0.0.1',
      PORT: String(port),
      SUPABASE_JWT_SECRET: svc.secret,
      RATE_LIMIT_PER_MINUTE: '100000',
      MAX_ACTIVE_JOBS_PER_USER: '100',
      MALLOC_ARENA_MAX: '2',
      LOG_LEVEL: 'info',
      ...ctx.apiEnv,
      ...extra,
    },
    join(ctx.workDir, 'logs', `api-${svc.prefix}-${port}.log`),
    // Started as the start scripts start it, plus whatever a variant adds.
    [...API_NODE_ARGS, ...nodeArgs],
  );
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`the API exited at start:\n${proc.tail()}`);
    try {
      const res = await fetch(`${base}${API_PREFIX}/health`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the API did not answer within 30 s:\n${proc.tail()}`);
    await sleep(100);
  }
  return { ...proc, base };
}

export async function startWorkers(ctx: LoadContext, svc: Service, count: number): Promise<Proc[]> {
  await mkdir(join(ctx.workDir, 'logs'), { recursive: true });
  // Started the way every start script starts a worker: WORKER_NODE_ARGS and the malloc settings.
  const workers = Array.from({ length: count }, (_, i) =>
    startProcess(
      join(ctx.repoRoot, 'apps/worker/dist/main.js'),
      workerEnv({
        REDIS_URL: ctx.redisUrl,
        TRIAGE_PREFIX: svc.prefix,
        STORAGE_DIR: svc.storageDir,
        LOG_LEVEL: 'warn',
        ...ctx.workerEnv,
      }) as Record<string, string>,
      join(ctx.workDir, 'logs', `worker-${svc.prefix}-${i}.log`),
      WORKER_NODE_ARGS,
    ),
  );
  if (ctx.workerNice) for (const w of workers) setPriority(w.pid, ctx.workerNice);
  const queue = createTriageQueue({ connection: svc.redis, prefix: svc.prefix, retentionSeconds: 3600 });
  try {
    const deadline = Date.now() + 30_000;
    while ((await queue.getWorkersCount()) < count) {
      const dead = workers.find((w) => w.child.exitCode !== null);
      if (dead) throw new Error(`a worker exited at start:\n${dead.tail()}`);
      if (Date.now() > deadline) throw new Error(`${count} workers did not register within 30 s`);
      await sleep(100);
    }
  } finally {
    await queue.close();
  }
  return workers;
}

// ---------------------------------------------------------------------------------------------------------
// Photos.

/** A set of small generated photos (kept in workDir/photos-WxH-N), made once. */
export async function samplePhotos(ctx: LoadContext, count: number, width = 480, height = 360): Promise<SampleFile[]> {
  const dir = join(ctx.workDir, `photos-${width}x${height}-${count}`);
  const manifest = join(dir, 'manifest.json');
  try {
    const files = JSON.parse(readFileSync(manifest, 'utf8')) as SampleFile[];
    if (files.length === count) return files;
  } catch {
    // not made yet
  }
  ctx.log(`photos: generating ${count} sample photos at ${width} × ${height} in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  const files = await generateSampleSet(dir, { count, width, height, seed: 11 });
  await writeFile(manifest, JSON.stringify(files));
  return files;
}

export interface StagedFile {
  original_name: string;
  storage_path: string;
  size: number;
}

/** Links photos into `triage/{user}/{job}/` of the storage folder, as a browser upload would have put them. */
export async function stagePhotos(
  svc: Service,
  userId: string,
  jobId: string,
  photos: readonly Pick<SampleFile, 'name' | 'path'>[],
  count: number,
): Promise<StagedFile[]> {
  const files: StagedFile[] = [];
  for (let i = 0; i < count; i++) {
    const photo = photos[i % photos.length]!;
    const path = `triage/${userId}/${jobId}/${String(i).padStart(4, '0')}-${photo.name}`;
    const target = svc.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(photo.path, target);
    files.push({ original_name: photo.name, storage_path: path, size: (await stat(photo.path)).size });
  }
  return files;
}

async function startFromStorage(
  api: Api,
  token: string,
  jobId: string,
  files: StagedFile[],
  target = '10%',
): Promise<void> {
  const res = await fetch(`${api.base}${API_PREFIX}/start-from-storage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ job_id: jobId, files, target, criteria: 'standout', passes: 2 }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`start-from-storage answered ${res.status}: ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------------------
// Statistics.

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function splitAt(latencies: readonly number[], sentAt: readonly number[], ms: number) {
  const part = (keep: (t: number) => boolean) => {
    const xs = latencies.filter((_, i) => keep(sentAt[i]!)).sort((a, b) => a - b);
    return { count: xs.length, p99: quantile(xs, 0.99), max: xs.at(-1) ?? NaN };
  };
  return { early: part((t) => t < ms), steady: part((t) => t >= ms) };
}

export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

export interface LoadSnapshot {
  /** 1-minute load average when the measurement started, and the highest seen during it. */
  loadAtStart: number;
  loadMax: number;
}

export function loadWatch(): { stop(): LoadSnapshot } {
  const start = loadavg()[0]!;
  let max = start;
  const timer = setInterval(() => (max = Math.max(max, loadavg()[0]!)), 1000);
  return {
    stop() {
      clearInterval(timer);
      return { loadAtStart: start, loadMax: Math.max(max, loadavg()[0]!) };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// 1. Fairness.

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

export async function runFairness(ctx: LoadContext, opts: FairnessOptions): Promise<FairnessResult> {
  const { log } = ctx;
  const svc = await openService(ctx, `fair${opts.workers}w`);
  const photos = await samplePhotos(ctx, Math.min(opts.photosPerJob, 100));
  const procs: Proc[] = [];
  try {
    const users = Array.from({ length: opts.users }, (_, i) => ({
      id: `load-user-${String(i + 1).padStart(3, '0')}`,
      jobId: randomUUID(),
      token: '',
      files: [] as StagedFile[],
      acceptedAt: 0,
    }));
    for (const u of users) {
      u.token = signHs256(svc.secret, u.id);
      u.files = await stagePhotos(svc, u.id, u.jobId, photos, opts.photosPerJob);
    }
    log(`fairness: staged ${opts.users} × ${opts.photosPerJob} photos; starting the API and ${opts.workers} worker(s)`);
    const api = await startApi(ctx, svc);
    procs.push(api);
    const workers = await startWorkers(ctx, svc, opts.workers);
    procs.push(...workers);
    await sleep(500);
    const workerIdleRss = workers.map((w) => memoryOf(w.pid)?.rss ?? 0);
    const samplers = workers.map((w) => new MemorySampler(w.pid, 100));
    const apiStartupPeak = memoryOf(api.pid)?.hwm ?? 0;
    resetPeak(api.pid);
    const apiSampler = new MemorySampler(api.pid, 100);
    const watch = loadWatch();
    const date = utcStamp();

    // Every user starts at once.
    const t0 = performance.now();
    const startLatencies = await Promise.all(
      users.map(async (u) => {
        const s = performance.now();
        await startFromStorage(api, u.token, u.jobId, u.files);
        u.acceptedAt = Date.now();
        return performance.now() - s;
      }),
    );
    log(
      `fairness: ${opts.users} jobs accepted in ${Math.round(performance.now() - t0)} ms; ${opts.pollers} clients poll every ${opts.pollEveryMs} ms`,
    );

    // Pollers: client i follows job i mod users with its owner's token, every pollEveryMs, until every job ended.
    const latencies: number[] = [];
    /** When each poll was sent, ms after the starts: splits the start burst from the steady state. */
    const sentAt: number[] = [];
    const errorSample: string[] = [];
    let errors = 0;
    let done = false;
    const deadline = performance.now() + opts.timeoutMs;
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
          latencies.push(performance.now() - s);
          sentAt.push(s - t0);
          if (res.status !== 200) {
            errors++;
            if (errorSample.length < 5) errorSample.push(`${res.status} ${body.slice(0, 120)}`);
          }
        } catch (err) {
          errors++;
          if (errorSample.length < 5) errorSample.push((err as Error).message);
        }
        await sleep(Math.max(0, opts.pollEveryMs - (performance.now() - s)));
      }
    });

    // Completion, from Redis directly (independent of the pollers).
    let lastLine = '';
    const finalStatus = new Map<string, TriageStatus | null>();
    while (performance.now() < deadline) {
      const statuses = await Promise.all(users.map((u) => svc.store.status(u.jobId)));
      statuses.forEach((s, i) => finalStatus.set(users[i]!.jobId, s));
      const ended = statuses.filter((s) => s && TERMINAL.includes(s.status)).length;
      const gridsDone = statuses.reduce((n, s) => n + (s?.grids_done ?? 0), 0);
      const line = `${ended}/${users.length} jobs ended, ${gridsDone} grids`;
      if (line !== lastLine) {
        log(
          `  ${line} (${Math.round((performance.now() - t0) / 1000)} s, ${latencies.length} polls, workers peak ${samplers.map((s) => mb(s.peakHwm)).join('/')} MB)`,
        );
        lastLine = line;
      }
      if (ended === users.length) break;
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead) throw new Error(`a process died mid-run:\n${dead.tail()}`);
      await sleep(500);
    }
    const wallMs = performance.now() - t0;
    done = true;
    await Promise.all(pollers);
    samplers.forEach((s) => s.stop());
    apiSampler.stop();
    const load = watch.stop();

    // Grids of every job, by finishedAt.
    const recordsByJob = await Promise.all(users.map((u) => svc.store.gridRecords(u.jobId)));
    const all = recordsByJob.flatMap((records, j) => records.map((r) => ({ r, j })));
    const finishes = all.map((x) => ({ at: x.r.finishedAt, j: x.j, ms: x.r.durationMs })).sort((a, b) => a.at - b.at);
    const durations = all.map((x) => x.r.durationMs);
    const gridTime = median(durations);
    const jobs: JobFigures[] = users.map((u, j) => {
      const records = [...recordsByJob[j]!].sort((a, b) => a.finishedAt - b.finishedAt);
      const status = finalStatus.get(u.jobId) ?? null;
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
      const completedAt = status?.completed_at ? Date.parse(status.completed_at) : NaN;
      return {
        user: u.id,
        jobId: u.jobId,
        status: status?.status ?? 'missing',
        grids: records.length,
        firstGridMs: records.length > 0 ? records[0]!.finishedAt - u.acceptedAt : NaN,
        totalMs: completedAt - u.acceptedAt,
        longestGapMs,
        othersInGap,
        oneOtherInGap,
        workInLongestGapMs,
      };
    });
    const worst = jobs.reduce((best, job, i) => (job.longestGapMs > (jobs[best]?.longestGapMs ?? -1) ? i : best), 0);
    const sortedLat = [...latencies].sort((a, b) => a - b);
    const statuses: Record<string, number> = {};
    for (const job of jobs) statuses[job.status] = (statuses[job.status] ?? 0) + 1;
    const coarse = all.filter((x) => x.r.pass === 'coarse').map((x) => x.r.durationMs);
    const fine = all.filter((x) => x.r.pass === 'fine').map((x) => x.r.durationMs);
    const sortedDur = [...durations].sort((a, b) => a - b);
    const firsts = jobs.map((j) => j.firstGridMs).sort((a, b) => a - b);
    const totals = jobs.map((j) => j.totalMs).sort((a, b) => a - b);
    const sortedStarts = [...startLatencies].sort((a, b) => a - b);
    return {
      options: opts,
      date,
      load,
      allCompleted: jobs.every((j) => j.status === 'completed'),
      statuses,
      wallMs,
      startMs: { p50: quantile(sortedStarts, 0.5), max: sortedStarts.at(-1) ?? NaN },
      polls: {
        count: latencies.length,
        errors,
        errorSample,
        p50: quantile(sortedLat, 0.5),
        p90: quantile(sortedLat, 0.9),
        p99: quantile(sortedLat, 0.99),
        max: sortedLat.at(-1) ?? NaN,
        mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
        ...splitAt(latencies, sentAt, 5000),
      },
      grids: {
        count: all.length,
        coarse: coarse.length,
        fine: fine.length,
        medianMs: gridTime,
        medianCoarseMs: median(coarse),
        medianFineMs: median(fine),
        p90Ms: quantile(sortedDur, 0.9),
      },
      jobs,
      longest: {
        gapMs: jobs[worst]?.longestGapMs ?? 0,
        gridTimes: (jobs[worst]?.longestGapMs ?? 0) / gridTime,
        jobIndex: worst,
        othersInGap: Math.max(...jobs.map((j) => j.othersInGap)),
        oneOtherInGap: Math.max(...jobs.map((j) => j.oneOtherInGap)),
      },
      firstGrid: { p50: quantile(firsts, 0.5), max: firsts.at(-1) ?? NaN },
      total: { p50: quantile(totals, 0.5), max: totals.at(-1) ?? NaN },
      workerPeakRss: workers.map((w, i) => Math.max(samplers[i]!.peakHwm, memoryOf(w.pid)?.hwm ?? 0)),
      workerIdleRss,
      apiStartupPeak,
      apiPeakRss: Math.max(apiSampler.peakHwm, memoryOf(api.pid)?.hwm ?? 0),
    };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2a. The status route's throughput (autocannon, its own process) while a job runs.

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
    const photos = await samplePhotos(ctx, 100);
    const userId = 'load-user-tput';
    const token = signHs256(svc.secret, userId);
    // Enough jobs that one is still running however long the rounds take (a small-photo job of 2,000 takes
    // well under a minute on a quiet machine); the status measured is the first's.
    const measuredS = (opts.rounds * variants.length + 1) * opts.durationS;
    const jobIds = Array.from({ length: Math.max(3, Math.ceil((measuredS * opts.jobPhotos) / (2000 * 20)) + 1) }, () =>
      randomUUID(),
    );
    const jobId = jobIds[0]!;
    const staged = [];
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
    const anyRunning = async () =>
      (await Promise.all(jobIds.map((id) => svc.store.status(id)))).some((st) => st?.status === 'processing');
    const gridsDone = async () =>
      (await Promise.all(jobIds.map((id) => svc.store.status(id)))).reduce((n, st) => n + (st?.grids_done ?? 0), 0);
    for (let i = 0; i < 50; i++) {
      const s = await svc.store.status(jobId);
      if (s?.status === 'processing') break;
      await sleep(100);
    }
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [i, v] of variants.entries()) {
        const targets = [
          { label: `GET /{id}/status, ${v.name}, a job running`, path: `${API_PREFIX}/${jobId}/status`, token },
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
        for (const t of targets) {
          const api = apis[i]!;
          const before = await gridsDone();
          resetPeak(api.pid);
          const sampler = new MemorySampler(api.pid, 100);
          const watch = loadWatch();
          const r = await autocannon(ctx, `${api.base}${t.path}`, t.token, opts.connections, opts.durationS);
          sampler.stop();
          const load = watch.stop();
          const after = await gridsDone();
          const running = await anyRunning();
          const run: ThroughputRun = {
            variant: v.name,
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
          runs.push(run);
        }
      }
    }
    return runs;
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2b. Upload and download memory.

const UPLOAD_BYTES = 8 * 1024 * 1024;

/**
 * N files of 8 MiB each: a small real JPEG (so the API's type sniffing and, later, the worker see an image)
 * followed by filler up to 8 MiB. The API streams bytes; what they show does not change its memory.
 */
export async function uploadFiles(ctx: LoadContext, count: number): Promise<string[]> {
  const dir = join(ctx.workDir, 'upload-8mb');
  await mkdir(dir, { recursive: true });
  const photos = await samplePhotos(ctx, 100);
  const readable = photos.filter((p) => p.kind !== 'unreadable');
  const paths: string[] = [];
  const filler = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < count; i++) {
    const path = join(dir, `upload-${String(i).padStart(4, '0')}.jpg`);
    paths.push(path);
    const exists = await stat(path).then(
      (s) => s.size === UPLOAD_BYTES,
      () => false,
    );
    if (exists) continue;
    const head = readFileSync(readable[i % readable.length]!.path);
    const out = createWriteStream(path);
    out.write(head);
    let left = UPLOAD_BYTES - head.length;
    for (let k = 0; left > 0; k++) {
      filler.fill((i * 31 + k) & 0xff);
      const n = Math.min(left, filler.length);
      if (!out.write(filler.subarray(0, n))) await once(out, 'drain');
      left -= n;
    }
    out.end();
    await once(out, 'finish');
  }
  return paths;
}

export interface MemoryRun {
  label: string;
  files: number;
  bytes: number;
  ms: number;
  status: number;
  detail: string;
  apiIdleRss: number;
  /** VmHWM of the process before the transfer (its start-up peak), then reset to the current RSS. */
  apiStartupPeak: number;
  /** VmHWM after the reset: the peak of the transfer itself (or since start, when the reset was refused). */
  apiPeakRss: number;
  peakReset: boolean;
  load: LoadSnapshot;
}

export interface TransferResult {
  upload: MemoryRun;
  download: MemoryRun | null;
}

/**
 * A fresh API process takes N × 8 MiB as one multipart POST /start (a FormData of file-backed Blobs: fetch
 * streams each from disk). The accepted job is then marked completed with every photo picked, through the
 * store (no worker: the download route only reads the selection), and a second fresh API process serves its
 * ZIP, read and counted by this process. Each process's VmHWM is its peak for that transfer alone.
 */
export async function runTransfers(ctx: LoadContext, count: number): Promise<TransferResult> {
  const svc = await openService(ctx, 'xfer');
  const procs: Proc[] = [];
  try {
    const paths = await uploadFiles(ctx, count);
    const userId = 'load-user-xfer';
    const token = signHs256(svc.secret, userId);

    const api = await startApi(ctx, svc, { MAX_UPLOAD_MB: '50' });
    procs.push(api);
    await sleep(500);
    const idle = memoryOf(api.pid)?.rss ?? 0;
    const startupPeak = memoryOf(api.pid)?.hwm ?? 0;
    const reset = resetPeak(api.pid);
    const form = new FormData();
    form.append('target', '100%');
    form.append('passes', '1');
    for (const [i, path] of paths.entries())
      form.append(
        'files',
        await openAsBlob(path, { type: 'image/jpeg' }),
        `photo-${String(i + 1).padStart(4, '0')}.jpg`,
      );
    const sampler = new MemorySampler(api.pid, 50);
    let watch = loadWatch();
    ctx.log(`upload: ${count} × 8 MiB multipart to POST /start`);
    const t0 = performance.now();
    const res = await fetch(`${api.base}${API_PREFIX}/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: form,
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    sampler.stop();
    const upload: MemoryRun = {
      label: `POST /start, ${count} × 8 MiB multipart`,
      files: count,
      bytes: count * UPLOAD_BYTES,
      ms,
      status: res.status,
      detail: text.slice(0, 200),
      apiIdleRss: idle,
      apiStartupPeak: startupPeak,
      apiPeakRss: Math.max(sampler.peakHwm, memoryOf(api.pid)?.hwm ?? 0),
      peakReset: reset,
      load: watch.stop(),
    };
    ctx.log(
      `  ${res.status} in ${(ms / 1000).toFixed(1)} s; API peak RSS ${mb(upload.apiPeakRss)} MB (idle ${mb(idle)} MB)`,
    );
    await api.stop();
    procs.pop();
    if (res.status !== 200) return { upload, download: null };

    const jobId = (JSON.parse(text) as { job_id: string }).job_id;
    const queue = createTriageQueue({ connection: svc.redis, prefix: svc.prefix, retentionSeconds: 3600 });
    await queue.remove(jobId).catch(() => 0);
    await queue.close();
    const all = Array.from({ length: count }, (_, i) => i);
    const finished = await svc.store.finish(jobId, {
      status: 'completed',
      selected: all,
      ranks: new Map(all.map((i) => [i, i + 1])),
      pass1Survivors: count,
    });
    if (!finished) throw new Error('could not mark the uploaded job completed');

    const api2 = await startApi(ctx, svc);
    procs.push(api2);
    await sleep(500);
    const idle2 = memoryOf(api2.pid)?.rss ?? 0;
    const startupPeak2 = memoryOf(api2.pid)?.hwm ?? 0;
    const reset2 = resetPeak(api2.pid);
    const sampler2 = new MemorySampler(api2.pid, 50);
    watch = loadWatch();
    ctx.log(`download: ZIP of ${count} picks of 8 MiB`);
    const t1 = performance.now();
    const zipRes = await fetch(`${api2.base}${API_PREFIX}/${jobId}/download`, {
      headers: { authorization: `Bearer ${token}` },
    });
    let bytes = 0;
    if (zipRes.body)
      for await (const chunk of zipRes.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    const ms2 = performance.now() - t1;
    sampler2.stop();
    const download: MemoryRun = {
      label: `GET /{id}/download, ZIP of ${count} × 8 MiB picks`,
      files: count,
      bytes,
      ms: ms2,
      status: zipRes.status,
      detail: zipRes.headers.get('content-type') ?? '',
      apiIdleRss: idle2,
      apiStartupPeak: startupPeak2,
      apiPeakRss: Math.max(sampler2.peakHwm, memoryOf(api2.pid)?.hwm ?? 0),
      peakReset: reset2,
      load: watch.stop(),
    };
    ctx.log(
      `  ${zipRes.status}, ${mb(bytes)} MB in ${(ms2 / 1000).toFixed(1)} s; API peak RSS ${mb(download.apiPeakRss)} MB (idle ${mb(idle2)} MB)`,
    );
    return { upload, download };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(0);
}

export function utcStamp(): string {
  return new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}
