/**
 * Redis connections: the one place a connection is made, for every process and role. A deployment is one
 * of three kinds (a single node or proxy at `REDIS_URL`, a Sentinel-watched master, or a Cluster), read once
 * from the settings into a `RedisTarget`; `redisConnection` turns a target and a role into an ioredis client
 * configured to ride out a failover the way that role needs.
 */
import { redactUrl } from '@triage/core';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** A client of any kind: the commands are the same, only how they find the master differs. */
export type RedisClient = Redis | Cluster;

/**
 * - `worker`: BullMQ's worker and anything that must wait out an outage (`maxRetriesPerRequest: null`).
 * - `producer`: an HTTP request or a CLI command: fails fast while no master answers, reconnects by itself.
 * - `subscriber`: a pub/sub connection; waits out an outage and subscribes again to the same channels.
 */
export type RedisRole = 'worker' | 'producer' | 'subscriber';

export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string; /** False when REDIS_URL was not set and the default is used. */ explicit: boolean }
  | { kind: 'cluster'; nodes: RedisNode[]; username?: string; password?: string; tls: boolean }
  | {
      kind: 'sentinel';
      sentinels: RedisNode[];
      name: string;
      username?: string;
      password?: string;
      sentinelPassword?: string;
      tls: boolean;
    };

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** How long a failover may take before a waiting command gives up, ms (REDIS_FAILOVER_TIMEOUT_MS's default). */
export const DEFAULT_FAILOVER_TIMEOUT_MS = 60_000;

/**
 * Options every connection shares. `protocol: 2`: ioredis would open with `HELLO 3`, which proxies such as
 * twemproxy reject (and the process exits); nothing here needs RESP3 (pub/sub has its own connections).
 * A replica promoted by a failover may still be read-only for a moment: reconnect on READONLY.
 */
const COMMON: RedisOptions = {
  protocol: 2,
  reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
};

/**
 * Worker connections wait out a Redis restart (BullMQ needs `maxRetriesPerRequest: null` for blocking
 * commands); producer connections fail fast so an HTTP request or a CLI never hangs on a dead Redis.
 * Producers auto-pipeline: the commands of concurrent requests issued in the same tick (the API's status
 * reads, under load) go out in one write instead of one each. Measured with `npm run load -- --only
 * throughput` (50 connections on the status route while a job runs, same machine, same hour): 9,500–9,800 →
 * 10,400–11,200 requests/s. Workers do not: their blocking commands would hold up what is queued behind them.
 */
export function redisOptions(role: RedisRole): RedisOptions {
  if (role === 'producer') {
    return {
      ...COMMON,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 3000,
      enableAutoPipelining: true,
    };
  }
  return { ...COMMON, maxRetriesPerRequest: null, enableReadyCheck: true, enableOfflineQueue: true };
}

/** Reconnect delays, ms: quick at first (a failover takes seconds), never more than 2 s apart. */
const reconnectDelay = (times: number) => Math.min(times * 200, 2000);

function sentinelOptions(target: Extract<RedisTarget, { kind: 'sentinel' }>, role: RedisRole): RedisOptions {
  return {
    ...redisOptions(role),
    sentinels: target.sentinels,
    name: target.name,
    ...(target.username && { username: target.username }),
    ...(target.password && { password: target.password }),
    ...(target.sentinelPassword && { sentinelPassword: target.sentinelPassword }),
    ...(target.tls && { tls: {}, enableTLSForSentinelMode: true }),
    // Not ioredis' `failoverDetector`: its Sentinel subscriptions outlive `quit()` and keep a process from
    // exiting. A killed master closes the connection anyway, and a demoted one answers READONLY (above).
    sentinelRetryStrategy: reconnectDelay,
    retryStrategy: reconnectDelay,
  };
}

function clusterOptions(
  target: Extract<RedisTarget, { kind: 'cluster' }>,
  role: RedisRole,
  failoverTimeoutMs: number,
): ClusterOptions {
  const { maxRetriesPerRequest, enableOfflineQueue, enableAutoPipelining, enableReadyCheck, connectTimeout } =
    redisOptions(role);
  // A command whose node went away is retried every `retryDelay` ms, `maxRedirections` times: workers
  // and subscribers for as long as a failover may take, producers for about two seconds (then a 503).
  const retryDelay = 200;
  const patient = role !== 'producer';
  return {
    redisOptions: {
      ...COMMON,
      maxRetriesPerRequest,
      ...(connectTimeout !== undefined && { connectTimeout }),
      ...(target.username && { username: target.username }),
      ...(target.password && { password: target.password }),
      ...(target.tls && { tls: {} }),
    },
    ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
    ...(enableAutoPipelining !== undefined && { enableAutoPipelining }),
    ...(enableReadyCheck !== undefined && { enableReadyCheck }),
    scaleReads: 'master',
    retryDelayOnFailover: retryDelay,
    retryDelayOnClusterDown: retryDelay,
    retryDelayOnTryAgain: retryDelay,
    maxRedirections: patient ? Math.max(16, Math.ceil(failoverTimeoutMs / retryDelay)) : 10,
    clusterRetryStrategy: reconnectDelay,
  };
}

/**
 * THE connection function: every connection of every process is made here. Nothing is awaited; use
 * `connectRedis` where the caller must know that Redis answers before going on.
 */
export function redisConnection(
  target: RedisTarget,
  role: RedisRole,
  extra: { lazyConnect?: boolean; failoverTimeoutMs?: number } = {},
): RedisClient {
  const lazyConnect = extra.lazyConnect ?? false;
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, { ...redisOptions(role), retryStrategy: reconnectDelay, lazyConnect });
    case 'sentinel':
      return new Redis({ ...sentinelOptions(target, role), lazyConnect });
    case 'cluster':
      return new Cluster(target.nodes, {
        ...clusterOptions(target, role, extra.failoverTimeoutMs ?? DEFAULT_FAILOVER_TIMEOUT_MS),
        lazyConnect,
      });
  }
}

