/**
 * Shared by the worker's integration tests: real Redis (each test on its own key prefix, cleaned up),
 * real sharp, the local storage driver in a temp folder, worker processes started from the built app.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { OFFLINE_PROFILE, type Pass, type PassLayout, type VisionProfile } from '@triage/core';
import {
  composeGrid,
  generateSampleSet,
  thumbnailFromDcScans,
  thumbnailFromEmbedded,
  thumbnailFromFile,
  type SampleFile,
} from '@triage/images';
import {
  createTriageQueue,
  deleteKeysUnder,
  eventsChannel,
  prepareTriage,
  redisConnection,
  submitTriage,
  TriageStore,
  type PhotoInput,
  type RedisClient,
  type RedisTarget,
  type TriageJobData,
  type TriageStatus,
} from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import type { FakeSupabase } from '@triage/storage/testing';
import { OfflineProvider } from '@triage/vision';
import { pino } from 'pino';
import { createTriageWorker, type ImageOps, type TriageWorker, type TriageWorkerOptions } from '../src/index.js';
import type { Queue } from 'bullmq';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The shared test Redis; a test that runs its own Sentinels or Cluster passes its own target. */
export const REDIS_TARGET: RedisTarget = { kind: 'single', url: REDIS_URL, explicit: true };
export const WORKER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/main.js');
export const BUCKET = 'photos';

/** 12 photos per coarse grid, so that a 60-photo job has several grids. */
export const SMALL_GRIDS: Partial<Record<Pass, PassLayout>> = { coarse: { minThumb: 84, rows: 3, cols: 4 } };

export interface Env {
  prefix: string;
  dir: string;
  storageDir: string;
  target: RedisTarget;
  redis: RedisClient;
  store: TriageStore;
  queue: Queue<TriageJobData>;
  storage: LocalStorage;
  close(): Promise<void>;
}

export async function setup(
  target: RedisTarget = REDIS_TARGET,
  prefix = `test-${randomUUID().slice(0, 8)}`,
): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'triage-test-'));
  const storageDir = join(dir, 'storage');
  const redis = redisConnection(target, 'worker');
  const store = new TriageStore(redis, { prefix, retentionSeconds: 600 });
  const queue = createTriageQueue({ connection: redis, prefix, retentionSeconds: 600 });
  return {
    prefix,
    dir,
    storageDir,
    target,
    redis,
    store,
    queue,
    storage: new LocalStorage({ root: storageDir }),
    async close() {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await deleteKeysUnder(redis, prefix);
      await redis.quit();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let samples: Promise<{ dir: string; files: SampleFile[] }> | undefined;

/** The default 60-photo sample set (good shots, bursts, blurred, dark, blown out, unreadable), made once per file. */
export function sampleSet(): Promise<{ dir: string; files: SampleFile[] }> {
  samples ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'triage-samples-'));
    return { dir, files: await generateSampleSet(dir) };
  })();
  return samples;
}

/** Puts `count` readable sample photos into a local Storage server under a new job's folder. */
export async function putSamples(
  fake: FakeSupabase,
  count: number,
  extra?: (photo: PhotoInput, bytes: Buffer) => Promise<void>,
): Promise<{ id: string; photos: PhotoInput[] }> {
  const { files } = await sampleSet();
  const id = randomUUID();
  const photos: PhotoInput[] = [];
  for (const file of files.filter((f) => f.kind !== 'unreadable').slice(0, count)) {
    const photo = { name: file.name, path: `triage/user-1/${id}/${photos.length}-${file.name}` };
    const bytes = await readFile(file.path);
    fake.put(BUCKET, photo.path, bytes, { contentType: 'image/jpeg' });
    await extra?.(photo, bytes);
    photos.push(photo);
  }
  return { id, photos };
}

export async function removeSampleSet(): Promise<void> {
  if (samples) await rm((await samples).dir, { recursive: true, force: true });
  samples = undefined;
}

export interface StagedJob {
  triageId: string;
  /** The sample behind each photo index. */
  files: SampleFile[];
}

export interface JobOptions {
  target?: string;
  passes?: 1 | 2;
  layouts?: Partial<Record<Pass, PassLayout>>;
  userId?: string;
  profile?: VisionProfile;
  /** The triage's id (default: a new one). */
  triageId?: string;
}

/** Submits a triage over photos already in storage. */
export async function submit(
  env: Env,
  triageId: string,
  photos: PhotoInput[],
  options: JobOptions = {},
): Promise<string> {
  const prepared = prepareTriage(
    {
      triageId,
      userId: options.userId ?? 'user-1',
      bucket: BUCKET,
      photos,
      target: options.target ?? '10%',
      passes: options.passes ?? 2,
    },
    options.profile ?? OFFLINE_PROFILE,
    options.layouts ?? {},
  );
  await submitTriage(env.queue, env.store, prepared);
  return triageId;
}

