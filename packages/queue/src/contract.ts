/**
 * The contract the API, the CLI and the worker share: queue name, job payload, Redis keys, and the shapes
 * of a triage's state, progress and result as they are stored in Redis.
 */
import type { GridPlan, JobStatus, Pass, Phase, Progress } from '@triage/core';

export const TRIAGE_QUEUE = 'triage';
export const TRIAGE_JOB = 'triage';
export const DEFAULT_PREFIX = 'triage';
export const DEFAULT_BUCKET = 'photos';

/** The BullMQ payload. Only the id: photos, settings and state live in Redis under our own keys. */
export interface TriageJobData {
  triageId: string;
  /** Set on a grid job (a child of the triage job, named GRID_JOB): the grid it builds and judges. */
  pass?: Pass;
  grid?: number;
}

/**
 * A triage runs as a BullMQ flow: its job (TRIAGE_JOB) adds one child job per grid of a pass, waits for
 * them, and ends the pass; any worker may take any grid.
 */
export const GRID_JOB = 'grid';

/** A grid job's id: the same grid always makes the same id, so a pass added twice adds each grid once. */
export function gridJobId(triageId: string, pass: Pass, grid: number): string {
  return `${triageId}.${pass}.${grid}`;
}

/** One photo as accepted: where it is stored, and the name the user knows it by. */
export interface PhotoInput {
  /** The user's file name. */
  name: string;
  /** Object path inside the bucket. */
  path: string;
  size?: number;
  /** A smaller copy the client uploaded beside the original, used when it is big enough for a pass. */
  thumbnailPath?: string;
}

/** What a caller asks for; validated by `prepareTriage` before anything is stored. */
export interface TriageRequest {
  triageId: string;
  userId: string;
  bucket: string;
  photos: PhotoInput[];
  target: string;
  criteria: string;
  passes: 1 | 2;
  plan: GridPlan;
  /** Keep a copy of every grid sent to the provider, beside the photos. */
  saveGrids?: boolean;
}

/** The Redis keys of one triage. Every key carries the prefix; see the README for Redis Cluster hash tags. */
export function triageKeys(prefix: string, triageId: string) {
  const base = `${prefix}:t:${triageId}`;
  return {
    /** Hash: settings, status, phase and counters. */
    meta: base,
    /** Hash: photo index → PhotoInput JSON. */
    photos: `${base}:photos`,
    /** Hash: `coarse:N` / `fine:N` → GridRecord JSON. Written once per grid, atomically with the counters. */
    grids: `${base}:grids`,
    /** Hash: photo index → CoarseVerdict JSON. */
    coarse: `${base}:coarse`,
    /** Hash: photo index → FineVerdict JSON. */
    fine: `${base}:fine`,
    /** List: indexes of the photos that survived the coarse pass, in the order the fine grids take them (a group together). */
    survivors: `${base}:survivors`,
    /** Hash: `coarse:N` / `fine:N` → how many times the grid was sent to the provider. */
    attempts: `${base}:attempts`,
    /** Hash: photo index → final rank (1 = best), for readable photos. */
    ranks: `${base}:ranks`,
    /** List: selected photo indexes, best first. */
    selected: `${base}:selected`,
    /** Hash: photo id → outcome of its hand-off to scoring (`ok`, or why it could not be handed off). */
    handoff: `${base}:handoff`,
    /**
     * String: JSON array, each photo's near-duplicate group (the index of the group's first photo; null when
     * unreadable). Written once, when the coarse pass ends (or by the final cut of a one-pass job).
     */
    groups: `${base}:groups`,
  };
}

export function allKeys(prefix: string, triageId: string): string[] {
  return Object.values(triageKeys(prefix, triageId));
}

/** Sorted set of a user's triage ids, by creation time. */
export function userJobsKey(prefix: string, userId: string): string {
  return `${prefix}:user:${userId}:jobs`;
}

/** Sorted set of finished triages (completed, failed or cancelled), by when they ended (ms). */
export function finishedKey(prefix: string): string {
  return `${prefix}:finished`;
}

/** Hash of worker processes (`host:pid`) → WorkerHeartbeat JSON, refreshed every few seconds by each worker. */
export function workersKey(prefix: string): string {
  return `${prefix}:workers`;
}

/** What a worker process says of itself, for the metrics: memory as the operating system counts it. */
export interface WorkerHeartbeat {
  rssBytes: number;
  /** Highest RSS since the process started. */
  peakRssBytes: number;
  startedAt: number;
  at: number;
}

/** The queue of the worker's maintenance jobs (the retention sweep). */
export const MAINTENANCE_QUEUE = 'triage-maintenance';

/** Pub/sub channel carrying a triage's progress whenever it changes. */
export function eventsChannel(prefix: string, triageId: string): string {
  return `${prefix}:events:${triageId}`;
}

