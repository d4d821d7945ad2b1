/**
 * The fault suite: a whole job survives its worker being killed with SIGKILL again and again, and Redis itself
 * being killed and restarted from its append-only file. Each time the job must end with the same picks as an
 * undisturbed run of the same input (the offline provider is deterministic), every photo must be accounted for,
 * and no grid may reach the provider more than once per interruption. (SIGTERM mid-grid: processes.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleSet, mulberry32, type SampleFile } from '@triage/images';
import { loadSelection, startRedisServer, TRIAGE_QUEUE, type RedisServer, type TriageStatus } from '@triage/queue';
import { REDIS_DOWN } from '../../api/src/errors.js';
import { setup as apiSetup, type Env as ApiEnv } from '../../api/test/harness.js';
import {
  ended,
  expectAccountedFor,
  setup,
  SMALL_GRIDS,
  spawnWorker,
  stageJob,
  stopWorker,
  waitForStatus,
  type Env,
  type WorkerProcess,
} from './harness.js';

const workers: WorkerProcess[] = [];
let samples: { dir: string; files: SampleFile[] };

function start(target: Pick<Env, 'prefix' | 'storageDir'>, extra: Record<string, string> = {}): WorkerProcess {
  const w = spawnWorker(target, extra);
  workers.push(w);
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value. */
async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `n` photos: the small sample set cycled (each copy a distinct photo of the job). */
function cycled(n: number): SampleFile[] {
  return Array.from({ length: n }, (_, i) => samples.files[i % samples.files.length]!);
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'triage-fault-samples-'));
  samples = { dir, files: await generateSampleSet(dir, { count: 60, width: 480, height: 360 }) };
}, 120_000);
afterEach(async () => {
  // A worker still running at the end of a test (a failure) is stopped hard: its job is being thrown away.
  for (const w of workers.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) {
      w.child.kill('SIGKILL');
      await w.exited;
    }
  }
});
afterAll(async () => {
  if (samples) await rm(samples.dir, { recursive: true, force: true });
});

