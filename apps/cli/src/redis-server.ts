/**
 * Redis for a one-machine run: use the one at REDIS_URL, or start a private `redis-server` for the run when
 * none answers and one is installed, or say exactly how to get one.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connectRedis, redactUrl, startRedisServer } from '@triage/queue';

export interface RedisForRun {
  url: string;
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

export async function ensureRedis(url: string): Promise<RedisForRun> {
  try {
    const probe = await connectRedis(url, 'producer', 1500);
    probe.disconnect();
    return { url, started: false, stop: async () => {} };
  } catch {
    // none answers: start one below
  }
  const binary = await findExecutable('redis-server');
  if (!binary) {
    throw new NoRedisError(
      `No Redis answers at ${redactUrl(url)} and redis-server is not installed.\n` +
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
    url: server.url,
    started: true,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
