/**
 * The BullMQ side of the worker. A triage runs as a flow: its job queues one child job per grid of a pass
 * (any worker process may take any of them), waits for its children (BullMQ's waiting-children state), ends
 * the pass, queues the next pass's grids, and finally ranks. Each process takes several steps at once
 * (`concurrency`) so that model calls overlap with image work, while its image gate lets one grid at a time
 * be built: one photo, one sharp pipeline in flight per process. Grid jobs carry BullMQ priorities that give
 * each user's running triages turns together (see TriageStore.fairTurn): a user with three jobs does not get
 * three times the service, and a small job's grids go ahead of a big job's remaining ones.
 */
import {
  DelayedError,
  Queue,
  UnrecoverableError,
  WaitingChildrenError,
  Worker,
  type ConnectionOptions,
  type Job,
} from 'bullmq';
import type { RedisClient } from '@triage/queue';
import { hostname } from 'node:os';
import type { CreditLedger } from '@triage/db';
import {
  cancelChannel,
  createTriageQueue,
  GRID_JOB,
  gridJobId,
  MAINTENANCE_QUEUE,
  TRIAGE_QUEUE,
  type TriageJobData,
  type TriageStore,
  type WorkerHeartbeat,
} from '@triage/queue';
import type { Pass } from '@triage/core';
import type { Logger } from 'pino';
import { StorageUnavailableError } from '@triage/storage';
import { sweepExpired } from './expiry.js';
import { refundUnserved } from './refunds.js';
import {
  DEFAULT_OUTAGE_POLICY,
  endOutage,
  notePause,
  outageExpired,
  outageState,
  type OutagePolicy,
} from './outage.js';
import { ImageGate } from './gate.js';
import { WORKER_SETTINGS } from './config.js';
import { nextWork, runGridStep, TriageNotFoundError, type NextWork, type StepDeps } from './step.js';

export interface TriageWorkerOptions extends Omit<StepDeps, 'jobLog' | 'gate'> {
  /** A connection for BullMQ's worker (created with `maxRetriesPerRequest: null`). */
  connection: ConnectionOptions;
  /** A dedicated connection for cancel messages (a subscribed connection can do nothing else). */
  subscriber: RedisClient;
  prefix: string;
  /** How long a job stays locked to this worker without a renewal, ms. */
  lockDurationMs?: number;
  /** How often stalled jobs (their worker died) are looked for, ms. */
  stalledIntervalMs?: number;
  /**
   * Steps taken at once (WORKER_CONCURRENCY, default 4): grids waiting for the model's answer while the next
   * one is built. Image work stays one grid, one photo at a time whatever the number.
   */
  concurrency?: number;
  /** Start consuming at once (default) or wait for `run()`. */
  autorun?: boolean;
  /** How often the retention sweep runs, ms (one scheduler per queue, whatever the number of workers); 0 = never. */
  sweepEveryMs?: number;
  /** How often this process publishes its memory for the metrics, ms. */
  heartbeatMs?: number;
  /** Refunds a triage that ended without serving the user (failed, cancelled before a grid, none reviewed). */
  credits?: CreditLedger;
  /** How a storage outage is waited out (limit, first wait, longest wait). */
  outagePolicy?: Partial<OutagePolicy>;
}

export type StopReason = 'cancel' | 'shutdown';

export interface TriageWorker {
  readonly worker: Worker<TriageJobData>;
  /** Stops taking jobs; the grid in progress may finish until `deadlineMs`, then it is handed back. */
  close(deadlineMs?: number): Promise<void>;
}

class StopSignal extends Error {
  constructor(readonly reason: StopReason) {
    super(reason === 'cancel' ? 'cancelled by request' : 'worker shutting down');
  }
}

/**
 * A cancelled triage ends its BullMQ job as failed with this reason, not as completed: BullMQ has no
 * "cancelled" state, and the dashboard and queue counts would otherwise list it among the successes.
 * Unrecoverable, so it is never retried. The triage itself is recorded as `cancelled`.
 */
export class TriageCancelledError extends UnrecoverableError {
  override name = 'TriageCancelledError';
  constructor() {
    super('cancelled by user');
  }
}

