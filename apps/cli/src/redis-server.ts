/**
 * Redis for a one-machine run. A configured Redis (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS) is
 * used or the run stops with the "no Redis" error naming it: never a stand-in for what the operator chose.
 * Only when nothing is configured: the Redis at REDIS_LOCAL_URL (default DEFAULT_REDIS_URL), or a private
 * `redis-server` for the run when none answers there and one is installed, or exactly how to get one.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { redactUrl, setting } from '@triage/core';
import { connectRedis, DEFAULT_REDIS_URL, describeRedis, startRedisServer, type RedisTarget } from '@triage/queue';

export interface RedisForRun {
  target: RedisTarget;
  /** What the processes this run starts need in their environment to reach the same Redis. */
  env: Record<string, string>;
  /** True when this run started its own redis-server. */
  started: boolean;
  stop(): Promise<void>;
}

export class NoRedisError extends Error {
  override name = 'NoRedisError';
}

export async function findExecutable(name: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

async function answers(target: RedisTarget): Promise<string | null> {
  try {
    const probe = await connectRedis(target, 'producer', 1500);
    probe.disconnect();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

const using = (target: RedisTarget): RedisForRun => ({
  target,
  env: target.kind === 'single' ? { REDIS_URL: target.url } : {},
  started: false,
  stop: async () => {},
});

/** Where to look for a Redis when none is configured. */
export const REDIS_LOCAL_URL = setting.url(
  'REDIS_LOCAL_URL',
  DEFAULT_REDIS_URL,
  ['redis:', 'rediss:'],
  () => 'REDIS_LOCAL_URL must be a redis:// or rediss:// URL',
);

export async function ensureRedis(configured: RedisTarget, env: NodeJS.ProcessEnv = process.env): Promise<RedisForRun> {
  if (configured.kind !== 'single' || configured.explicit) {
    const failure = await answers(configured);
    if (failure)
      throw new NoRedisError(
        `${failure}\n(configured by ${configured.kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : configured.kind === 'sentinel' ? 'REDIS_SENTINELS' : 'REDIS_URL'}; no other Redis is used in its place)`,
      );
    return using(configured);
  }
  const local: RedisTarget = { kind: 'single', url: REDIS_LOCAL_URL.read(env), explicit: false };
  if ((await answers(local)) === null) return using(local);
  const binary = await findExecutable('redis-server');
  if (!binary) {
    throw new NoRedisError(
      `No Redis answers at ${describeRedis(local)} and redis-server is not installed.\n` +
        'Install Redis 7 and run this again:\n' +
        '  Debian/Ubuntu:  sudo apt-get install -y redis-server\n' +
        '  macOS:          brew install redis\n' +
        '  Docker:         docker run -d -p 6379:6379 redis:7\n' +
        'or point REDIS_URL at a Redis you have.',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'triage-redis-'));
  let server;
  try {
    server = await startRedisServer({ binary, dir, args: ['--appendonly', 'no', '--maxmemory-policy', 'noeviction'] });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new NoRedisError(`could not start redis-server (${binary}): ${(err as Error).message}`);
  }
  return {
    ...using({ kind: 'single', url: server.url, explicit: false }),
    started: true,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The line `triage start` prints when it started a private Redis. */
export function startedNotice(redis: RedisForRun): string {
  return `No Redis configured and none answers at ${redactUrl(REDIS_LOCAL_URL.read(process.env))}: started one for this session at ${describeRedis(redis.target)}\n`;
}
