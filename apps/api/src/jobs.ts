/** Accepting a triage for a caller, and finding a caller's own triage: shared by the routes. */
import { checkObjectPath, InvalidPathError, type StorageDriver } from '@triage/storage';
import { TriageInputError } from '@triage/core';
import {
  ActiveCapError,
  countActiveJobs,
  prepareTriage,
  submitTriage,
  TriageExistsError,
  type PhotoInput,
  type PreparedTriage,
  type TriageJobData,
  type TriageMeta,
  type TriageStore,
} from '@triage/queue';
import type { Queue } from 'bullmq';
import { triageChargeKey } from '@triage/db';
import { chargeOr402, crashPoint, refundIfNotQueued, triageCost, type CreditLedger } from './credits.js';
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
  if ((await store.owner(triageId)) !== userId) throw jobNotFound();
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
      if (err instanceof InvalidPathError)
        throw new HttpError(400, `File "${photo.name || path}" cannot be stored under that name: ${err.message}`);
      throw err;
    }
  }
}

/**
 * A quick refusal before storage is asked about the files. It is only a first look: two starts may both pass
 * it, and the cap itself is enforced atomically where the triage is stored (`submitTriage`).
 */
export async function assertActiveCap(deps: JobDeps, userId: string): Promise<void> {
  const max = deps.settings.maxActiveJobsPerUser;
  const active = await countActiveJobs(deps.store, userId);
  if (active >= max) throw new HttpError(429, new ActiveCapError(active, max).message);
}

/**
 * Charges the triage's tier, then stores and queues it, then settles the charge. A retried request finds
 * the charge taken (0 deducted) or the job there (409). A process that dies between the charge and the
 * queue leaves a held charge, which the reconciler refunds since no job carries it.
 */
async function chargeThenQueue(
  deps: JobDeps,
  userId: string,
  jobId: string,
  required: number,
  prepared: PreparedTriage,
): Promise<number> {
  const key = triageChargeKey(jobId);
  // A job id whose triage was charged and queued before, and has since been deleted or has expired, is a
  // reuse, not a retry: its old charge must neither pay for a new run nor be refunded by one.
  if ((await deps.credits.stateOf(key)) === 'settled' && (await deps.store.meta(jobId)) === null) {
    throw new HttpError(409, `Triage job ${jobId} already exists`);
  }
  const deducted = await chargeOr402(deps.credits, userId, 'triage', jobId, [{ key, amount: required }]);
  crashPoint('after-charge');
  try {
    await withDeadline(
      submitTriage(deps.queue, deps.store, prepared, deps.settings.maxActiveJobsPerUser),
      5000,
      'adding the job',
    );
  } catch (err) {
    // Another request of the same job_id queued it: the charge is that job's, and stays.
    if (err instanceof TriageExistsError) throw new HttpError(409, `Triage job ${jobId} already exists`);
    await refundIfNotQueued(deps.credits, [key], async () => (await deps.store.meta(jobId)) !== null);
    if (err instanceof ActiveCapError) throw new HttpError(429, err.message);
    throw err;
  }
  crashPoint('after-enqueue');
  const refunded = await deps.credits.settle([key]).catch(() => []); // left held, the reconciler settles it
  if (refunded.length > 0) {
    // The reconciler refunded the charge meanwhile (this request took longer than the hold timeout): the job
    // must not run unpaid.
    await deps.store.requestCancel(jobId);
    await withDeadline(deps.queue.remove(jobId), 5000, 'removing the job').catch(() => 0);
    await deps.store.forget(jobId, userId);
    throw new HttpError(503, 'The triage could not be queued in time; nothing was charged. Please try again.');
  }
  return deducted;
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
      {
        triageId: input.jobId,
        userId,
        bucket: settings.bucket,
        photos: input.photos,
        target: input.target,
        criteria: input.criteria,
        passes: input.passes,
      },
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
    const found = await storage.statMany(
      settings.bucket,
      input.photos.map((p) => p.path),
    );
    const missing = input.photos.filter((_, i) => found[i] === null).map((p) => p.name || p.path);
    if (missing.length > 0) {
      const shown = missing.slice(0, 10).join(', ');
      throw new HttpError(
        400,
        `Files not found in storage: ${shown}${missing.length > 10 ? ` and ${missing.length - 10} more` : ''}`,
        { missing },
      );
    }
  }
  const required = triageCost(input.photos.length);
  const deducted = await chargeThenQueue(deps, userId, input.jobId, required, prepared);
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
