/** The worker's settings, read once from the environment and validated. */
import { readSharedSettings, SettingsError, WORKER_NICE, type SharedSettings } from '@triage/queue';

export interface WorkerSettings extends SharedSettings {
  lockDurationMs: number;
  stalledIntervalMs: number;
  shutdownDeadlineMs: number;
  /** How often finished triages past their retention are removed (storage, then records). */
  sweepEveryMs: number;
  /** How much lower than normal the worker's CPU priority is (0–19): the API answers people first. */
  nice: number;
  /** How long a storage outage is waited out before the photos it hits fail, ms. */
  storageOutageLimitMs: number;
  logLevel: string;
  /** Photos of one near-duplicate group (the same scene) the final cut keeps at most. */
  keepPerScene: number;
  /** Grid steps one process takes at once (model calls overlapped; images still built one grid at a time). */
  concurrency: number;
}

function ms(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= 100)) throw new SettingsError(`${name} must be a whole number of milliseconds ≥ 100, got "${raw}"`);
  return n;
}

function niceness(env: Record<string, string | undefined>): number {
  const raw = env.WORKER_NICE;
  if (raw === undefined || raw.trim() === '') return WORKER_NICE;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= 0 && n <= 19)) throw new SettingsError(`WORKER_NICE must be a whole number from 0 to 19, got "${raw}"`);
  return n;
}

function perScene(env: Record<string, string | undefined>): number {
  const raw = env.KEEP_PER_SCENE;
  if (raw === undefined || raw.trim() === '') return 1;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= 1)) throw new SettingsError(`KEEP_PER_SCENE must be a whole number ≥ 1, got "${raw}"`);
  return n;
}

function concurrency(env: Record<string, string | undefined>): number {
  const raw = env.WORKER_CONCURRENCY;
  if (raw === undefined || raw.trim() === '') return 4;
  const n = Number(raw);
  if (!(Number.isInteger(n) && n >= 1 && n <= 32)) throw new SettingsError(`WORKER_CONCURRENCY must be a whole number from 1 to 32, got "${raw}"`);
  return n;
}

export function readWorkerSettings(env: Record<string, string | undefined> = process.env): WorkerSettings {
  return {
    ...readSharedSettings(env),
    lockDurationMs: ms(env, 'WORKER_LOCK_MS', 30_000),
    stalledIntervalMs: ms(env, 'WORKER_STALLED_INTERVAL_MS', 30_000),
    shutdownDeadlineMs: ms(env, 'SHUTDOWN_DEADLINE_MS', 10_000),
    sweepEveryMs: ms(env, 'RETENTION_SWEEP_MS', 15 * 60_000),
    nice: niceness(env),
    storageOutageLimitMs: ms(env, 'STORAGE_OUTAGE_LIMIT_MS', 30 * 60_000),
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    keepPerScene: perScene(env),
    concurrency: concurrency(env),
  };
}
