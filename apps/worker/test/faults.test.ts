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
import { DEFAULT_CONCURRENCY } from '../src/index.js';

const workers: WorkerProcess[] = [];
let samples: { dir: string; files: SampleFile[] };

function start(target: Pick<Env, 'prefix' | 'storageDir'>, extra: Record<string, string> = {}): WorkerProcess {
  const w = spawnWorker(target, extra);
  workers.push(w);
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Bounds that only a broken run reaches, not the time a run takes: on a loaded machine (2 cores shared with
 * other builds) the 300-photo job alone has taken over two minutes.
 */
const WAIT_MS = 600_000;
const TEST_MS = 1_800_000;

/** Polls `fn` until it returns a value. */
async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
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

  it(
    'ends with the same picks as an undisturbed run, every photo accounted for, no grid judged twice per kill',
    async () => {
      const photos = cycled(300);

      // The undisturbed reference run.
      const reference = await stageJob(env, photos, { layouts: SMALL_GRIDS });
      const first = start(env);
      const refStatus = await waitForStatus(env, reference.triageId, ended, WAIT_MS);
      expect(refStatus.status).toBe('completed');
      const refPicks = (await loadSelection(env.store, reference.triageId)).map((s) => s.index);
      // K = floor(300 × 10 / 100) = 30 at most; the photos are 60 files cycled, so one per near-duplicate group
      // keeps fewer, and never two copies of one file.
      expect(refPicks.length).toBeGreaterThan(0);
      expect(refPicks.length).toBeLessThanOrEqual(30);
      expect(new Set(refPicks.map((i) => photos[i]!.path)).size).toBe(refPicks.length);
      await stopWorker(first);

      // The reference run's real number of grids: the same input gives the same plan and the same survivors.
      const refRecords = await env.store.gridRecords(reference.triageId);
      const coarseGrids = refRecords.filter((r) => r.pass === 'coarse').length;
      const totalGrids = refRecords.length;

      // The same photos again, each worker reading a little slowly (15 ms a photo: a grid of 12 lasts over
      // 180 ms). The ten moments are spread over the whole job by a seeded draw, and each is a state of the job,
      // not a time: each new process takes the job over, works until a drawn grid's step has begun (its photos
      // being read) or until that grid has reached the provider (being judged or recorded), and is killed
      // without warning at once; a new process replaces it.
      const job = await stageJob(env, photos, { layouts: SMALL_GRIDS });
      const lockKey = `${env.prefix}:${TRIAGE_QUEUE}:${job.triageId}:lock`;
      const random = mulberry32(0x5eed_f417);
      const KILLS = 10;
      // One drawn grid in each tenth of the job (both passes), at least two grids before the end so that the
      // job is still running at each kill (the worker needs two more grids' reads, over 360 ms, to end it).
      const span = (totalGrids - 2) / KILLS;
      const moments = Array.from({ length: KILLS }, (_, k) => ({
        grid: Math.floor((k + random()) * span),
        stage: random() < 0.5 ? ('reading' as const) : ('judged' as const),
      }));
      // Both passes are drawn, both stages too (a property of the seed, checked here so that a change of plan
      // that moved them would say so).
      expect(moments.some((m) => m.grid < coarseGrids)).toBe(true);
      expect(moments.some((m) => m.grid >= coarseGrids)).toBe(true);
      expect(new Set(moments.map((m) => m.stage)).size).toBe(2);
      /** The job has reached the moment: running, the drawn grid's step begun (in its pass) or judged. */
      const reached = async (m: (typeof moments)[number]): Promise<boolean> => {
        const s = (await env.store.status(job.triageId))!;
        if (s.status !== 'processing' || s.grids_done < m.grid) return false;
        if (m.grid >= coarseGrids && s.progress?.phase !== 'fine_pass') return false;
        if (m.stage === 'reading' || s.grids_done > m.grid) return true;
        // Grids reach the provider in order, each once per interruption: one more distinct attempt than grids
        // before it means this one has.
        return Object.keys(await env.store.attempts(job.triageId)).length > m.grid;
      };
      let killedHolder: string | undefined;
      const atKill: TriageStatus[] = [];
      for (const moment of moments) {
        // A short lock (renewed every 500 ms) so that each successor takes over soon after the kill.
        const victim = start(env, {
          STORAGE_READ_LATENCY_MS: '15',
          WORKER_LOCK_MS: '1000',
          WORKER_STALLED_INTERVAL_MS: '500',
        });
        // The new process has taken the job over (BullMQ lock tokens are "<worker id>:<n>").
        killedHolder = await until(
          'the new worker to take the job over',
          async () => {
            const token = await env.redis.get(lockKey);
            const holder = token?.slice(0, token.lastIndexOf(':'));
            return holder && holder !== killedHolder ? holder : undefined;
          },
          WAIT_MS,
          20,
        );
        await until(`grid ${moment.grid} ${moment.stage}`, () => reached(moment), WAIT_MS, 10);
        victim.child.kill('SIGKILL');
        expect((await victim.exited).signal).toBe('SIGKILL');
        // What the kill left: the state the next process starts from.
        atKill.push((await env.store.status(job.triageId))!);
      }
      // Every kill landed while the job was running, at or after its moment, and in the moment's pass.
      expect(atKill.map((s) => s.status)).toEqual(Array(KILLS).fill('processing'));
      atKill.forEach((s, k) => {
        expect(s.grids_done).toBeGreaterThanOrEqual(moments[k]!.grid);
        if (moments[k]!.grid >= coarseGrids) expect(s.progress?.phase).toBe('fine_pass');
      });
      // The moments fell in both passes.
      expect(atKill.some((s) => s.progress?.phase === 'coarse_pass')).toBe(true);
      expect(atKill.some((s) => s.progress?.phase === 'fine_pass')).toBe(true);

      start(env);
      const status = await waitForStatus(env, job.triageId, ended, WAIT_MS);
      expect(status.status).toBe('completed');
      expect(status.total_input).toBe(300);
      expect(status.photos_failed).toBe(refStatus.photos_failed);
      expect(status.pass1_survivors).toBe(refStatus.pass1_survivors);
      expect((await loadSelection(env.store, job.triageId)).map((s) => s.index)).toEqual(refPicks);

      const { records } = await expectAccountedFor(env.store, job.triageId, 300, KILLS);
      // The work was shared by the processes in turn: each resumed where the last one stopped.
      expect(new Set(records.map((r) => r.worker)).size).toBeGreaterThan(2);
    },
    TEST_MS,
  );
});