/** Connects and waits until Redis answers, or fails with a message naming the address (never a password). */
export async function connectRedis(
  target: RedisTarget,
  role: RedisRole,
  timeoutMs = 3000,
  failoverTimeoutMs?: number,
): Promise<RedisClient> {
  const redis = redisConnection(target, role, {
    lazyConnect: true,
    ...(failoverTimeoutMs !== undefined && { failoverTimeoutMs }),
  });
  // Connection errors surface as rejected commands (or the message below); without a listener ioredis
  // would also print each one as "Unhandled error event".
  redis.on('error', () => {});
  try {
    await withDeadline(redis.connect(), timeoutMs, 'connecting');
    await withDeadline(redis.ping(), timeoutMs, 'PING');
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(`No Redis answers at ${describeRedis(target)}: ${(err as Error).message}`);
  }
  return redis;
}

/** Where a target points, for messages and logs: passwords hidden. */
export function describeRedis(target: RedisTarget): string {
  const list = (nodes: RedisNode[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (target.kind) {
    case 'single':
      return redactUrl(target.url, '(invalid Redis URL)');
    case 'cluster':
      return `Redis Cluster ${list(target.nodes)}`;
    case 'sentinel':
      return `master "${target.name}" of Sentinels ${list(target.sentinels)}`;
  }
}

/** ioredis and BullMQ failures that mean "no master answers right now", not "this request is wrong". */
export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  const e = err as { name?: string; message?: string; code?: string };
  if (e?.name === 'MaxRetriesPerRequestError' || e?.name === 'ClusterAllFailedError') return true;
  const message = e?.message ?? '';
  return (
    /Stream isn't writeable|Connection is closed|enableOfflineQueue|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Redis is not answering|CLUSTERDOWN|TRYAGAIN|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes|All sentinels are unreachable|READONLY|LOADING|MASTERDOWN/.test(
      message,
    ) || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(e?.code ?? '')
  );
}

/** Rejects with a RedisUnavailableError when `promise` takes longer than `ms` (ioredis and BullMQ wait for a connection). */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new RedisUnavailableError(`Redis is not answering (${what} took over ${ms} ms)`)),
      ms,
    );
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

/** The nodes that hold data: every master of a Cluster, or the one node otherwise. */
function dataNodes(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/**
 * Every key under `prefix` (`prefix:…`), by SCAN on every master: never KEYS, which would block Redis on a
 * big data set.
 */
export async function keysUnder(redis: RedisClient, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of dataNodes(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

/** Deletes every key under `prefix`: a test's or a benchmark's own namespace, when it is done. */
export async function deleteKeysUnder(redis: RedisClient, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (redis instanceof Cluster) {
    // Keys of different slots cannot go in one DEL: one each, pipelined.
    for (let i = 0; i < keys.length; i += 1000) await Promise.all(keys.slice(i, i + 1000).map((k) => redis.del(k)));
    return;
  }
  for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
}
