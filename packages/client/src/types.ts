/**
 * The HTTP contract of `/api/triage` (see docs: api-contract), as the webapp sees it.
 *
 * Fields the old Python service already sent are required; what the new service adds beside them is optional,
 * so that the same types describe a reply from either server.
 */

export type JobStatus = 'pending' | 'uploading' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type Phase = 'uploading' | 'grid_generation' | 'coarse_pass' | 'fine_pass' | 'complete';

/** A job in one of these states will not change again. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

// `string & {}` takes a status a newer server added while keeping the known ones in editors' suggestions.
export function isTerminal(status: JobStatus | (string & {})): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** Every error reply: `{"detail": "<human readable message>"}`. */
export interface ApiError {
  detail: string;
  [extra: string]: unknown;
}

export interface HealthResponse {
  status: 'ok';
  version: string;
  [extra: string]: unknown;
}

export interface ActiveJob {
  job_id: string;
  status: JobStatus;
  total_input: number;
  progress_percentage: number;
  /** `pending` until the job's first grid starts (never null). */
  phase: Phase | 'pending';
  created_at: string;
}

/** `GET /active`: the caller's pending or processing jobs, newest first. */
export interface ActiveJobs {
  jobs: ActiveJob[];
}

export interface StorageFile {
  /** The user's file name. */
  original_name: string;
  /** Object path in bucket `photos`: `triage/{user_id}/{job_id}/{uuid}.{ext}`. */
  storage_path: string;
  size: number;
  thumbnail_path?: string;
}

export interface StartFromStorageRequest {
  /** A UUID the browser made; the files are already uploaded under it. */
  job_id: string;
  files: StorageFile[];
  /** e.g. `"10%"` or `"25"`; default `"10%"`. */
  target?: string;
  /** Default `"standout"`. */
  criteria?: string;
  /** 1 or 2; default 2. */
  passes?: 1 | 2;
}

export interface StartResponse {
  job_id: string;
  status: JobStatus;
  photo_count: number;
  credits_deducted: number;
  /** The job's cost by the contract's tiers (new service). */
  credits_required?: number;
  estimated_grids: number;
  target?: string;
  criteria?: string;
  passes?: number;
  /** Parts a multipart upload skipped, and why. */
  skipped?: { name: string; reason: string }[];
}

export interface Progress {
  phase: Phase;
  current_step: number;
  total_steps: number;
  /** current_step / total_steps × 100 within the phase. */
  percentage: number;
  message: string;
}

export interface TriageStatus {
  job_id: string;
  status: JobStatus;
  /** Set while processing, else null. */
  progress: Progress | null;
  total_input: number;
  /** 0 until the coarse pass has ended. */
  pass1_survivors: number;
  /** 0 until the triage has completed. */
  final_selected: number;
  error_message: string | null;
  created_at: string;
  completed_at: string | null;
  // Extras from the new service.
  target?: string;
  criteria?: string;
  passes?: number;
  photos_failed?: number;
  grids_done?: number;
  grids_total?: number;
  tokens?: { input: number; output: number };
  cost_usd?: number;
  /** The hand-off to scoring after proceed; null until it has handled a photo. */
  handoff?: { handed_off: number; failed: number; last_error: string | null } | null;
}

export interface SelectedPhoto {
  id: string;
  original_filename: string;
  storage_path: string;
  /** Signed URL, valid 1 h: a thumbnail-sized image where the storage can make one, else the original; null when the original has left storage. */
  thumbnail_url: string | null;
  /** Signed URL of the original, valid 1 h (new service); null when it has left storage. */
  url?: string | null;
  /** Why there are no URLs (new service). */
  reason?: string;
  /** 1 = best (new service). */
  rank?: number;
}

export type PhotoFateKind = 'selected' | 'not_selected' | 'failed' | 'not_reviewed';

/** One input photo and what became of it (`results?include=all`). */
export interface PhotoFate {
  id: string;
  original_filename: string;
  storage_path: string;
  fate: PhotoFateKind;
  reason: string;
  rank: number | null;
  coarse_votes?: number | null;
  fine_votes?: number | null;
  quality?: number | null;
  /** Its near-duplicate group: the id of the group's first photo, how many photos show that scene, and whether this one was kept. */
  group?: { id: string; size: number; picked: boolean } | null;
  /** What was measured of it; null when it could not be read. */
  signals?: PhotoSignals | null;
  /** A severe technical flaw: blurred, noisy, blown highlights, too dark, too bright, badly exposed. */
  flaw?: string | null;
}

export interface PhotoSignals {
  /** 0..1 at thumbnail scale, 1 = crisp. */
  sharpness: number;
  /** Noise σ in 8-bit levels, at full resolution where measured. */
  noise: number | null;
  /** 0..1, 1 = well exposed. */
  exposure: number;
  /** Share of the frame clipped to white. */
  clipped_highlights: number | null;
  /** Share of the frame crushed to black. */
  crushed_shadows: number | null;
}

export interface Results {
  job_id: string;
  status: JobStatus;
  /** Best first. */
  selected_photos: SelectedPhoto[];
  total_input: number;
  /** 0 until the coarse pass has ended. */
  pass1_survivors: number;
  /** 0 until the triage has completed. */
  final_selected: number;
  target: string;
  criteria: string;
  error_message?: string | null;
  photos_failed?: number;
  /** Every photo, with `include: 'all'`. */
  photos?: PhotoFate[];
}

export interface ProceedResponse {
  queued_count: number;
  credits_deducted: number;
  credits_required?: number;
}

export interface MessageResponse {
  message: string;
}
