/**
 * A benchmark's private key prefix on the shared Redis, and the worker processes it waits for: every run
 * opens one, so that runs never see each other's keys, and removes all of it afterwards.
 */
import {
  createTriageQueue,
  deleteKeysUnder,
  redisConnection,
  TriageStore,
  type RedisClient,
  type TriageJobData,
} from '@triage/queue';
import type { Queue } from 'bullmq';
import { sleep } from './util.js';

export interface RedisPrefix {
  prefix: string;
  redis: RedisClient;
  store: TriageStore;
}

export function openPrefix(redisUrl: string, prefix: string): RedisPrefix {
  const redis = redisConnection({ kind: 'single', url: redisUrl, explicit: true }, 'worker');
  return { prefix, redis, store: new TriageStore(redis, { prefix, retentionSeconds: 3600 }) };
}

export function queueOf(p: RedisPrefix): Queue<TriageJobData> {
  return createTriageQueue({ connection: p.redis, prefix: p.prefix, retentionSeconds: 3600 });
}

/** Removes the BullMQ queue and every key of the prefix, then closes the connection. */
export async function removePrefix(p: RedisPrefix, queue = queueOf(p)): Promise<void> {
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  await deleteKeysUnder(p.redis, p.prefix);
  await p.redis.quit();
}

/** Waits until `count` workers have registered with the queue; `exited()` names a worker that died meanwhile. */
export async function untilWorkersRegister(
  queue: Queue<TriageJobData>,
  count: number,
  timeoutMs: number,
  failure: { exited(): string | null; timedOut(): string },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await queue.getWorkersCount()) < count) {
    const dead = failure.exited();
    if (dead !== null) throw new Error(dead);
    if (Date.now() > deadline) throw new Error(failure.timedOut());
    await sleep(100);
  }
}
