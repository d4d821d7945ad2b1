/** The worker's settings: the shared ones plus its own, read once from the environment and validated. */
import { readSettings, setting, type Env, type SettingsOf } from '@triage/core';
import { LOG_LEVEL, readSharedSettings, WORKER_NICE, type SharedSettings } from '@triage/queue';

/** The worker's own settings; their defaults are the worker's defaults wherever it is started from code too. */
export const WORKER_SETTINGS = {
  lockDurationMs: setting.ms('WORKER_LOCK_MS', 30_000),
  stalledIntervalMs: setting.ms('WORKER_STALLED_INTERVAL_MS', 30_000),
  shutdownDeadlineMs: setting.ms('SHUTDOWN_DEADLINE_MS', 10_000),
  /** How often finished triages past their retention are removed (storage, then records). */
  sweepEveryMs: setting.ms('RETENTION_SWEEP_MS', 15 * 60_000),
  /** How much lower than normal the worker's CPU priority is (0–19): the API answers people first. */
  nice: setting.whole('WORKER_NICE', WORKER_NICE, { min: 0, max: 19 }),
  /** How long a storage outage is waited out before the photos it hits fail, ms. */
  storageOutageLimitMs: setting.ms('STORAGE_OUTAGE_LIMIT_MS', 30 * 60_000),
  logLevel: LOG_LEVEL,
  /** Photos of one near-duplicate group (the same scene) the final cut keeps at most. */
  keepPerScene: setting.whole('KEEP_PER_SCENE', 1, { min: 1 }),
  /** Grid steps one process takes at once (model calls overlapped; images still built one grid at a time). */
  concurrency: setting.whole('WORKER_CONCURRENCY', 4, { min: 1, max: 32 }),
};

export type WorkerSettings = SharedSettings & SettingsOf<typeof WORKER_SETTINGS>;

export function readWorkerSettings(env: Env = process.env): WorkerSettings {
  return { ...readSharedSettings(env), ...readSettings(WORKER_SETTINGS, env) };
}