/**
 * What the dashboard shows of a job: `progress` (0–100, over all grids) draws Bull Board's bar; the phase, the
 * grid within it and the message say which step the job is on.
 */
export interface JobProgress {
  progress: number;
  phase: string;
  grid: string;
  grids_done: number;
  grids_total: number;
  message: string;
}

export async function jobProgress(store: TriageStore, triageId: string): Promise<JobProgress | null> {
  const s = await store.status(triageId);
  if (!s) return null;
  const share = s.status === 'completed' ? 1 : s.grids_total > 0 ? Math.min(1, s.grids_done / s.grids_total) : 0;
  return {
    progress: Math.round(share * 1000) / 10,
    phase: s.progress?.phase ?? (s.status === 'completed' ? 'complete' : s.status),
    grid: s.progress ? `${s.progress.current_step}/${s.progress.total_steps}` : `${s.grids_done}/${s.grids_total}`,
    grids_done: s.grids_done,
    grids_total: s.grids_total,
    message: s.progress?.message ?? (s.status === 'completed' ? 'Complete' : s.status),
  };
}

/** Grid jobs' BullMQ priorities stay below its limit (2^21). */
const LAST_TURN = 2_000_000;

export const DEFAULT_CONCURRENCY = WORKER_SETTINGS.concurrency.default;

type GridWork = Extract<NextWork, { kind: 'grids' }>;

/** What one worker's job steps and handlers share. */
interface WorkerContext {
  readonly options: TriageWorkerOptions;
  readonly store: TriageStore;
  readonly log: Logger;
  /** Every step running here, by triage: a cancel stops all of them. */
  readonly active: Map<string, Set<AbortController>>;
  readonly outagePolicy: OutagePolicy;
  readonly gate: ImageGate;
  readonly queue: Queue<TriageJobData>;
}

/** The retention sweep's queue and the worker that runs it. */
interface Maintenance {
  queue: Queue;
  worker: Worker;
}

/** This process's memory report: its id in the store and the timer that repeats it. */
interface Heartbeat {
  id: string;
  timer: NodeJS.Timeout;
}

export async function createTriageWorker(options: TriageWorkerOptions): Promise<TriageWorker> {
  const { store, log } = options;
  const ctx: WorkerContext = {
    options,
    store,
    log,
    active: new Map(),
    outagePolicy: { ...DEFAULT_OUTAGE_POLICY, ...options.outagePolicy },
    gate: new ImageGate(),
    // Grid jobs are added by the triage's own step: the queue's default options (attempts, retention) hold for them too.
    queue: createTriageQueue({
      connection: options.connection,
      prefix: options.prefix,
      retentionSeconds: store.retentionSeconds,
    }),
  };
  await listenForCancels(ctx);
  const worker = new Worker<TriageJobData>(
    TRIAGE_QUEUE,
    (job, token, signal) =>
      job.name === GRID_JOB ? processGrid(ctx, job, token, signal) : processTriage(ctx, job, token),
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? DEFAULT_CONCURRENCY,
      autorun: options.autorun ?? true,
      lockDuration: options.lockDurationMs ?? WORKER_SETTINGS.lockDurationMs.default,
      stalledInterval: options.stalledIntervalMs ?? WORKER_SETTINGS.stalledIntervalMs.default,
      // A crash-looping host must not fail a long job for good: a grid redelivered is resumed, not redone.
      maxStalledCount: 100,
      name: 'triage-worker',
    },
  );
  worker.on('failed', (job, err) => recordFailure(ctx, job, err));
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  const maintenance = await startMaintenance(options);
  const heartbeat = await startHeartbeat(store, options.heartbeatMs);
  return {
    worker,
    close: (deadlineMs = WORKER_SETTINGS.shutdownDeadlineMs.default) =>
      closeWorker(ctx, worker, maintenance, heartbeat, deadlineMs),
  };
}

