/**
 * Which Redis, from the environment: a single node or proxy (`REDIS_URL`), a master watched by Sentinels
 * (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`), or a Cluster (`REDIS_CLUSTER_NODES`). At most one kind may be
 * configured; credentials and TLS of the last two come from their own variables, since their node lists are
 * plain `host:port`. A Cluster needs every key of a triage, BullMQ's included, in one slot: the prefix must
 * hold a hash tag, or the first multi-key script fails with CROSSSLOT.
 */
import { setting, SettingsError, type Env } from '@triage/core';
import type { RedisNode, RedisTarget } from './redis.js';

export { SettingsError, type Env } from '@triage/core';

/** The variables that say which Redis; only those of one kind may be set. */
export const REDIS_SETTINGS = {
  url: setting.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:'], (_, protocol) =>
    protocol
      ? `REDIS_URL must start with redis:// or rediss:// (TLS), got ${protocol}//`
      : `REDIS_URL must be a redis:// or rediss:// URL, got something else`,
  ),
  /** `host:port,host:port`: see `parseNodeList`. */
  clusterNodes: setting.text('REDIS_CLUSTER_NODES', undefined),
  sentinels: setting.text('REDIS_SENTINELS', undefined),
  sentinelName: setting.text('REDIS_SENTINEL_NAME', undefined),
  username: setting.text('REDIS_USERNAME', undefined),
  password: setting.text('REDIS_PASSWORD', undefined),
  sentinelPassword: setting.text('REDIS_SENTINEL_PASSWORD', undefined),
  tls: setting.oneOf('REDIS_TLS', ['on', 'off'], 'off'),
};

export const DEFAULT_REDIS_URL = REDIS_SETTINGS.url.default;

/** `host:port,host:port` → nodes; IPv6 as `[::1]:7000`. */
export function parseNodeList(name: string, raw: string): RedisNode[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(item);
      const port = Number(m?.[3]);
      if (!m || !(port > 0 && port < 65536))
        throw new SettingsError(`${name} must be a comma-separated list of host:port, got "${item}"`);
      return { host: (m[1] ?? m[2])!, port };
    });
}

function hasHashTag(prefix: string): boolean {
  return /\{[^{}]+\}/.test(prefix);
}

/** Refuses settings that belong to another kind than the one configured: a typo must not pass silently. */
function refuseStray(env: Env, kind: RedisTarget['kind'], names: (keyof typeof REDIS_SETTINGS)[]): void {
  for (const { name } of names.map((key) => REDIS_SETTINGS[key])) {
    // REDIS_TLS=off is the default spelled out (as in .env.example), not a stray setting.
    if (env[name]?.trim() && !(name === 'REDIS_TLS' && env[name]?.trim() === 'off'))
      throw new SettingsError(
        `${name} has no meaning with ${kind === 'single' ? 'REDIS_URL (a single Redis; put credentials and rediss:// in the URL)' : kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : 'REDIS_SENTINELS'}: remove it`,
      );
  }
}

export function redisTargetFromEnv(env: Env, prefix: string): RedisTarget {
  const s = REDIS_SETTINGS;
  const cluster = s.clusterNodes.read(env);
  const sentinels = s.sentinels.read(env);
  const sentinelName = s.sentinelName.read(env);
  const given = [s.url, s.clusterNodes, s.sentinels].filter((one) => one.given(env)).map((one) => one.name);
  if (given.length > 1) {
    throw new SettingsError(
      `${given.join(' and ')} are both set: configure one kind of Redis (a single node, a Cluster, or Sentinels)`,
    );
  }
  if (sentinelName && !sentinels)
    throw new SettingsError('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: list the Sentinels as host:port');
  const username = s.username.read(env);
  const password = s.password.read(env);
  const credentials = { ...(username && { username }), ...(password && { password }) };
  if (cluster) {
    refuseStray(env, 'cluster', ['sentinelPassword']);
    if (!hasHashTag(prefix)) {
      throw new SettingsError(
        `TRIAGE_PREFIX "${prefix}" has no hash tag, but REDIS_CLUSTER_NODES is set: on a Cluster every key of the queue must ` +
          `share one slot; use a prefix such as "{${prefix.replace(/[{}]/g, '')}}"`,
      );
    }
    return {
      kind: 'cluster',
      nodes: parseNodeList(s.clusterNodes.name, cluster),
      ...credentials,
      tls: s.tls.read(env) === 'on',
    };
  }
  if (sentinels) {
    if (!sentinelName)
      throw new SettingsError(
        'REDIS_SENTINELS is set without REDIS_SENTINEL_NAME: give the name of the master the Sentinels watch',
      );
    const sentinelPassword = s.sentinelPassword.read(env);
    return {
      kind: 'sentinel',
      sentinels: parseNodeList(s.sentinels.name, sentinels),
      name: sentinelName,
      ...credentials,
      ...(sentinelPassword && { sentinelPassword }),
      tls: s.tls.read(env) === 'on',
    };
  }
  refuseStray(env, 'single', ['username', 'password', 'sentinelPassword', 'tls']);
  return { kind: 'single', url: s.url.read(env), explicit: s.url.given(env) };
}
