/**
 * Which Redis, from the environment: a single node or proxy (`REDIS_URL`), a master watched by Sentinels
 * (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`), or a Cluster (`REDIS_CLUSTER_NODES`). At most one kind may be
 * configured; credentials and TLS of the last two come from their own variables, since their node lists are
 * plain `host:port`. A Cluster needs every key of a triage, BullMQ's included, in one slot: the prefix must
 * hold a hash tag, or the first multi-key script fails with CROSSSLOT.
 */
import type { RedisNode, RedisTarget } from './redis.js';

export class SettingsError extends Error {
  override name = 'SettingsError';
}

export type Env = Record<string, string | undefined>;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

function value(env: Env, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

/** `host:port,host:port` → nodes; IPv6 as `[::1]:7000`. */
export function parseNodeList(name: string, raw: string): RedisNode[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(item);
      const port = Number(m?.[3]);
      if (!m || !(port > 0 && port < 65536)) throw new SettingsError(`${name} must be a comma-separated list of host:port, got "${item}"`);
      return { host: (m[1] ?? m[2])!, port };
    });
}

function checkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SettingsError(`REDIS_URL must be a redis:// or rediss:// URL, got something else`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new SettingsError(`REDIS_URL must start with redis:// or rediss:// (TLS), got ${url.protocol}//`);
  }
  return raw;
}

function hasHashTag(prefix: string): boolean {
  return /\{[^{}]+\}/.test(prefix);
}

function tlsSetting(env: Env): boolean {
  const raw = value(env, 'REDIS_TLS') ?? 'off';
  if (raw !== 'on' && raw !== 'off') throw new SettingsError(`REDIS_TLS must be on or off, got "${raw}"`);
  return raw === 'on';
}

/** Refuses settings that belong to another kind than the one configured: a typo must not pass silently. */
function refuseStray(env: Env, kind: RedisTarget['kind'], names: string[]): void {
  for (const name of names) {
    // REDIS_TLS=off is the default spelled out (as in .env.example), not a stray setting.
    if (value(env, name) && !(name === 'REDIS_TLS' && value(env, name) === 'off')) throw new SettingsError(`${name} has no meaning with ${kind === 'single' ? 'REDIS_URL (a single Redis; put credentials and rediss:// in the URL)' : kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : 'REDIS_SENTINELS'}: remove it`);
  }
}

export function redisTargetFromEnv(env: Env, prefix: string): RedisTarget {
  const url = value(env, 'REDIS_URL');
  const cluster = value(env, 'REDIS_CLUSTER_NODES');
  const sentinels = value(env, 'REDIS_SENTINELS');
  const sentinelName = value(env, 'REDIS_SENTINEL_NAME');
  const given = [url && 'REDIS_URL', cluster && 'REDIS_CLUSTER_NODES', sentinels && 'REDIS_SENTINELS'].filter(Boolean);
  if (given.length > 1) {
    throw new SettingsError(`${given.join(' and ')} are both set: configure one kind of Redis (a single node, a Cluster, or Sentinels)`);
  }
  if (sentinelName && !sentinels) throw new SettingsError('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: list the Sentinels as host:port');
  const credentials = { ...(value(env, 'REDIS_USERNAME') && { username: value(env, 'REDIS_USERNAME')! }), ...(value(env, 'REDIS_PASSWORD') && { password: value(env, 'REDIS_PASSWORD')! }) };
  if (cluster) {
    refuseStray(env, 'cluster', ['REDIS_SENTINEL_PASSWORD']);
    if (!hasHashTag(prefix)) {
      throw new SettingsError(
        `TRIAGE_PREFIX "${prefix}" has no hash tag, but REDIS_CLUSTER_NODES is set: on a Cluster every key of the queue must ` +
          `share one slot; use a prefix such as "{${prefix.replace(/[{}]/g, '')}}"`,
      );
    }
    return { kind: 'cluster', nodes: parseNodeList('REDIS_CLUSTER_NODES', cluster), ...credentials, tls: tlsSetting(env) };
  }
  if (sentinels) {
    if (!sentinelName) throw new SettingsError('REDIS_SENTINELS is set without REDIS_SENTINEL_NAME: give the name of the master the Sentinels watch');
    const sentinelPassword = value(env, 'REDIS_SENTINEL_PASSWORD');
    return {
      kind: 'sentinel',
      sentinels: parseNodeList('REDIS_SENTINELS', sentinels),
      name: sentinelName,
      ...credentials,
      ...(sentinelPassword && { sentinelPassword }),
      tls: tlsSetting(env),
    };
  }
  refuseStray(env, 'single', ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'REDIS_TLS']);
  return url ? { kind: 'single', url: checkUrl(url), explicit: true } : { kind: 'single', url: DEFAULT_REDIS_URL, explicit: false };
}