/** A cancel message stops every step of its triage running in this process. */
async function listenForCancels(ctx: WorkerContext): Promise<void> {
  const { subscriber, prefix } = ctx.options;
  await subscriber.subscribe(cancelChannel(prefix));
  subscriber.on('message', (_channel: string, triageId: string) => {
    const running = ctx.active.get(triageId);
    if (!running) return;
    ctx.log.info({ triageId, steps: running.size }, 'cancel requested: stopping the running steps');
    for (const controller of running) controller.abort(new StopSignal('cancel'));
  });
}

/** Counts a step among its triage's running ones until `done`; BullMQ's own abort counts as a cancel. */
function track(
  active: WorkerContext['active'],
  triageId: string,
  bullSignal: AbortSignal | undefined,
): { controller: AbortController; done: () => void } {
  const controller = new AbortController();
  bullSignal?.addEventListener('abort', () => controller.abort(new StopSignal('cancel')), { once: true });
  const running = active.get(triageId) ?? new Set<AbortController>();
  running.add(controller);
  active.set(triageId, running);
  return {
    controller,
    done: () => {
      running.delete(controller);
      if (running.size === 0 && active.get(triageId) === running) active.delete(triageId);
    },
  };
}

/** As a triage ends; a ledger that fails now is asked again by the retention sweep (see refunds.ts). */
async function refundIfUnserved(ctx: WorkerContext, triageId: string): Promise<void> {
  const { store, options, log } = ctx;
  await refundUnserved({ store, credits: options.credits, log }, triageId).catch((err: unknown) =>
    log.error({ triageId, err }, 'could not refund the triage’s credits; the retention sweep will try again'),
  );
}

/** Back to the queue, due in `waitMs` (now by default), without counting an attempt. */
async function park(job: Job<TriageJobData>, token: string | undefined, waitMs = 0): Promise<never> {
  await job.moveToDelayed(Date.now() + waitMs, token);
  throw new DelayedError();
}

/** The triage job's progress, which the dashboard draws (a grid job updates its parent's). */
async function showProgress(ctx: WorkerContext, triageId: string, jobId: string | undefined): Promise<void> {
  const progress = await jobProgress(ctx.store, triageId).catch(() => null);
  if (progress && jobId) await ctx.queue.updateJobProgress(jobId, progress as unknown as object).catch(() => {});
}

/** A line in the triage job's log, where an operator looks first (a grid job writes to its parent's). */
function triageLog(ctx: WorkerContext, job: Job<TriageJobData>, line: string): Promise<unknown> {
  return job.parent?.id ? ctx.queue.addJobLog(job.parent.id, line) : job.log(line);
}

/** Hands the grid back unrecorded and parks its job until the storage may be back. */
async function waitForStorage(
  ctx: WorkerContext,
  job: Job<TriageJobData>,
  token: string | undefined,
  err: StorageUnavailableError,
): Promise<never> {
  const { waitMs, line } = await notePause(ctx.store, job.data.triageId, err.reason, ctx.outagePolicy);
  ctx.log.warn({ triageId: job.data.triageId, waitMs }, line);
  await triageLog(ctx, job, line);
  return park(job, token, waitMs);
}

/**
 * The grid jobs of a pass, children of the triage job: each user's turns come after their other jobs' grids
 * (`turn`, from TriageStore.fairTurn), the grids of the pass in order.
 */
export function gridJobs(
  triageId: string,
  parent: { id: string; queue: string },
  work: Pick<GridWork, 'pass' | 'grids'>,
  turn: number,
) {
  return work.grids.map((grid, i) => ({
    name: GRID_JOB,
    data: { triageId, pass: work.pass, grid },
    opts: {
      jobId: gridJobId(triageId, work.pass, grid),
      parent,
      priority: Math.min(LAST_TURN, Math.max(1, turn) + i),
      // A grid that fails for good fails its triage (see the 'failed' handler): no pass ends short of a grid.
      failParentOnFailure: true,
      // Its outcome lives on in the grid's record and in the triage job's list of processed children.
      removeOnComplete: true,
    },
  }));
}

