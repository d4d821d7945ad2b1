/**
 * Settings the API, the CLI and the worker share, read once from the environment and validated. Every
 * variable is listed with its default in `.env.example` and the README.
 */
import { resolve } from 'node:path';
import {
  combinedProfile,
  DEFAULT_LAYOUTS,
  DEFAULT_MODEL,
  OFFLINE_PROFILE,
  profileFor,
  UnknownModelError,
  type Pass,
  type ProfileOverrides,
  type PassLayout,
  type VisionProfile,
} from '@triage/core';
import { DEFAULT_PREFIX } from './contract.js';
import { DEFAULT_HANDOFF_QUEUE } from './submit.js';
import { redisTargetFromEnv, SettingsError, type Env } from './redis-settings.js';
import { DEFAULT_FAILOVER_TIMEOUT_MS, type RedisTarget } from './redis.js';

export interface SharedSettings {
  /** Where Redis is and of which kind (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS): see `redisConnection`. */
  redis: RedisTarget;
  /** How long a command, or the CLI, waits for a new master during a failover, ms. */
  redisFailoverTimeoutMs: number;
  prefix: string;
  /** The BullMQ queue `proceed` hands picks to (PROCEED_QUEUE): the API adds to it, workers with a database consume it. */
  proceedQueue: string;
  retentionSeconds: number;
  storageDriver: 'local' | 'supabase';
  storageDir: string;
  /** Extra latency per storage read, ms (imitates a remote store in benchmarks and tests). */
  storageReadLatencyMs: number;
  /** Supabase project URL (the JWKS and Storage live under it). */
  supabaseUrl: string | undefined;
  /** Secret: never logged, never in job data. */
  supabaseServiceRoleKey: string | undefined;
  /** Ask storage for images already resized to the cell (Supabase image transforms). */
  storageTransforms: boolean;
  bucket: string;
  visionProvider: 'offline' | 'anthropic';
  /** Secret: never logged, never in job data. */
  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string | undefined;
  /** Models that vote on each grid (union). */
  visionModels: string[];
  /** Operator corrections to every model's profile (VISION_MAX_EDGE, VISION_MAX_TOKENS, VISION_PATCH, prices). */
  visionProfileOverrides: ProfileOverrides;
  /** What the provider sees: grids are planned to exactly this (the smallest of the voting models'). */
  profile: VisionProfile;
  layouts: Record<Pass, PassLayout>;
}

export { SettingsError } from './redis-settings.js';

function positiveNumber(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n > 0)) throw new SettingsError(`${name} must be a positive number, got "${raw}"`);
  return n;
}

function nonNegativeNumber(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n >= 0)) throw new SettingsError(`${name} must be a number ≥ 0, got "${raw}"`);
  return n;
}

function optionalInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n > 0)) throw new SettingsError(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new SettingsError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

function layoutFromEnv(env: Env, pass: Pass): PassLayout {
  const p = `GRID_${pass.toUpperCase()}`;
  const layout: PassLayout = { minThumb: optionalInt(env, `${p}_MIN_THUMB`) ?? DEFAULT_LAYOUTS[pass].minThumb };
  const rows = optionalInt(env, `${p}_ROWS`);
  const cols = optionalInt(env, `${p}_COLS`);
  if (rows !== undefined) layout.rows = rows;
  if (cols !== undefined) layout.cols = cols;
  return layout;
}

export function readSharedSettings(env: Env = process.env): SharedSettings {
  const prefix = env.TRIAGE_PREFIX?.trim() || DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9{}_.-]+$/.test(prefix)) throw new SettingsError(`TRIAGE_PREFIX may hold letters, digits, {}, _, . and - only, got "${prefix}"`);
  const proceedQueue = env.PROCEED_QUEUE?.trim() || DEFAULT_HANDOFF_QUEUE;
  if (!/^[A-Za-z0-9_.-]+$/.test(proceedQueue)) throw new SettingsError(`PROCEED_QUEUE may hold letters, digits, _, . and - only, got "${proceedQueue}"`);
  const storageDriver = oneOf(env, 'STORAGE_DRIVER', ['local', 'supabase'], 'local');
  const supabaseUrl = env.SUPABASE_URL?.trim() || undefined;
  const supabaseServiceRoleKey = env.SUPABASE_SERVICE_ROLE_KEY?.trim() || undefined;
  if (storageDriver === 'supabase') {
    for (const [name, value] of [['SUPABASE_URL', supabaseUrl], ['SUPABASE_SERVICE_ROLE_KEY', supabaseServiceRoleKey]] as const) {
      if (!value) throw new SettingsError(`STORAGE_DRIVER=supabase needs ${name}`);
    }
  }
  const anthropicApiKey = env.ANTHROPIC_API_KEY?.trim() || undefined;
  // A key alone selects the model: whoever sets one means to use it.
  const visionProvider = oneOf(env, 'VISION_PROVIDER', ['offline', 'anthropic'], anthropicApiKey ? 'anthropic' : 'offline');
  if (visionProvider === 'anthropic' && !anthropicApiKey) throw new SettingsError('VISION_PROVIDER=anthropic needs ANTHROPIC_API_KEY');
  const visionModels = (env.VISION_MODELS?.trim() || DEFAULT_MODEL).split(',').map((m) => m.trim()).filter(Boolean);
  const visionProfileOverrides: ProfileOverrides = {};
  for (const [name, key] of [
    ['VISION_MAX_EDGE', 'maxEdge'],
    ['VISION_MAX_TOKENS', 'maxTokens'],
    ['VISION_PATCH', 'patch'],
  ] as const) {
    const v = optionalInt(env, name);
    if (v !== undefined) visionProfileOverrides[key] = v;
  }
  for (const [name, key] of [
    ['VISION_PRICE_INPUT', 'inputPerMTok'],
    ['VISION_PRICE_OUTPUT', 'outputPerMTok'],
  ] as const) {
    if (env[name]?.trim()) visionProfileOverrides[key] = nonNegativeNumber(env, name, 0);
  }
  let profile = OFFLINE_PROFILE;
  if (visionProvider === 'anthropic') {
    try {
      profile = combinedProfile(visionModels.map((m) => profileFor(m, visionProfileOverrides)));
    } catch (err) {
      if (err instanceof UnknownModelError || err instanceof RangeError) throw new SettingsError(`VISION_MODELS: ${err.message}`);
      throw err;
    }
  }
  return {
    redis: redisTargetFromEnv(env, prefix),
    redisFailoverTimeoutMs: positiveNumber(env, 'REDIS_FAILOVER_TIMEOUT_MS', DEFAULT_FAILOVER_TIMEOUT_MS),
    prefix,
    proceedQueue,
    retentionSeconds: Math.round(positiveNumber(env, 'RETENTION_HOURS', 24) * 3600),
    storageDriver,
    storageDir: resolve(env.STORAGE_DIR?.trim() || '.triage/storage'),
    storageReadLatencyMs: nonNegativeNumber(env, 'STORAGE_READ_LATENCY_MS', 0),
    supabaseUrl,
    supabaseServiceRoleKey,
    storageTransforms: oneOf(env, 'STORAGE_TRANSFORMS', ['on', 'off'], 'off') === 'on',
    bucket: env.STORAGE_BUCKET?.trim() || 'photos',
    visionProvider,
    anthropicApiKey,
    anthropicBaseUrl: env.ANTHROPIC_BASE_URL?.trim() || undefined,
    visionModels,
    visionProfileOverrides,
    profile,
    layouts: { coarse: layoutFromEnv(env, 'coarse'), fine: layoutFromEnv(env, 'fine') },
  };
}
