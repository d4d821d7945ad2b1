/**
 * What every load scenario runs on: its context (repository, Redis, scratch folder, the processes' extra
 * settings), a private service (key prefix and storage folder on the shared Redis, removed afterwards) and the
 * HS256 tokens of its users. Tokens are signed here with node:crypto (the bench does not depend on jose); the
 * API verifies them with jose.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TriageStore, type RedisClient } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { openPrefix, removePrefix } from '../prefix.js';

export const BUCKET = 'photos';
export const API_PREFIX = '/api/triage';
export const TERMINAL = ['completed', 'failed', 'cancelled'];

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
  const onRedis = openPrefix(ctx.redisUrl, prefix);
  return {
    prefix,
    storageDir,
    secret: randomUUID() + randomUUID(),
    redis: onRedis.redis,
    store: onRedis.store,
    storage: new LocalStorage({ root: storageDir }),
    async cleanup() {
      await removePrefix(onRedis);
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}