/** Queues the grids of a pass as children of the triage job. */
async function queueGrids(ctx: WorkerContext, job: Job<TriageJobData>, work: GridWork): Promise<void> {
  const { triageId } = job.data;
  const turn = await ctx.store.fairTurn(work.meta, work.pass, work.grids.length);
  await ctx.queue.addBulk(gridJobs(triageId, { id: job.id!, queue: job.queueQualifiedName }, work, turn));
  await job.log(`${work.pass} pass: ${work.grids.length} grid${work.grids.length === 1 ? '' : 's'} queued`);
}

/** The triage job's step: queue what is left of the pass and wait for it, or end the pass, or rank. */
async function processTriage(ctx: WorkerContext, job: Job<TriageJobData>, token: string | undefined): Promise<string> {
  const { triageId } = job.data;
  const jobLog = ctx.log.child({ triageId });
  const deps: StepDeps = { ...ctx.options, log: jobLog, jobLog: (line) => job.log(line) };
  try {
    // A pass whose grids are all queued and finished but not all recorded is queued again (twice at most).
    for (let round = 0; round < 3; round++) {
      const work = await nextWork(deps, triageId);
      await showProgress(ctx, triageId, job.id);
      if (work.kind === 'done') {
        await refundIfUnserved(ctx, triageId);
        if (work.status === 'cancelled') throw new TriageCancelledError();
        return work.status;
      }
      await queueGrids(ctx, job, work);
      if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
    }
    throw new Error('the pass’s grid jobs ended three times without recording every grid');
  } catch (err) {
    if (err instanceof WaitingChildrenError || err instanceof TriageCancelledError) throw err;
    if (err instanceof TriageNotFoundError) throw new UnrecoverableError(err.message);
    jobLog.error({ err }, 'step failed');
    throw err;
  }
}

/** A grid job: one grid built, judged and recorded; a cancel or a shutdown stops it within one photo. */
async function processGrid(
  ctx: WorkerContext,
  job: Job<TriageJobData>,
  token: string | undefined,
  bullSignal?: AbortSignal,
): Promise<string> {
  const { triageId } = job.data;
  const { controller, done } = track(ctx.active, triageId, bullSignal);
  const jobLog = ctx.log.child({ triageId, pass: job.data.pass as Pass, grid: job.data.grid ?? 0 });
  try {
    return await runGrid(ctx, job, jobLog, controller.signal);
  } catch (err) {
    return await gridStepFailed(ctx, job, token, jobLog, controller.signal, err);
  } finally {
    done();
  }
}

/** Builds, judges and records the grid, reading through a storage outage or past its limit. */
async function runGrid(
  ctx: WorkerContext,
  job: Job<TriageJobData>,
  jobLog: Logger,
  signal: AbortSignal,
): Promise<string> {
  const { triageId } = job.data;
  const outage = await outageState(ctx.store, triageId);
  // Past the limit, reads fail the photos an outage hits, until storage answers again.
  const storageOutage = outageExpired(outage, ctx.outagePolicy) ? 'fail' : 'pause';
  const outcome = await runGridStep(
    {
      ...ctx.options,
      gate: ctx.gate.ranked(job.opts.priority ?? 0),
      log: jobLog,
      jobLog: (line) => triageLog(ctx, job, line),
      storageOutage,
    },
    triageId,
    job.data.pass as Pass,
    job.data.grid ?? 0,
    signal,
  );
  // The outage is over: its record and the status's message go, and a later outage waits from the start.
  const answers = outcome.kind === 'grid' && outcome.storageAnswers;
  if (outage && (storageOutage === 'pause' || answers)) await endOutage(ctx.store, triageId);
  if (outcome.kind === 'done') return outcome.status;
  if (outcome.recorded) await showProgress(ctx, triageId, job.parent?.id);
  return outcome.recorded ? 'recorded' : 'already recorded';
}