/** A redis-server with its append-only file synced on every write, in `dir`. */
function startRedis(dir: string, port?: number): Promise<RedisServer> {
  return startRedisServer({
    dir,
    ...(port !== undefined && { port }),
    args: ['--appendonly', 'yes', '--appendfsync', 'always'],
    timeoutMs: 15_000,
  });
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

  it(
    'the worker resumes by itself with the same picks; the API answers 503 meanwhile and recovers without a rebuild',
    async () => {
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
        env.app.inject({
          method: 'POST',
          url: '/api/triage/start-from-storage',
          headers,
          payload: { job_id: jobId, files },
        });
      const statusOf = (jobId: string) =>
        env.app.inject({ method: 'GET', url: `/api/triage/${jobId}/status`, headers });

      // One worker process for the whole test, pointed at this Redis; it is never restarted.
      const WORKER_LOCK_MS = 2000;
      const worker = start(env, {
        REDIS_URL: server!.url,
        STORAGE_READ_LATENCY_MS: '10',
        WORKER_LOCK_MS: String(WORKER_LOCK_MS),
      });

      // The undisturbed reference run.
      const refId = randomUUID();
      expect((await startJob(refId, await stage(refId))).statusCode).toBe(200);
      const refStatus = await until(
        'the reference run',
        async () => {
          const s = (await statusOf(refId)).json<TriageStatus>();
          return ended(s) ? s : undefined;
        },
        WAIT_MS,
        100,
      );
      expect(refStatus.status).toBe('completed');
      const refPicks = (await loadSelection(env.store, refId)).map((s) => s.index);
      expect(refPicks).toHaveLength(9); // K = floor(96 × 10 / 100)

      // The same photos again; Redis is killed once a few grids are recorded.
      const jobId = randomUUID();
      expect((await startJob(jobId, await stage(jobId))).statusCode).toBe(200);
      await until('three grids', async () => (await statusOf(jobId)).json<TriageStatus>().grids_done >= 3, WAIT_MS, 20);
      // The outage must outlast the worker's lock: whatever lock it holds now (renewed or not) has expired
      // WORKER_LOCK_MS after the kill, on this machine's clock, which is the clock Redis expires keys by.
      const lockKey = `${env.prefix}:${TRIAGE_QUEUE}:${jobId}:lock`;
      const lockBefore = await env.redis.get(lockKey);
      const lockGoneAt = Date.now() + WORKER_LOCK_MS + 100;
      await server!.stop('SIGKILL');

      // While Redis is gone: a clear 503 on the status and start routes, at once, and readiness says so.
      const otherId = randomUUID();
      const otherFiles = await stage(otherId);
      const boundary = '----fault-boundary';
      const multipart =
        `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n` +
        `\xff\xd8\xff\xe0 not much of a photo\r\n--${boundary}--\r\n`;
      for (let round = 0; round < 3; round++) {
        // The last round once the worker's lock is past its expiry.
        if (round === 2) await sleep(Math.max(0, lockGoneAt - Date.now()));
        for (const res of [
          await statusOf(jobId),
          await startJob(otherId, otherFiles),
          await env.app.inject({
            method: 'POST',
            url: '/api/triage/start',
            headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
            payload: multipart,
          }),
          await env.app.inject({ method: 'GET', url: '/readyz' }),
        ]) {
          expect(res.statusCode, res.body).toBe(503);
          expect(res.json()).toEqual({ detail: REDIS_DOWN });
        }
      }

      // Back on the same port, from its append-only file, in which the lock of before has expired.
      server = await startRedis(redisDir, server!.port);

      // The same app instance answers again by itself.
      const back = await until(
        'the API to answer again',
        async () => {
          const res = await statusOf(jobId);
          return res.statusCode === 200 ? res.json<TriageStatus>() : undefined;
        },
        30_000,
        100,
      );
      expect(back.job_id).toBe(jobId);
      // The worker's lock of before the outage was not restored (a new one, if any, has another token).
      if (lockBefore !== null) expect(await env.redis.get(lockKey)).not.toBe(lockBefore);
      expect(back.grids_done).toBeGreaterThanOrEqual(3); // nothing recorded before the kill was lost
      expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      // The start refused during the outage left nothing behind.
      expect(await env.store.meta(otherId)).toBeNull();

      const status = await until(
        'the job to end',
        async () => {
          const s = (await statusOf(jobId)).json<TriageStatus>();
          return ended(s) ? s : undefined;
        },
        WAIT_MS,
        200,
      );
      expect(status.status).toBe('completed');
      expect(status.photos_failed).toBe(refStatus.photos_failed);
      expect((await loadSelection(env.store, jobId)).map((s) => s.index)).toEqual(refPicks);
      // Redis gone past the worker's locks: every grid step it held may be judged once more.
      await expectAccountedFor(env.store, jobId, 96, 1, DEFAULT_CONCURRENCY);
      // The same worker process did it all: it survived the outage and resumed by itself.
      expect(worker.child.exitCode).toBeNull();
      expect(worker.child.signalCode).toBeNull();
      await stopWorker(worker);
    },
    TEST_MS,
  );
});
