/**
 * The scoring hand-off (`proceed`), consumed from PROCEED_QUEUE when the worker has a database. For each
 * photo: a copy of the original made by the storage itself, outside the triage's folder (so retention and
 * DELETE, which remove only the triage's own objects, never touch it); the copy's SHA-256, streamed; then the
 * `scored_photos` row, its `scoring_queue` entry and the settlement of the photo's credit in one transaction.
 * Every step is idempotent, so a redelivered hand-off adds nothing. A photo that cannot be handed off (its
 * original is gone, storage refuses) is refunded and reported on the triage's status; a transient failure
 * (storage or the database away) fails the job, which BullMQ tries again with backoff, and the photos still
 * not handed off after the last attempt are refunded.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { proceedChargeKey, recordScoredPhoto, type CreditLedger, type Pool } from '@triage/db';
import type { HandOffJobData, TriageStore } from '@triage/queue';
import { InvalidPathError, ObjectNotFoundError, StorageRequestError, type StorageDriver } from '@triage/storage';

export interface HandOffDeps {
  store: TriageStore;
  storage: StorageDriver;
  pool: Pool;
  credits: CreditLedger;
  log: Logger;
}

type Photo = HandOffJobData['photos'][number];

/** Where a handed-off photo's copy lives: the user's own area of the bucket, named after its triage and photo. */
export function scoredPath(userId: string, triageId: string, photo: Pick<Photo, 'id' | 'path'>): string {
  return `${userId}/scored/${triageId}/${photo.id}-${basename(photo.path)}`;
}

/** A failure no retry will mend: the photo is refunded at once. */
function permanentReason(err: unknown): string | null {
  if (err instanceof ObjectNotFoundError) return 'the original is no longer in storage';
  if (err instanceof InvalidPathError) return err.message;
  if (err instanceof StorageRequestError && !err.details.retryable) return err.reason;
  return null;
}

async function sha256(storage: StorageDriver, bucket: string, path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(await storage.readStream(bucket, path), hash);
  return hash.digest('hex');
}

async function refundPhoto(deps: HandOffDeps, data: HandOffJobData, photo: Photo, reason: string): Promise<void> {
  const refunded = await deps.credits.refund(
    [proceedChargeKey(data.triageId, photo.id)],
    `hand-off failed: ${reason}`,
    true,
  );
  await deps.store.recordHandOff(data.triageId, photo.id, `${photo.name}: ${reason}`);
  deps.log.warn(
    { triageId: data.triageId, photo: photo.id, reason, refunded },
    'hand-off: photo could not be handed off; refunded',
  );
}

export async function handOffPhoto(deps: HandOffDeps, data: HandOffJobData, photo: Photo): Promise<'ok' | 'refunded'> {
  const { storage, store } = deps;
  const target = scoredPath(data.userId, data.triageId, photo);
  let hash: string;
  try {
    await storage.copy(data.bucket, photo.path, target);
    hash = await sha256(storage, data.bucket, target);
  } catch (err) {
    const reason = permanentReason(err);
    if (reason === null) throw err;
    await refundPhoto(deps, data, photo, reason);
    return 'refunded';
  }
  await recordScoredPhoto(deps.pool, {
    userId: data.userId,
    storagePath: target,
    originalFilename: photo.name,
    imageHash: hash,
    chargeKey: proceedChargeKey(data.triageId, photo.id),
  });
  await store.recordHandOff(data.triageId, photo.id);
  return 'ok';
}

export async function processHandOff(
  deps: HandOffDeps,
  job: Job<HandOffJobData>,
): Promise<{ handedOff: number; refunded: number }> {
  const counts = { handedOff: 0, refunded: 0 };
  for (const photo of job.data.photos) {
    if ((await handOffPhoto(deps, job.data, photo)) === 'ok') counts.handedOff++;
    else counts.refunded++;
  }
  deps.log.info({ triageId: job.data.triageId, ...counts }, 'hand-off done');
  return counts;
}

export function createHandOffWorker(
  deps: HandOffDeps & { queue: string; connection: ConnectionOptions; prefix: string; autorun?: boolean },
): Worker<HandOffJobData> {
  const worker = new Worker<HandOffJobData>(deps.queue, (job) => processHandOff(deps, job), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: 1,
    autorun: deps.autorun ?? true,
    name: 'handoff-worker',
  });
  worker.on('failed', (job, err) => {
    if (!job || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    // The last attempt: the photos not handed off by now are refunded (a handed-off one is settled and keeps its charge).
    const reason = `not handed off after ${job.attemptsMade} attempts: ${err.message}`;
    void Promise.all(job.data.photos.map((p) => refundPhoto(deps, job.data, p, reason))).catch((e: unknown) =>
      deps.log.error({ err: e, triageId: job.data.triageId }, 'hand-off: could not refund'),
    );
  });
  worker.on('error', (err) => deps.log.error({ err }, 'hand-off worker error'));
  return worker;
}
