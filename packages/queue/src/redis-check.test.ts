/**
 * The Redis configuration check, against real redis-server processes started on free ports with the
 * configuration under test (and, for managed Redis, with CONFIG or INFO refused).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkRedisConfig, warnAboutRedisConfig } from './redis-check.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

interface Server {
  server: RedisServer;
  redis: Redis;
  dir: string;
}

const servers: Server[] = [];

/** A redis-server of its own, in its own folder (AOF writes there), with `args` on its command line. */
async function startRedis(args: string[]): Promise<Redis> {
  const dir = await mkdtemp(join(tmpdir(), 'triage-redis-check-'));
  const server = await startRedisServer({ dir, args });
  // No ready check: it sends INFO, which one of these servers refuses.
  const redis = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    enableReadyCheck: false,
  });
  redis.on('error', () => {});
  servers.push({ server, redis, dir });
  await redis.connect();
  return redis;
}

function recorder() {
  const lines: string[] = [];
  return { lines, log: { warn: (_obj: object, msg: string) => void lines.push(msg) } };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.redis.disconnect();
    await s.server.stop('SIGKILL');
    await rm(s.dir, { recursive: true, force: true });
  }
});

describe('warnAboutRedisConfig', () => {
  it('warns about allkeys-lru and AOF off, naming both settings', async () => {
    const redis = await startRedis(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no']);
    const { lines, log } = recorder();
    const report = await warnAboutRedisConfig(redis, log);
    expect(report).toMatchObject({ maxmemoryPolicy: 'allkeys-lru', aof: false, source: 'config' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^Redis maxmemory-policy is allkeys-lru, not noeviction: .*evict.*Set maxmemory-policy noeviction/,
    );
    expect(lines[1]).toMatch(/^Redis AOF is off \(appendonly no\): a Redis restart loses .*Set appendonly yes\.$/);
  });

  it('says nothing when Redis has noeviction and AOF on', async () => {
    const redis = await startRedis(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes']);
    const { lines, log } = recorder();
    const report = await warnAboutRedisConfig(redis, log);
    expect(report).toEqual({ maxmemoryPolicy: 'noeviction', aof: true, source: 'config', warnings: [] });
    expect(lines).toEqual([]);
  });

  it('reads INFO when CONFIG is refused, as on managed Redis', async () => {
    const redis = await startRedis([
      '--maxmemory-policy',
      'volatile-lru',
      '--appendonly',
      'yes',
      '--rename-command',
      'CONFIG',
      '',
    ]);
    const report = await checkRedisConfig(redis);
    expect(report).toMatchObject({ maxmemoryPolicy: 'volatile-lru', aof: true, source: 'info' });
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/^Redis maxmemory-policy is volatile-lru, not noeviction/);
  });

  it('says it could not check when CONFIG and INFO are both refused, and does not throw', async () => {
    const redis = await startRedis(['--rename-command', 'CONFIG', '', '--rename-command', 'INFO', '']);
    const { lines, log } = recorder();
    const report = await warnAboutRedisConfig(redis, log);
    expect(report).toMatchObject({ maxmemoryPolicy: null, aof: null, source: null });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^Could not check the Redis configuration \(CONFIG GET: .*unknown command.*; INFO: .*\): make sure it has maxmemory-policy noeviction and AOF on/,
    );
  });

  it('gives up within its deadline when Redis does not answer', async () => {
    const redis = await startRedis([]);
    // Paused for a minute: a check that waited for the answer could not end within the bound, on any machine.
    await redis.call('CLIENT', 'PAUSE', '60000', 'ALL');
    const started = Date.now();
    const report = await checkRedisConfig(redis, 300);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(report.warnings[0]).toMatch(/^Could not check the Redis configuration \(Redis is not answering/);
  });
});