/** Pub/sub channel carrying cancel requests (the triage id) to every worker process. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

export interface PhotoFailure {
  index: number;
  reason: string;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** What one grid produced. Stored once; a resumed job never sends a recorded grid again. */
export interface GridRecord {
  pass: Pass;
  grid: number;
  /** Photo indexes, in cell order (cell i shows photos[i], label labels[i]). */
  photos: number[];
  labels: string[];
  /** Picked photo indexes, with the number of models that picked each. */
  votes: Record<string, number>;
  /** False when every model call failed: the grid's photos survive the pass, not reviewed. */
  reviewed: boolean;
  error?: string;
  failures: PhotoFailure[];
  usage: Usage;
  asked: number;
  models: string[];
  durationMs: number;
  /** When the grid was recorded (ms since the epoch). */
  finishedAt: number;
  /** The worker process that made it: `host:pid`. */
  worker: string;
  /** Bytes fetched from storage for this grid's photos. */
  bytesRead: number;
  /** How many photos came from each source: embedded, thumbnail, transform, dc-scans, original. */
  sources: Record<string, number>;
  /**
   * Per photo (aligned with `photos`), ms spent making its thumbnail once its bytes were in: where a slow grid's
   * time went. The rest of durationMs is waiting for storage, composing, the provider and Redis.
   */
  readMs: number[];
}

/** A readable photo's signals as recorded (see @triage/images QualitySignals). */
export interface RecordedSignals {
  sharpness?: number;
  exposure?: number;
  /** Noise σ, 8-bit levels, at the thumbnail's scale. */
  noise?: number;
  brightness?: number;
  clippedBright?: number;
  clippedDark?: number;
}

export interface CoarseVerdict extends RecordedSignals {
  votes: number;
  reviewed: boolean;
  quality: number | null;
  hash?: string;
  /** Colour layout and luma signature: what near-duplicate groups are computed from. */
  layout?: string;
  signature?: string;
  /** When the photo was taken, from its EXIF DateTimeOriginal (JpegHeader.captured), where it has one. */
  captured?: number;
  failure?: string;
}

export interface FineVerdict extends RecordedSignals {
  votes: number;
  reviewed: boolean;
  quality: number | null;
  /** Focus and noise at full resolution, where the original was decoded. */
  detail?: { sharpness: number; noise: number };
  failure?: string;
}

/** The status a client sees, built from the meta hash in O(1). */
export interface TriageStatus {
  job_id: string;
  status: JobStatus;
  progress: Progress | null;
  total_input: number;
  /** 0 until the coarse pass has ended. */
  pass1_survivors: number;
  /** 0 until the triage has completed. */
  final_selected: number;
  error_message: string | null;
  created_at: string;
  completed_at: string | null;
  target: string;
  criteria: string;
  passes: 1 | 2;
  photos_failed: number;
  grids_done: number;
  grids_total: number;
  tokens: { input: number; output: number };
  cost_usd: number;
  /** The hand-off of picks to scoring (`proceed`): null until a hand-off has handled a photo. */
  handoff: HandOffStatus | null;
}

export interface HandOffStatus {
  /** Photos whose copy and scoring rows are in place. */
  handed_off: number;
  /** Photos that could not be handed off (their credit was refunded). */
  failed: number;
  /** Why the last of them failed. */
  last_error: string | null;
}

export interface SelectedPhoto {
  index: number;
  rank: number;
  name: string;
  path: string;
}

export interface PhotoFate {
  index: number;
  name: string;
  path: string;
  selected: boolean;
  rank: number | null;
  coarse: CoarseVerdict | null;
  fine: FineVerdict | null;
  /** Its near-duplicate group: the group's first photo (id), how many photos it holds, whether this one is the group's pick. Null when alone or unreadable. */
  group: { id: number; size: number; picked: boolean } | null;
  /** What was measured of it (the fine pass's where it reached it), null when unreadable. */
  signals: FateSignals | null;
  /** A severe technical flaw, in words ("blurred", "noisy", "blown highlights", "too dark", "too bright", "badly exposed"). */
  flaw: string | null;
  /** Why it was left out, or why it could not be read. */
  reason: string;
}

export interface FateSignals {
  /** 0..1 at thumbnail scale (1 = crisp). */
  sharpness: number;
  /** Noise σ in 8-bit levels, at full resolution where measured, else at thumbnail scale. */
  noise: number | null;
  /** 0..1, 1 = well exposed. */
  exposure: number;
  /** Shares of the frame clipped to white and crushed to black. */
  clipped_highlights: number | null;
  crushed_shadows: number | null;
}

export interface TriageResult {
  status: TriageStatus;
  selected: SelectedPhoto[];
  /** The last pass picked nothing, so the selection is the top of the ranking. */
  fallback: boolean;
}

export type { Phase, JobStatus };