/** Links photos into the local storage folder at `triage/{user}/{id}/…` and submits a triage over them. */
export async function stageJob(env: Env, files: SampleFile[], options: JobOptions = {}): Promise<StagedJob> {
  const triageId = options.triageId ?? randomUUID();
  const photos = [];
  for (const [i, file] of files.entries()) {
    const path = `triage/${options.userId ?? 'user-1'}/${triageId}/${String(i).padStart(4, '0')}-${basename(file.path)}`;
    const target = env.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(file.path, target);
    photos.push({ name: file.name, path });
  }
  await submit(env, triageId, photos, options);
  return { triageId, files };
}

/** Resolves with the first status that satisfies `predicate`, following the triage's events. */
export async function waitForStatus(
  env: Env,
  triageId: string,
  predicate: (s: TriageStatus) => boolean,
  timeoutMs = 300_000,
): Promise<TriageStatus> {
  const sub = redisConnection(env.target, 'subscriber');
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    return await new Promise<TriageStatus>((resolvePromise, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for triage ${triageId}`)), timeoutMs);
      const check = async () => {
        const s = await env.store.status(triageId);
        if (s && predicate(s)) resolvePromise(s);
      };
      sub.on('message', () => void check().catch(reject));
      void sub.subscribe(eventsChannel(env.prefix, triageId)).then(check, reject);
      poll = setInterval(() => void check().catch(reject), 250);
    });
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    sub.disconnect();
  }
}

export const ended = (s: TriageStatus) => ['completed', 'failed', 'cancelled'].includes(s.status);

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the worker app as its own process, as an operator would. */
export function spawnWorker(
  env: Pick<Env, 'prefix' | 'storageDir'>,
  extra: Record<string, string> = {},
): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL,
      TRIAGE_PREFIX: env.prefix,
      STORAGE_DIR: env.storageDir,
      LOG_LEVEL: 'info',
      MALLOC_ARENA_MAX: '2',
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  return { child, output: () => out, exited };
}

export async function stopWorker(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
}

/** Waits until a worker process has registered with the queue. */
export async function waitForWorkers(env: Env, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await env.queue.getWorkersCount()) < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} workers registered within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The image work of a worker, as its start wires it (@triage/images). */
export const IMAGES = {
  thumbnail: thumbnailFromFile,
  thumbnailFromEmbedded,
  thumbnailFromDcScans,
  composeGrid,
} satisfies ImageOps;

export interface InProcessWorker {
  worker: TriageWorker;
  close(): Promise<void>;
}

/**
 * A worker in the test's own process, on the test's prefix, so that sharp can be sampled or a part replaced
 * by an instrumented real one: the local storage folder and the offline provider unless overridden.
 */
export async function inProcessWorker(
  env: Env,
  overrides: Partial<TriageWorkerOptions> = {},
): Promise<InProcessWorker> {
  const subscriber = redisConnection(env.target, 'subscriber');
  const worker = await createTriageWorker({
    connection: env.redis,
    subscriber,
    prefix: env.prefix,
    store: env.store,
    storage: env.storage,
    vision: new OfflineProvider(),
    images: IMAGES,
    log: pino({ level: 'silent' }),
    ...overrides,
  });
  return {
    worker,
    async close() {
      await worker.close(2000);
      subscriber.disconnect();
    },
  };
}

/** Runs `check` until it holds, every `ms`; fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000, ms = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, ms));
  }
}

/**
 * What must hold after any interruption: every photo has a coarse verdict; no grid judged again but those an
 * interruption caught unrecorded — at most `perInterruption` each (the grid steps a worker holds at once).
 */
export async function expectAccountedFor(
  store: TriageStore,
  triageId: string,
  total: number,
  interruptions: number,
  perInterruption = 1,
) {
  const coarse = await store.coarseVerdicts(triageId);
  expect(coarse.size).toBe(total);
  const records = await store.gridRecords(triageId);
  const coarsePhotos = records.filter((r) => r.pass === 'coarse').flatMap((r) => r.photos);
  expect(coarsePhotos.sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
  const attempts = await store.attempts(triageId);
  // Every grid that reached the provider was recorded, and every recorded grid reached it.
  expect(Object.keys(attempts).sort()).toEqual(records.map((r) => `${r.pass}:${r.grid}`).sort());
  const repeats = Object.values(attempts).reduce((sum, n) => sum + (n - 1), 0);
  expect(repeats).toBeLessThanOrEqual(interruptions * perInterruption);
  return { records, attempts, repeats };
}