describe('the worker killed with SIGKILL at ten random moments of one 300-photo job', () => {
  let env: Env;
  beforeAll(async () => {
    env = await setup();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('ends with the same picks as an undisturbed run, every photo accounted for, no grid judged twice per kill', async () => {
    const photos = cycled(300);

    // The undisturbed reference run.
    const reference = await stageJob(env, photos, { layouts: SMALL_GRIDS });
    const first = start(env);
    const refStatus = await waitForStatus(env, reference.triageId, ended, 120_000);
    expect(refStatus.status).toBe('completed');
    const refPicks = (await loadSelection(env.store, reference.triageId)).map((s) => s.index);
    expect(refPicks).toHaveLength(30); // K = floor(300 × 10 / 100)
    await stopWorker(first);

    // The same photos again, each worker reading a little slowly (15 ms a photo: a grid of 12 lasts over
    // 180 ms). The ten moments are spread over the whole job by a seeded draw: each new process takes the job
    // over, works until a drawn number of grids is recorded, goes on for a drawn part of a grid (reading
    // photos, composing, judging or recording), and is killed without warning; a new process replaces it.
    const job = await stageJob(env, photos, { layouts: SMALL_GRIDS });
    const total = (await env.store.status(job.triageId))!.grids_total;
    const lockKey = `${env.prefix}:${TRIAGE_QUEUE}:${job.triageId}:lock`;
    const random = mulberry32(0x5eed_f417);
    const KILLS = 10;
    // One drawn grid count in each tenth of the job (both passes), at least two grids before the end so that
    // the job is still running at each kill.
    const span = (total - 2) / KILLS;
    const moments = Array.from({ length: KILLS }, (_, k) => Math.floor((k + random()) * span));
    let killedHolder: string | undefined;
    const atKill: TriageStatus[] = [];
    for (const moment of moments) {
      // A short lock (renewed every 500 ms) so that each successor takes over soon after the kill.
      const victim = start(env, { STORAGE_READ_LATENCY_MS: '15', WORKER_LOCK_MS: '1000', WORKER_STALLED_INTERVAL_MS: '500' });
      // The new process has taken the job over (BullMQ lock tokens are "<worker id>:<n>").
      killedHolder = await until(
        'the new worker to take the job over',
        async () => {
          const token = await env.redis.get(lockKey);
          const holder = token?.slice(0, token.lastIndexOf(':'));
          return holder && holder !== killedHolder ? holder : undefined;
        },
        60_000,
        20,
      );
      await until(`${moment} grids`, async () => (await env.store.status(job.triageId))!.grids_done >= moment, 60_000, 10);
      await sleep(Math.floor(random() * 150));
      atKill.push((await env.store.status(job.triageId))!);
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
    }
    // Every kill landed while the job was running.
    expect(atKill.map((s) => s.status)).toEqual(Array(KILLS).fill('processing'));
    // The moments fell in both passes.
    expect(atKill.some((s) => s.progress?.phase === 'coarse_pass')).toBe(true);
    expect(atKill.some((s) => s.progress?.phase === 'fine_pass')).toBe(true);

    start(env);
    const status = await waitForStatus(env, job.triageId, ended, 120_000);
    expect(status.status).toBe('completed');
    expect(status.total_input).toBe(300);
    expect(status.photos_failed).toBe(refStatus.photos_failed);
    expect(status.pass1_survivors).toBe(refStatus.pass1_survivors);
    expect((await loadSelection(env.store, job.triageId)).map((s) => s.index)).toEqual(refPicks);

    const { records } = await expectAccountedFor(env.store, job.triageId, 300, KILLS);
    // The work was shared by the processes in turn: each resumed where the last one stopped.
    expect(new Set(records.map((r) => r.worker)).size).toBeGreaterThan(2);
  }, 240_000);
});

/** A redis-server with its append-only file synced on every write, in `dir`. */
function startRedis(dir: string, port?: number): Promise<RedisServer> {
  return startRedisServer({ dir, ...(port !== undefined && { port }), args: ['--appendonly', 'yes', '--appendfsync', 'always'], timeoutMs: 15_000 });
}

describe('Redis (with AOF) killed with SIGKILL and restarted mid-job', () => {
  let redisDir: string;
  let server: RedisServer | undefined;
  let api: ApiEnv | undefined;

  beforeAll(async () => {
    redisDir = await mkdtemp(join(tmpdir(), 'triage-fault-redis-'));
    server = await startRedis(redisDir);
    // The real API against that Redis, 12 photos per coarse grid.
    api = await apiSetup({ REDIS_URL: server.url, GRID_COARSE_ROWS: '3', GRID_COARSE_COLS: '4' });
  });
  afterAll(async () => {
    await api?.close().catch(() => {});
    await server?.stop('SIGKILL');
    await rm(redisDir, { recursive: true, force: true });
  });

  it('the worker resumes by itself with the same picks; the API answers 503 meanwhile and recovers without a rebuild', async () => {
    const env = api!;
    const USER = 'user-aof';
    const headers = await env.auth(USER);
    const photos = cycled(96);

    const stage = async (jobId: string) => {
      const files = [];
      for (const [i, f] of photos.entries()) {
        const storage_path = `triage/${USER}/${jobId}/${String(i).padStart(4, '0')}.jpg`;
        const file = env.storage.filePath(env.settings.bucket, storage_path);
        await mkdir(dirname(file), { recursive: true });
        await copyFile(f.path, file);
        files.push({ original_name: f.name, storage_path });
      }
      return files;
    };
    const startJob = async (jobId: string, files: { original_name: string; storage_path: string }[]) =>
      env.app.inject({ method: 'POST', url: '/api/triage/start-from-storage', headers, payload: { job_id: jobId, files } });
    const statusOf = (jobId: string) => env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/status`, headers });

    // One worker process for the whole test, pointed at this Redis; it is never restarted.
    const worker = start(env, { REDIS_URL: server!.url, STORAGE_READ_LATENCY_MS: '10' });

    // The undisturbed reference run.
    const refId = randomUUID();
    expect((await startJob(refId, await stage(refId))).statusCode).toBe(200);
    const refStatus = await until('the reference run', async () => {
      const s = (await statusOf(refId)).json() as TriageStatus;
      return ended(s) ? s : undefined;
    }, 120_000, 100);
    expect(refStatus.status).toBe('completed');
    const refPicks = (await loadSelection(env.store, refId)).map((s) => s.index);
    expect(refPicks).toHaveLength(9); // K = floor(96 × 10 / 100)

    // The same photos again; Redis is killed once a few grids are recorded.
    const jobId = randomUUID();
    expect((await startJob(jobId, await stage(jobId))).statusCode).toBe(200);
    await until('three grids', async () => ((await statusOf(jobId)).json() as TriageStatus).grids_done >= 3, 60_000, 20);
    await server!.stop('SIGKILL');

    // While Redis is gone: a clear 503 on the status and start routes, at once, and readiness says so.
    const otherId = randomUUID();
    const otherFiles = await stage(otherId);
    const boundary = '----fault-boundary';
    const multipart =
      `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n` +
      `\xff\xd8\xff\xe0 not much of a photo\r\n--${boundary}--\r\n`;
    for (let round = 0; round < 3; round++) {
      for (const res of [
        await statusOf(jobId),
        await startJob(otherId, otherFiles),
        await env.app.inject({ method: 'POST', url: '/api/triage/start', headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: multipart }),
        await env.app.inject({ method: 'GET', url: '/readyz' }),
      ]) {
        expect(res.statusCode, res.body).toBe(503);
        expect(res.json()).toEqual({ detail: REDIS_DOWN });
      }
      await sleep(1000); // down for about three seconds: longer than the worker's 2 s lock
    }

    // Back on the same port, from its append-only file.
    server = await startRedis(redisDir, server!.port);

    // The same app instance answers again by itself.
    const back = await until('the API to answer again', async () => {
      const res = await statusOf(jobId);
      return res.statusCode === 200 ? (res.json() as TriageStatus) : undefined;
    }, 30_000, 100);
    expect(back.job_id).toBe(jobId);
    expect(back.grids_done).toBeGreaterThanOrEqual(3); // nothing recorded before the kill was lost
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    // The start refused during the outage left nothing behind.
    expect(await env.store.meta(otherId)).toBeNull();

    const status = await until('the job to end', async () => {
      const s = (await statusOf(jobId)).json() as TriageStatus;
      return ended(s) ? s : undefined;
    }, 120_000, 200);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(refStatus.photos_failed);
    expect((await loadSelection(env.store, jobId)).map((s) => s.index)).toEqual(refPicks);
    await expectAccountedFor(env.store, jobId, 96, 1);
    // The same worker process did it all: it survived the outage and resumed by itself.
    expect(worker.child.exitCode).toBeNull();
    expect(worker.child.signalCode).toBeNull();
    await stopWorker(worker);
  }, 240_000);
});
