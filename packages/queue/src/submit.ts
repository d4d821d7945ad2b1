/** Accepting a triage: validate everything first, then store it and add its one BullMQ job. */
import { createHash } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import {
  estimateGrids,
  finalCount,
  MAX_PHOTOS,
  normaliseCriteria,
  parsePasses,
  parseTarget,
  planTriage,
  targetPercent,
  TriageInputError,
  type Pass,
  type PassLayout,
  type VisionProfile,
} from '@triage/core';
import { TRIAGE_JOB, TRIAGE_QUEUE, type PhotoInput, type TriageJobData, type TriageRequest } from './contract.js';
import type { TriageStore } from './store.js';

export interface TriageInput {
  triageId: string;
  userId: string;
  bucket: string;
  photos: PhotoInput[];
  target?: string;
  criteria?: string;
  passes?: unknown;
  saveGrids?: boolean;
}

export interface PreparedTriage {
  request: TriageRequest;
  /** The target as a share of the input, percent. */
  percent: number;
  /** The most photos the result keeps. */
  keep: number;
  estimatedGrids: number;
}

/** Validates a request completely (a bad target is refused now, not failed later in the worker). */
export function prepareTriage(
  input: TriageInput,
  profile: VisionProfile,
  layouts: Partial<Record<Pass, PassLayout>> = {},
): PreparedTriage {
  const n = input.photos.length;
  if (n === 0) throw new TriageInputError('No files provided');
  if (n > MAX_PHOTOS) throw new TriageInputError(`Maximum ${MAX_PHOTOS} photos allowed per triage`);
  const passes = parsePasses(input.passes ?? 2);
  const targetText = input.target ?? '10%';
  const target = parseTarget(targetText, n);
  const criteria = normaliseCriteria(input.criteria);
  const percent = targetPercent(target, n);
  const plan = planTriage(profile, n, layouts);
  return {
    request: {
      triageId: input.triageId,
      userId: input.userId,
      bucket: input.bucket,
      photos: input.photos,
      target: targetText.trim(),
      criteria,
      passes,
      plan,
      saveGrids: input.saveGrids ?? false,
    },
    percent,
    keep: finalCount(percent, n),
    estimatedGrids: estimateGrids(plan, percent, passes),
  };
}

export class TriageExistsError extends Error {
  override name = 'TriageExistsError';
}

/** The user already has as many pending or processing triages as allowed. */
export class ActiveCapError extends Error {
  override name = 'ActiveCapError';
  constructor(
    readonly active: number,
    readonly max: number,
  ) {
    super(
      `Too many active triage jobs: you have ${active} pending or processing (the limit is ${max}). Wait for one to finish or cancel it.`,
    );
  }
}

export interface QueueOptions {
  connection: ConnectionOptions;
  prefix: string;
  /** Seconds BullMQ keeps a finished job (our own records follow the store's retention). */
  retentionSeconds: number;
}

export function createTriageQueue(options: QueueOptions): Queue<TriageJobData> {
  return new Queue<TriageJobData>(TRIAGE_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      // Attempts cover unexpected errors of a whole step; photo and model failures are handled inside it. Each
      // grid is one more start of the job (parked with moveToDelayed, which spends no attempt): BullMQ's
      // attemptsStarted counts grids, attemptsMade only the failed steps.
      attempts: 3,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: options.retentionSeconds },
      removeOnFail: { age: options.retentionSeconds },
    },
  });
}

/**
 * Stores the triage and adds its job: the only place a triage job is added to the queue. With `maxActive`,
 * the user's cap on pending or processing triages is checked in the same atomic step that stores it.
 */
export async function submitTriage(
  queue: Queue<TriageJobData>,
  store: TriageStore,
  prepared: PreparedTriage,
  maxActive = 0,
): Promise<void> {
  const { request } = prepared;
  const outcome = await store.create(request, prepared.estimatedGrids, maxActive);
  if (outcome.kind === 'exists') throw new TriageExistsError(`Triage job ${request.triageId} already exists`);
  if (outcome.kind === 'at-cap') throw new ActiveCapError(outcome.active, maxActive);
  try {
    await queue.add(TRIAGE_JOB, { triageId: request.triageId }, { jobId: request.triageId });
  } catch (err) {
    // Nothing half-accepted: without its job the stored triage would wait forever.
    await store.forget(request.triageId, request.userId);
    throw err;
  }
}

/**
 * The hand-off to the next stage (`proceed`): which photos of a finished triage go on. Only ids, names and
 * object paths: never a signed URL or a secret, since job data is visible in the dashboard.
 */
export interface HandOffJobData {
  triageId: string;
  userId: string;
  bucket: string;
  photos: { id: string; name: string; path: string }[];
}

export const HANDOFF_JOB = 'proceed';
export const DEFAULT_HANDOFF_QUEUE = 'triage-proceed';

export function createHandOffQueue(name: string, options: QueueOptions): Queue<HandOffJobData> {
  return new Queue<HandOffJobData>(name, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      removeOnComplete: { age: options.retentionSeconds },
      removeOnFail: { age: options.retentionSeconds },
      // Storage or the database away for a while: tried again with backoff (a photo handed off already changes nothing).
      attempts: 6,
      backoff: { type: 'exponential', delay: 2000 },
    },
  });
}

/**
 * Adds one job carrying the chosen photos to the next stage's queue; returns its job id. With `jobId`, a job
 * of that id already waiting or running is not added twice (a double click); a finished one is replaced.
 */
export async function handOff(queue: Queue<HandOffJobData>, data: HandOffJobData, jobId?: string): Promise<string> {
  if (jobId !== undefined) {
    const existing = await queue.getJob(jobId);
    if (existing && ((await existing.isCompleted()) || (await existing.isFailed())))
      await existing.remove().catch(() => {});
  }
  const job = await queue.add(HANDOFF_JOB, data, jobId !== undefined ? { jobId } : {});
  return job.id ?? '';
}

/** The hand-off job of a proceed: the same photos of the same triage always make the same id. */
export function handOffJobId(triageId: string, photoIds: readonly string[]): string {
  const digest = createHash('sha256')
    .update([...photoIds].sort().join(','))
    .digest('hex')
    .slice(0, 16);
  return `${triageId}-${digest}`;
}
