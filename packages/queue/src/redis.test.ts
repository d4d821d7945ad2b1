import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, redisConnection, RedisUnavailableError, type RedisClient, type RedisRole } from './redis.js';

const URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const open: RedisClient[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.disconnect();
});

describe('redisConnection', () => {
  it('speaks RESP2 on every role: no HELLO 3, which proxies such as twemproxy reject', async () => {
    for (const role of ['producer', 'worker', 'subscriber'] as RedisRole[]) {
      const redis = await connectRedis({ kind: 'single', url: URL, explicit: true }, role);
      open.push(redis);
      expect(String(await redis.call('CLIENT', 'INFO')), role).toMatch(/\bresp=2\b/);
    }
  });

  it('fails at once on a producer while Redis is away, and names the address it tried', async () => {
    const target = { kind: 'single', url: 'redis://user:secret@127.0.0.1:1', explicit: true } as const;
    const err = await connectRedis(target, 'producer', 1500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(/^No Redis answers at redis:\/\/user:\*\*\*@127\.0\.0\.1:1/);
    const lazy = redisConnection(target, 'producer', { lazyConnect: true });
    open.push(lazy);
    await expect(lazy.get('k')).rejects.toThrow(/enableOfflineQueue|Connection is closed/);
  });
});
