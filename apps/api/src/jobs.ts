/** Accepting a triage for a caller, and finding a caller's own triage: shared by the routes. */
import { checkObjectPath, InvalidPathError, type StorageDriver } from '@triage/storage';
import { TriageInputError } from '@triage/core';
import {
  countActiveJobs,
  prepareTriage,
  submitTriage,
  triageOwner,
  TriageExistsError,
  type PhotoInput,
  type TriageJobData,
  type TriageMeta,
  type TriageStore,
} from '@triage/queue';
import type { Queue } from 'bullmq';
import { triageCost, type CreditLedger } from './credits.js';
import { HttpError, jobNotFound, withDeadline } from './errors.js';
import type { ApiSettings } from './settings.js';

export interface JobDeps {
  settings: ApiSettings;
  store: TriageStore;
  queue: Queue<TriageJobData>;
  storage: StorageDriver;
  credits: CreditLedger;
}

export const INVALID_PATH = 'Invalid storage path - must be in user/job folder';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkJobId(jobId: string): void {
  if (!UUID.test(jobId)) throw new HttpError(400, 'job_id must be a UUID');
}

/** The caller's triage: 404 for an unknown id and for another user's job alike (nothing is revealed). */
export async function ownedMeta(store: TriageStore, triageId: string, userId: string): Promise<TriageMeta> {
  const meta = await store.meta(triageId);
  if (!meta || meta.userId !== userId) throw jobNotFound();
  return meta;
}

/** O(1): one HGET for the owner. */
export async function assertOwner(store: TriageStore, triageId: string, userId: string): Promise<void> {
  if ((await triageOwner(store, triageId)) !== userId) throw jobNotFound();
}

/** A path inside `triage/{user}/{job}/`, with no `..`, encoded separators or other escapes. */
export function checkStoragePath(path: string, userId: string, jobId: string): void {
  const folder = `triage/${userId}/${jobId}/`;
  try {
    checkObjectPath(path);
  } catch {
    throw new HttpError(403, INVALID_PATH);
  }
  if (!path.startsWith(folder) || path.length === folder.length) throw new HttpError(403, INVALID_PATH);
}

/** A name the storage cannot hold is refused with the reason, so that what is checked is what is read. */
function checkStorableKey(storage: StorageDriver, photo: PhotoInput): void {
  for (const path of [photo.path, ...(photo.thumbnailPath !== undefined ? [photo.thumbnailPath] : [])]) {
    try {
      storage.checkKey?.(path);
    } catch (err) {
      if (err instanceof InvalidPathError) throw new HttpError(400, `File "${photo.name || path}" cannot be stored under that name: ${err.message}`);
      throw err;
    }
  }
}

export async function assertActiveCap(deps: JobDeps, userId: string): Promise<void> {
  const max = deps.settings.maxActiveJobsPerUser;
  const active = await countActiveJobs(deps.store, userId);
  if (active >= max) {
    throw new HttpError(
      429,
      `Too many active triage jobs: you have ${active} pending or processing (the limit is ${max}). Wait for one to finish or cancel it.`,
    );
  }
}

export interface AcceptInput {
  jobId: string;
  photos: PhotoInput[];
  target?: string | undefined;
  criteria?: string | undefined;
  passes?: unknown;
  /** Skip the existence check: the files were just written by this process. */
  stored?: boolean;
}

export interface Accepted {
  job_id: string;
  status: 'processing';
  photo_count: number;
  credits_deducted: number;
  credits_required: number;
  estimated_grids: number;
  target: string;
  criteria: string;
  passes: number;
}

/** Validates everything, then stores the triage and adds its job. Nothing is stored when anything is wrong. */
export async function acceptTriage(deps: JobDeps, userId: string, input: AcceptInput): Promise<Accepted> {
  const { settings, store, storage } = deps;
  checkJobId(input.jobId);
  let prepared;
  try {
    prepared = prepareTriage(
      { triageId: input.jobId, userId, bucket: settings.bucket, photos: input.photos, target: input.target, criteria: input.criteria, passes: input.passes },
      settings.profile,
      settings.layouts,
    );
  } catch (err) {
    if (err instanceof TriageInputError) throw new HttpError(400, err.message);
    throw err;
  }
  for (const photo of input.photos) {
    checkStoragePath(photo.path, userId, input.jobId);
    if (photo.thumbnailPath !== undefined) checkStoragePath(photo.thumbnailPath, userId, input.jobId);
    checkStorableKey(storage, photo);
  }
  if (await store.meta(input.jobId)) throw new HttpError(409, `Triage job ${input.jobId} already exists`);
  await assertActiveCap(deps, userId);
  if (!input.stored) {
    // Originals must exist; a missing client thumbnail is no loss (the original is used), so it is not checked.
    const found = await storage.statMany(settings.bucket, input.photos.map((p) => p.path));
    const missing = input.photos.filter((_, i) => found[i] === null).map((p) => p.name || p.path);
    if (missing.length > 0) {
      const shown = missing.slice(0, 10).join(', ');
      throw new HttpError(400, `Files not found in storage: ${shown}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`, { missing });
    }
  }
  const required = triageCost(input.photos.length);
  const deducted = await deps.credits.charge(userId, required, `triage ${input.jobId}`);
  try {
    await withDeadline(submitTriage(deps.queue, store, prepared), 5000, 'adding the job');
  } catch (err) {
    await deps.credits.refund(userId, deducted, `triage ${input.jobId} not accepted`);
    if (err instanceof TriageExistsError) throw new HttpError(409, `Triage job ${input.jobId} already exists`);
    throw err;
  }
  return {
    job_id: input.jobId,
    status: 'processing',
    photo_count: input.photos.length,
    credits_deducted: deducted,
    credits_required: required,
    estimated_grids: prepared.estimatedGrids,
    target: prepared.request.target,
    criteria: prepared.request.criteria,
    passes: prepared.request.passes,
  };
}
