/** Redis connections, configured for their role as BullMQ recommends. */
import { Redis, type RedisOptions } from 'ioredis';

export type RedisRole = 'worker' | 'producer';

/**
 * Worker connections wait out a Redis restart (BullMQ needs `maxRetriesPerRequest: null` for blocking
 * commands); producer connections fail fast so an HTTP request or a CLI never hangs on a dead Redis.
 * Producers auto-pipeline: the commands of concurrent requests issued in the same tick (the API's status
 * reads, under load) go out in one write instead of one each. Measured with `npm run load -- --only
 * throughput` (50 connections on the status route while a job runs, same machine, same hour): 9,500–9,800 →
 * 10,400–11,200 requests/s. Workers do not: their blocking commands would hold up what is queued behind them.
 */
export function redisOptions(role: RedisRole): RedisOptions {
  return role === 'worker'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 3000, enableAutoPipelining: true };
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** Connects and waits until Redis answers, or fails with a message naming the URL (never its password). */
export async function connectRedis(url: string, role: RedisRole, timeoutMs = 3000): Promise<Redis> {
  const redis = new Redis(url, { ...redisOptions(role), lazyConnect: true, retryStrategy: role === 'worker' ? undefined : () => null });
  // Connection errors surface as rejected commands (or the message below); without a listener ioredis
  // would also print each one as "Unhandled error event".
  redis.on('error', () => {});
  try {
    await withDeadline(redis.connect(), timeoutMs, 'connecting');
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(`No Redis answers at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  if (role === 'producer') {
    // Reconnect after the first success, but keep failing fast while Redis is away.
    redis.options.retryStrategy = (times: number) => Math.min(times * 200, 2000);
  }
  return redis;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid Redis URL)';
  }
}

/** Rejects with a RedisUnavailableError when `promise` takes longer than `ms` (ioredis and BullMQ wait for a connection). */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RedisUnavailableError(`Redis is not answering (${what} took over ${ms} ms)`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Every key under `prefix` (`prefix:…`), by SCAN: never KEYS, which would block Redis on a big data set. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key under `prefix`: a test's or a benchmark's own namespace, when it is done. */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
}
