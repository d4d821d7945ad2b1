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
  readSettings,
  setting,
  SettingsError,
  UnknownModelError,
  type Env,
  type SettingsOf,
  type Pass,
  type ProfileOverrides,
  type PassLayout,
  type VisionProfile,
} from '@triage/core';
import { DEFAULT_PREFIX } from './contract.js';
import { DEFAULT_HANDOFF_QUEUE } from './submit.js';
import { redisTargetFromEnv } from './redis-settings.js';

export { SettingsError } from './redis-settings.js';
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

/** Grid sizes of one pass: GRID_COARSE_ROWS, GRID_FINE_MIN_THUMB and so on (rows and columns follow the profile when unset). */
function gridSettings(pass: Pass) {
  const p = `GRID_${pass.toUpperCase()}`;
  return {
    minThumb: setting.whole(`${p}_MIN_THUMB`, DEFAULT_LAYOUTS[pass].minThumb, { min: 1 }),
    rows: setting.whole(`${p}_ROWS`, undefined, { min: 1 }),
    cols: setting.whole(`${p}_COLS`, undefined, { min: 1 }),
  };
}

/** Every setting the API, the worker and the CLI share; the apps' schemas add their own. */
export const SHARED_SETTINGS = {
  prefix: setting.text('TRIAGE_PREFIX', DEFAULT_PREFIX, {
    pattern: /^[A-Za-z0-9{}_.-]+$/,
    message: (v) => `TRIAGE_PREFIX may hold letters, digits, {}, _, . and - only, got "${v}"`,
  }),
  proceedQueue: setting.text('PROCEED_QUEUE', DEFAULT_HANDOFF_QUEUE, {
    pattern: /^[A-Za-z0-9_.-]+$/,
    message: (v) => `PROCEED_QUEUE may hold letters, digits, _, . and - only, got "${v}"`,
  }),
  storageDriver: setting.oneOf('STORAGE_DRIVER', ['local', 'supabase'], 'local'),
  supabaseUrl: setting.url(
    'SUPABASE_URL',
    undefined,
    ['http:', 'https:'],
    (v) => `SUPABASE_URL must be an http(s) URL, got "${v}"`,
  ),
  supabaseServiceRoleKey: setting.text('SUPABASE_SERVICE_ROLE_KEY', undefined),
  anthropicApiKey: setting.text('ANTHROPIC_API_KEY', undefined),
  /** Unset: anthropic when ANTHROPIC_API_KEY is set (whoever sets a key means to use it), else offline. */
  visionProvider: setting.oneOf('VISION_PROVIDER', ['offline', 'anthropic'], undefined),
  visionModels: setting.list('VISION_MODELS', [DEFAULT_MODEL]),
  maxEdge: setting.whole('VISION_MAX_EDGE', undefined, { min: 1 }),
  maxTokens: setting.whole('VISION_MAX_TOKENS', undefined, { min: 1 }),
  patch: setting.whole('VISION_PATCH', undefined, { min: 1 }),
  inputPerMTok: setting.decimal('VISION_PRICE_INPUT', undefined, { zero: true }),
  outputPerMTok: setting.decimal('VISION_PRICE_OUTPUT', undefined, { zero: true }),
  redisFailoverTimeoutMs: setting.decimal('REDIS_FAILOVER_TIMEOUT_MS', DEFAULT_FAILOVER_TIMEOUT_MS),
  retentionHours: setting.decimal('RETENTION_HOURS', 24),
  storageDir: setting.text('STORAGE_DIR', '.triage/storage'),
  storageReadLatencyMs: setting.decimal('STORAGE_READ_LATENCY_MS', 0, { zero: true }),
  storageTransforms: setting.oneOf('STORAGE_TRANSFORMS', ['on', 'off'], 'off'),
  bucket: setting.text('STORAGE_BUCKET', 'photos'),
  anthropicBaseUrl: setting.url(
    'ANTHROPIC_BASE_URL',
    undefined,
    ['http:', 'https:'],
    (v) => `ANTHROPIC_BASE_URL must be an http(s) URL, got "${v}"`,
  ),
};

/** Grid sizes per pass (GRID_COARSE_*, GRID_FINE_*). */
export const GRID_SETTINGS = { coarse: gridSettings('coarse'), fine: gridSettings('fine') };

/** LOG_LEVEL, of the API and the worker. */
export const LOG_LEVEL = setting.text('LOG_LEVEL', 'info');

type Shared = SettingsOf<typeof SHARED_SETTINGS>;

function layout(grid: ReturnType<typeof gridSettings>, env: Env): PassLayout {
  const { minThumb, rows, cols } = readSettings(grid, env);
  return { minThumb, ...(rows !== undefined && { rows }), ...(cols !== undefined && { cols }) };
}

/** The profile the provider sees: the smallest of the voting models', with the operator's corrections. */
function visionProfile(
  s: Shared,
  provider: SharedSettings['visionProvider'],
): { overrides: ProfileOverrides; profile: VisionProfile } {
  const overrides: ProfileOverrides = {};
  for (const key of ['maxEdge', 'maxTokens', 'patch', 'inputPerMTok', 'outputPerMTok'] as const) {
    if (s[key] !== undefined) overrides[key] = s[key];
  }
  if (provider !== 'anthropic') return { overrides, profile: OFFLINE_PROFILE };
  try {
    return { overrides, profile: combinedProfile(s.visionModels.map((m) => profileFor(m, overrides))) };
  } catch (err) {
    if (err instanceof UnknownModelError || err instanceof RangeError)
      throw new SettingsError(`VISION_MODELS: ${err.message}`);
    throw err;
  }
}

/** The shared settings, checked together (Supabase needs its key, a provider its credentials, a Cluster a hash tag). */
export function readSharedSettings(env: Env = process.env): SharedSettings {
  const all = readSettings(SHARED_SETTINGS, env);
  // The profile fields are read by visionProfile from `all`; they are left out of the result.
  const {
    retentionHours,
    maxEdge: _maxEdge,
    maxTokens: _maxTokens,
    patch: _patch,
    inputPerMTok: _inputPerMTok,
    outputPerMTok: _outputPerMTok,
    ...s
  } = all;
  if (s.storageDriver === 'supabase') {
    for (const needed of [SHARED_SETTINGS.supabaseUrl, SHARED_SETTINGS.supabaseServiceRoleKey]) {
      if (!needed.given(env)) throw new SettingsError(`STORAGE_DRIVER=supabase needs ${needed.name}`);
    }
  }
  const visionProvider = s.visionProvider ?? (s.anthropicApiKey ? 'anthropic' : 'offline');
  if (visionProvider === 'anthropic' && !s.anthropicApiKey)
    throw new SettingsError('VISION_PROVIDER=anthropic needs ANTHROPIC_API_KEY');
  const { overrides, profile } = visionProfile(all, visionProvider);
  return {
    ...s,
    redis: redisTargetFromEnv(env, s.prefix),
    retentionSeconds: Math.round(retentionHours * 3600),
    storageDir: resolve(s.storageDir),
    storageTransforms: s.storageTransforms === 'on',
    visionProvider,
    visionProfileOverrides: overrides,
    profile,
    layouts: { coarse: layout(GRID_SETTINGS.coarse, env), fine: layout(GRID_SETTINGS.fine, env) },
  };
}
