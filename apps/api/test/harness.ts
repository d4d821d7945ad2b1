/**
 * Shared by the API's tests: the real app over real Redis (each test file on its own key prefix and queue
 * names, cleaned up), the local storage driver in a temp folder, and the real authenticator with HS256
 * tokens signed here.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SignJWT } from 'jose';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import {
  connectRedis,
  createHandOffQueue,
  deleteKeysUnder,
  createTriageQueue,
  TriageStore,
  type HandOffJobData,
  type RedisClient,
  type TriageJobData,
} from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { buildApp, type AppDeps } from '../src/app.js';
import { createAuthenticator } from '../src/auth.js';
import { readApiSettings, type ApiSettings } from '../src/settings.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
export const PUBLIC_URL = 'http://api.test';
export const BUCKET = 'photos';

/** The smallest bytes that pass the JPEG check (the worker never reads them in these tests). */
export const JPEG_BYTES = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
  Buffer.alloc(60, 1),
  Buffer.from([0xff, 0xd9]),
]);

export interface Env {
  prefix: string;
  dir: string;
  storageDir: string;
  settings: ApiSettings;
  redis: RedisClient;
  store: TriageStore;
  queue: Queue<TriageJobData>;
  handoffQueue: Queue<HandOffJobData>;
  storage: LocalStorage;
  app: FastifyInstance;
  token(userId: string): Promise<string>;
  auth(userId: string): Promise<{ authorization: string }>;
  /** Writes files into storage under the user's job folder; returns the `files` of a start request. */
  stage(
    userId: string,
    jobId: string,
    count: number,
    bytes?: (i: number) => Buffer | Promise<Buffer>,
  ): Promise<{ original_name: string; storage_path: string; size: number }[]>;
  close(): Promise<void>;
}

export async function setup(
  envOverrides: Record<string, string> = {},
  depOverrides: Partial<AppDeps> = {},
  makeStorage: (options: ConstructorParameters<typeof LocalStorage>[0]) => LocalStorage = (o) => new LocalStorage(o),
): Promise<Env> {
  const prefix = envOverrides.TRIAGE_PREFIX ?? `apitest-${randomUUID().slice(0, 8)}`;
  // The folder name is needed for the settings; the folder is made once Redis has answered.
  const dir = join(tmpdir(), `triage-api-test-${prefix}`);
  const storageDir = join(dir, 'storage');
  const settings = readApiSettings({
    // The shared test Redis, unless the test brings its own Sentinels or Cluster.
    ...(!envOverrides.REDIS_SENTINELS && !envOverrides.REDIS_CLUSTER_NODES && { REDIS_URL }),
    TRIAGE_PREFIX: prefix,
    STORAGE_DIR: storageDir,
    PUBLIC_URL,
    STORAGE_SIGNING_KEY: 'test-signing-key',
    SUPABASE_JWT_SECRET: JWT_SECRET,
    PROCEED_QUEUE: `${prefix}-proceed`,
    RATE_LIMIT_PER_MINUTE: '1000',
    MAX_ACTIVE_JOBS_PER_USER: '1000',
    ...envOverrides,
  });
  const redis = await connectRedis(settings.redis, 'producer');
  await mkdir(dir, { recursive: true });
  const store = new TriageStore(redis, { prefix, retentionSeconds: 600 });
  const queueOptions = { connection: redis, prefix, retentionSeconds: 600 };
  const queue = createTriageQueue(queueOptions);
  const handoffQueue = createHandOffQueue(settings.proceedQueue, queueOptions);
  // Connection errors reach the requests as 503s; the tests that stop Redis need no second report.
  queue.on('error', () => {});
  handoffQueue.on('error', () => {});
  const storage = makeStorage({
    root: storageDir,
    publicUrl: `${settings.publicUrl}/storage`,
    signingKey: settings.storageSigningKey,
  });
  const authenticator = createAuthenticator({ jwtSecret: JWT_SECRET });
  const app = await buildApp({
    settings,
    redis,
    store,
    queue,
    handoffQueue,
    storage,
    authenticator,
    logger: false,
    heartbeatMs: 300,
    cancelWaitMs: 5000,
    ...depOverrides,
  });
  const secret = new TextEncoder().encode(JWT_SECRET);
  const token = (userId: string) =>
    new SignJWT({ role: 'authenticated' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setAudience('authenticated')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(secret);
  return {
    prefix,
    dir,
    storageDir,
    settings,
    redis,
    store,
    queue,
    handoffQueue,
    storage,
    app,
    token,
    async auth(userId) {
      return { authorization: `Bearer ${await token(userId)}` };
    },
    async stage(userId, jobId, count, bytes = () => JPEG_BYTES) {
      const files = [];
      for (let i = 0; i < count; i++) {
        const path = `triage/${userId}/${jobId}/${String(i).padStart(4, '0')}.jpg`;
        const file = storage.filePath(BUCKET, path);
        await mkdir(dirname(file), { recursive: true });
        const body = await bytes(i);
        await writeFile(file, body);
        files.push({ original_name: `IMG_${String(i).padStart(4, '0')}.jpg`, storage_path: path, size: body.length });
      }
      return files;
    },
    async close() {
      await app.close();
      for (const q of [queue, handoffQueue]) {
        await q.obliterate({ force: true }).catch(() => {});
        await q.close();
      }
      await deleteKeysUnder(redis, prefix);
      await redis.quit();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` until it returns a value, polling every `ms`. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  ms = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, ms));
  }
}

export { writeFile };