/** A grid step that threw: parked (storage outage, shutdown), ended as cancelled, or failed. */
async function gridStepFailed(
  ctx: WorkerContext,
  job: Job<TriageJobData>,
  token: string | undefined,
  jobLog: Logger,
  signal: AbortSignal,
  err: unknown,
): Promise<string> {
  if (err instanceof DelayedError) throw err;
  if (err instanceof StorageUnavailableError && !signal.aborted) return await waitForStorage(ctx, job, token, err);
  const stop: unknown = signal.reason;
  if (signal.aborted && stop instanceof StopSignal) {
    if (stop.reason === 'shutdown') {
      jobLog.info('handing the grid back: shutting down');
      return await park(job, token);
    }
    // The triage job ends it as cancelled (and refunds) once its grid jobs have stopped.
    await ctx.store.finish(job.data.triageId, { status: 'cancelled' });
    jobLog.info('cancelled');
    return 'cancelled';
  }
  if (err instanceof TriageNotFoundError) throw new UnrecoverableError(err.message);
  jobLog.error({ err }, 'grid step failed');
  throw err;
}

/** Whether a failed job is done trying: unrecoverable, or out of attempts. */
export function failedForGood(job: Pick<Job, 'attemptsMade' | 'opts'>, err: Error): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
}

/** A job failed for good fails its triage, which is refunded; a cancel is recorded by the grid that saw it. */
function recordFailure(ctx: WorkerContext, job: Job<TriageJobData> | undefined, err: Error): void {
  if (!job || err instanceof TriageCancelledError || !failedForGood(job, err)) return;
  const { triageId } = job.data;
  ctx.log.error({ triageId, err }, 'triage failed');
  ctx.store
    .finish(triageId, { status: 'failed', errorMessage: `Triage failed: ${err.message}` })
    .then(() => refundIfUnserved(ctx, triageId))
    .catch((e: unknown) => ctx.log.error({ err: e }, 'could not record the failure'));
}

/** The retention sweep: a BullMQ job scheduler, so that however many workers run it fires once per period. */
async function startMaintenance(options: TriageWorkerOptions): Promise<Maintenance | null> {
  const { store, log, connection, prefix, sweepEveryMs } = options;
  if (!sweepEveryMs) return null;
  const maintenance: Maintenance = {
    queue: new Queue(MAINTENANCE_QUEUE, { connection, prefix }),
    worker: new Worker(
      MAINTENANCE_QUEUE,
      () =>
        sweepExpired({ store, storage: options.storage, log, ...(options.credits && { credits: options.credits }) }),
      { connection, prefix, concurrency: 1, autorun: options.autorun ?? true },
    ),
  };
  await maintenance.queue.upsertJobScheduler(
    'retention-sweep',
    { every: sweepEveryMs },
    { name: 'sweep', opts: { removeOnComplete: 50, removeOnFail: 50 } },
  );
  maintenance.worker.on('error', (err) => log.error({ err }, 'maintenance worker error'));
  return maintenance;
}

/** Memory as the operating system counts it, for the API's /metrics: the figure the budget is about. */
async function startHeartbeat(store: TriageStore, everyMs = 10_000): Promise<Heartbeat> {
  const id = `${hostname()}:${process.pid}`;
  const startedAt = Date.now();
  const beat = async () => {
    const heartbeat: WorkerHeartbeat = {
      rssBytes: process.memoryUsage.rss(),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      startedAt,
      at: Date.now(),
    };
    await store.heartbeat(id, heartbeat);
  };
  const timer = setInterval(() => void beat().catch(() => {}), everyMs);
  timer.unref();
  await beat().catch(() => {});
  return { id, timer };
}

/** Stops taking jobs; steps still running at the deadline are stopped and their grids handed back. */
async function closeWorker(
  ctx: WorkerContext,
  worker: Worker<TriageJobData>,
  maintenance: Maintenance | null,
  heartbeat: Heartbeat,
  deadlineMs: number,
): Promise<void> {
  clearInterval(heartbeat.timer);
  const timer = setTimeout(() => {
    for (const running of ctx.active.values())
      for (const controller of running) controller.abort(new StopSignal('shutdown'));
  }, deadlineMs);
  try {
    await Promise.all([worker.close(), maintenance?.worker.close()]);
    await Promise.all([maintenance?.queue.close(), ctx.queue.close()]);
    await ctx.store.dropWorker(heartbeat.id).catch(() => {});
  } finally {
    clearTimeout(timer);
    await ctx.options.subscriber.unsubscribe().catch(() => {});
  }
}
