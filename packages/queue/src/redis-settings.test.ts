import { describe, expect, it } from 'vitest';
import { describeRedis } from './redis.js';
import { readSharedSettings, SettingsError } from './settings.js';

const redisOf = (env: Record<string, string>) => readSharedSettings(env).redis;

describe('which Redis: the settings', () => {
  it('keeps REDIS_URL for a single node (TLS and credentials in the URL) and tells a given one from the default', () => {
    expect(redisOf({})).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6379', explicit: false });
    expect(redisOf({ REDIS_URL: 'rediss://app:s3cret@redis.internal:6380/0' })).toEqual({
      kind: 'single',
      url: 'rediss://app:s3cret@redis.internal:6380/0',
      explicit: true,
    });
    expect(describeRedis(redisOf({ REDIS_URL: 'rediss://app:s3cret@redis.internal:6380/0' }))).not.toContain('s3cret');
    expect(describeRedis(redisOf({ REDIS_URL: 'redis://redis.internal:6379/0?password=s3cret' }))).toBe(
      'redis://redis.internal:6379/0?password=***',
    );
    expect(() => redisOf({ REDIS_URL: 'http://redis.internal' })).toThrow(
      /REDIS_URL must start with redis:\/\/ or rediss:\/\//,
    );
    expect(() => redisOf({ REDIS_URL: 'redis://x', REDIS_PASSWORD: 'p' })).toThrow(
      /REDIS_PASSWORD has no meaning with REDIS_URL/,
    );
    expect(() => redisOf({ REDIS_URL: 'redis://x', REDIS_TLS: 'on' })).toThrow(
      /REDIS_TLS has no meaning with REDIS_URL/,
    );
    expect(redisOf({ REDIS_URL: 'redis://x', REDIS_TLS: 'off' }).kind).toBe('single');
  });

  it('makes a Cluster of REDIS_CLUSTER_NODES, and refuses a prefix without a hash tag, naming TRIAGE_PREFIX', () => {
    const env = {
      REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002',
      TRIAGE_PREFIX: '{triage}',
      REDIS_PASSWORD: 'pw',
      REDIS_TLS: 'on',
    };
    expect(redisOf(env)).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      password: 'pw',
      tls: true,
    });
    expect(describeRedis(redisOf(env))).toBe('Redis Cluster 10.0.0.1:7000,10.0.0.2:7001,::1:7002');
    expect(() => redisOf({ REDIS_CLUSTER_NODES: '10.0.0.1:7000' })).toThrow(
      /TRIAGE_PREFIX "triage" has no hash tag.*"\{triage\}"/,
    );
    expect(() => redisOf({ REDIS_CLUSTER_NODES: '10.0.0.1:7000', TRIAGE_PREFIX: 'app-{}' })).toThrow(/TRIAGE_PREFIX/);
    expect(() => redisOf({ REDIS_CLUSTER_NODES: '10.0.0.1', TRIAGE_PREFIX: '{t}' })).toThrow(
      /REDIS_CLUSTER_NODES must be a comma-separated list of host:port, got "10.0.0.1"/,
    );
  });

  it('makes a Sentinel client of REDIS_SENTINELS with REDIS_SENTINEL_NAME, each needing the other', () => {
    expect(
      redisOf({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'triage', REDIS_SENTINEL_PASSWORD: 'sp' }),
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'triage',
      sentinelPassword: 'sp',
      tls: false,
    });
    expect(() => redisOf({ REDIS_SENTINELS: 's1:26379' })).toThrow(
      /REDIS_SENTINELS is set without REDIS_SENTINEL_NAME/,
    );
    expect(() => redisOf({ REDIS_SENTINEL_NAME: 'triage' })).toThrow(
      /REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/,
    );
  });

  it('refuses two kinds at once with a message naming both', () => {
    expect(() =>
      redisOf({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_NAME: 'm', TRIAGE_PREFIX: '{t}' }),
    ).toThrow(/REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set/);
    expect(() => redisOf({ REDIS_URL: 'redis://x', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_NAME: 'm' })).toThrow(
      /REDIS_URL and REDIS_SENTINELS are both set/,
    );
    expect(() => redisOf({ REDIS_CLUSTER_NODES: 'a:1', TRIAGE_PREFIX: '{t}', REDIS_SENTINEL_PASSWORD: 'x' })).toThrow(
      SettingsError,
    );
  });

  it('takes the failover bound as a positive number of ms', () => {
    expect(readSharedSettings({ REDIS_FAILOVER_TIMEOUT_MS: '5000' }).redisFailoverTimeoutMs).toBe(5000);
    expect(() => readSharedSettings({ REDIS_FAILOVER_TIMEOUT_MS: '0' })).toThrow(/REDIS_FAILOVER_TIMEOUT_MS/);
  });
});
