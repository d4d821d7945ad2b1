/**
 * The BullMQ side of the worker: one triage job per photo set, one grid per processor invocation. After
 * each grid the job is parked (moved to delayed, due now) so that other jobs' grids run in between: a
 * 16-photo job never waits behind a 2,000-photo one. Concurrency is 1: one photo, one sharp pipeline.
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { RedisClient } from '@triage/queue';
import { hostname } from 'node:os';
import type { CreditLedger } from '@triage/db';
import { cancelChannel, MAINTENANCE_QUEUE, TRIAGE_QUEUE, type TriageJobData, type TriageStore, type WorkerHeartbeat } from '@triage/queue';
import { StorageUnavailableError } from '@triage/storage';
import { sweepExpired } from './expiry.js';
import { refundUnserved } from './refunds.js';
import { DEFAULT_OUTAGE_POLICY, endOutage, notePause, outageExpired, outageState, type OutagePolicy } from './outage.js';
import { runStep, TriageNotFoundError, type StepDeps } from './step.js';

export interface TriageWorkerOptions extends Omit<StepDeps, 'jobLog'> {
  /** A connection for BullMQ's worker (created with `maxRetriesPerRequest: null`). */
  connection: ConnectionOptions;
  /** A dedicated connection for cancel messages (a subscribed connection can do nothing else). */
  subscriber: RedisClient;
  prefix: string;
  /** How long a job stays locked to this worker without a renewal, ms. */
  lockDurationMs?: number;
  /** How often stalled jobs (their worker died) are looked for, ms. */
  stalledIntervalMs?: number;
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

