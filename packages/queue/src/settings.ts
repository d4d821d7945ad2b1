/**
 * Settings the API, the CLI and the worker share, read once from the environment and validated. Every
 * variable is listed with its default in `.env.example` and the README.
 */
import { resolve } from 'node:path';
import { DEFAULT_LAYOUTS, OFFLINE_PROFILE, type Pass, type PassLayout, type VisionProfile } from '@triage/core';
import { DEFAULT_PREFIX } from './contract.js';

export interface SharedSettings {
  redisUrl: string;
  prefix: string;
  retentionSeconds: number;
  storageDriver: 'local';
  storageDir: string;
  /** Extra latency per storage read, ms (imitates a remote store in benchmarks and tests). */
  storageReadLatencyMs: number;
  bucket: string;
  visionProvider: 'offline';
  profile: VisionProfile;
  layouts: Record<Pass, PassLayout>;
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

type Env = Record<string, string | undefined>;

function positiveNumber(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n > 0)) throw new SettingsError(`${name} must be a positive number, got "${raw}"`);
  return n;
}

function optionalInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n > 0)) throw new SettingsError(`${name} must be a positive integer, got "${raw}"`);
  return n;
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
  const storageDriver = env.STORAGE_DRIVER?.trim() || 'local';
  if (storageDriver !== 'local') throw new SettingsError(`STORAGE_DRIVER "${storageDriver}" is not available; use "local"`);
  const visionProvider = env.VISION_PROVIDER?.trim() || 'offline';
  if (visionProvider !== 'offline') throw new SettingsError(`VISION_PROVIDER "${visionProvider}" is not available; use "offline"`);
  return {
    redisUrl: env.REDIS_URL?.trim() || 'redis://127.0.0.1:6379',
    prefix,
    retentionSeconds: Math.round(positiveNumber(env, 'RETENTION_HOURS', 24) * 3600),
    storageDriver,
    storageDir: resolve(env.STORAGE_DIR?.trim() || '.triage/storage'),
    storageReadLatencyMs: env.STORAGE_READ_LATENCY_MS ? positiveNumber(env, 'STORAGE_READ_LATENCY_MS', 0) : 0,
    bucket: env.STORAGE_BUCKET?.trim() || 'photos',
    visionProvider,
    profile: OFFLINE_PROFILE,
    layouts: { coarse: layoutFromEnv(env, 'coarse'), fine: layoutFromEnv(env, 'fine') },
  };
}