export async function createTriageWorker(options: TriageWorkerOptions): Promise<TriageWorker> {
  const { store, log } = options;
  const active = new Map<string, AbortController>();
  const outagePolicy: OutagePolicy = { ...DEFAULT_OUTAGE_POLICY, ...options.outagePolicy };

  await options.subscriber.subscribe(cancelChannel(options.prefix));
  options.subscriber.on('message', (_channel: string, triageId: string) => {
    const controller = active.get(triageId);
    if (controller) {
      log.info({ triageId }, 'cancel requested: stopping the running step');
      controller.abort(new StopSignal('cancel'));
    }
  });

  /** As a triage ends; a ledger that fails now is asked again by the retention sweep (see refunds.ts). */
  async function refundIfUnserved(triageId: string): Promise<void> {
    await refundUnserved({ store, credits: options.credits, log }, triageId).catch((err: unknown) =>
      log.error({ triageId, err }, 'could not refund the triage’s credits; the retention sweep will try again'),
    );
  }

  async function park(job: Job<TriageJobData>, token: string | undefined): Promise<never> {
    // Back to the queue, due now, without counting an attempt: other jobs' grids get their turn first.
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  async function showProgress(job: Job<TriageJobData>): Promise<void> {
    const progress = await jobProgress(store, job.data.triageId).catch(() => null);
    if (progress) await job.updateProgress(progress as unknown as object).catch(() => {});
  }

  /** Hands the grid back unrecorded and parks the job until the storage may be back. */
  async function waitForStorage(job: Job<TriageJobData>, token: string | undefined, err: StorageUnavailableError): Promise<never> {
    const { waitMs, line } = await notePause(store, job.data.triageId, err.reason, outagePolicy);
    log.warn({ triageId: job.data.triageId, waitMs }, line);
    await job.log(line);
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw new DelayedError();
  }

  async function processStep(job: Job<TriageJobData>, token: string | undefined, bullSignal?: AbortSignal): Promise<string> {
    const { triageId } = job.data;
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort(new StopSignal('cancel')), { once: true });
    active.set(triageId, controller);
    const jobLog = log.child({ triageId });
    try {
      const outage = await outageState(store, triageId);
      // Past the limit, reads fail the photos an outage hits; the outage stays on record until a read waits again.
      const storageOutage = outageExpired(outage, outagePolicy) ? 'fail' : 'pause';
      const outcome = await runStep(
        { ...options, log: jobLog, jobLog: (line) => job.log(line), storageOutage },
        triageId,
        controller.signal,
      );
      if (outage && storageOutage === 'pause') await endOutage(store, triageId);
      await showProgress(job);
      if (outcome.kind === 'grid') return await park(job, token);
      await refundIfUnserved(triageId);
      if (outcome.status === 'cancelled') throw new TriageCancelledError();
      return outcome.status;
    } catch (err) {
      if (err instanceof DelayedError || err instanceof TriageCancelledError) throw err;
      if (err instanceof StorageUnavailableError && !controller.signal.aborted) return await waitForStorage(job, token, err);
      const stop = controller.signal.reason;
      if (controller.signal.aborted && stop instanceof StopSignal) {
        if (stop.reason === 'cancel') {
          await store.finish(triageId, { status: 'cancelled' });
          await refundIfUnserved(triageId);
          jobLog.info('cancelled');
          throw new TriageCancelledError();
        }
        jobLog.info('handing the grid back: shutting down');
        return await park(job, token);
      }
      if (err instanceof TriageNotFoundError) throw new UnrecoverableError(err.message);
      jobLog.error({ err }, 'step failed');
      throw err;
    } finally {
      active.delete(triageId);
    }
  }

  const worker = new Worker<TriageJobData>(TRIAGE_QUEUE, processStep, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: 1,
    autorun: options.autorun ?? true,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    // Each grid is a new start of the same job: a crash-looping host must not fail a long job for good.
    maxStalledCount: 100,
    name: 'triage-worker',
  });

  worker.on('failed', (job, err) => {
    if (!job || err instanceof TriageCancelledError) return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    log.error({ triageId: job.data.triageId, err }, 'triage failed');
    store
      .finish(job.data.triageId, { status: 'failed', errorMessage: `Triage failed: ${err.message}` })
      .then(() => refundIfUnserved(job.data.triageId))
      .catch((e: unknown) => log.error({ err: e }, 'could not record the failure'));
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));

  // The retention sweep: a BullMQ job scheduler, so that however many workers run it fires once per period.
  const maintenance: { queue: Queue; worker: Worker } | null = options.sweepEveryMs
    ? {
        queue: new Queue(MAINTENANCE_QUEUE, { connection: options.connection, prefix: options.prefix }),
        worker: new Worker(MAINTENANCE_QUEUE, () => sweepExpired({ store, storage: options.storage, log, ...(options.credits && { credits: options.credits }) }), {
          connection: options.connection,
          prefix: options.prefix,
          concurrency: 1,
          autorun: options.autorun ?? true,
        }),
      }
    : null;
  if (maintenance) {
    await maintenance.queue.upsertJobScheduler(
      'retention-sweep',
      { every: options.sweepEveryMs! },
      { name: 'sweep', opts: { removeOnComplete: 50, removeOnFail: 50 } },
    );
    maintenance.worker.on('error', (err) => log.error({ err }, 'maintenance worker error'));
  }

  // Memory as the operating system counts it, for the API's /metrics: the figure the budget is about.
  const id = `${hostname()}:${process.pid}`;
  const startedAt = Date.now();
  const heartbeat = async () => {
    const beat: WorkerHeartbeat = {
      rssBytes: process.memoryUsage.rss(),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      startedAt,
      at: Date.now(),
    };
    await store.heartbeat(id, beat);
  };
  const beating = setInterval(() => void heartbeat().catch(() => {}), options.heartbeatMs ?? 10_000);
  beating.unref();
  await heartbeat().catch(() => {});

  return {
    worker,
    async close(deadlineMs = 10_000) {
      clearInterval(beating);
      const timer = setTimeout(() => {
        for (const controller of active.values()) controller.abort(new StopSignal('shutdown'));
      }, deadlineMs);
      try {
        await Promise.all([worker.close(), maintenance?.worker.close()]);
        await maintenance?.queue.close();
        await store.dropWorker(id).catch(() => {});
      } finally {
        clearTimeout(timer);
        await options.subscriber.unsubscribe().catch(() => {});
      }
    },
  };
}
