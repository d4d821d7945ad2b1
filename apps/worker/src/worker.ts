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

export async function createTriageWorker(options: TriageWorkerOptions): Promise<TriageWorker> {
  const { store, log } = options;
  /** Every step running here, by triage: a cancel stops all of them. */
  const active = new Map<string, Set<AbortController>>();
  const outagePolicy: OutagePolicy = { ...DEFAULT_OUTAGE_POLICY, ...options.outagePolicy };
  const gate = new ImageGate();
  // Grid jobs are added by the triage's own step: the queue's default options (attempts, retention) hold for them too.
  const queue = createTriageQueue({
    connection: options.connection,
    prefix: options.prefix,
    retentionSeconds: store.retentionSeconds,
  });

  await options.subscriber.subscribe(cancelChannel(options.prefix));
  options.subscriber.on('message', (_channel: string, triageId: string) => {
    const running = active.get(triageId);
    if (!running) return;
    log.info({ triageId, steps: running.size }, 'cancel requested: stopping the running steps');
    for (const controller of running) controller.abort(new StopSignal('cancel'));
  });

  function track(triageId: string, bullSignal: AbortSignal | undefined): { controller: AbortController; done(): void } {
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort(new StopSignal('cancel')), { once: true });
    const running = active.get(triageId) ?? new Set<AbortController>();
    running.add(controller);
    active.set(triageId, running);
    return {
      controller,
      done() {
        running.delete(controller);
        if (running.size === 0 && active.get(triageId) === running) active.delete(triageId);
      },
    };
  }

  /** As a triage ends; a ledger that fails now is asked again by the retention sweep (see refunds.ts). */
  async function refundIfUnserved(triageId: string): Promise<void> {
    await refundUnserved({ store, credits: options.credits, log }, triageId).catch((err: unknown) =>
      log.error({ triageId, err }, 'could not refund the triage’s credits; the retention sweep will try again'),
    );
  }

  async function park(job: Job<TriageJobData>, token: string | undefined): Promise<never> {
    // Back to the queue, due now, without counting an attempt.
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  /** The triage job's progress, which the dashboard draws (a grid job updates its parent's). */
  async function showProgress(triageId: string, jobId: string | undefined): Promise<void> {
    const progress = await jobProgress(store, triageId).catch(() => null);
    if (progress && jobId) await queue.updateJobProgress(jobId, progress as unknown as object).catch(() => {});
  }

  /** A line in the triage job's log, where an operator looks first (a grid job writes to its parent's). */
  function triageLog(job: Job<TriageJobData>, line: string): Promise<unknown> {
    return job.parent?.id ? queue.addJobLog(job.parent.id, line) : job.log(line);
  }

  /** Hands the grid back unrecorded and parks its job until the storage may be back. */
  async function waitForStorage(
    job: Job<TriageJobData>,
    token: string | undefined,
    err: StorageUnavailableError,
  ): Promise<never> {
    const { waitMs, line } = await notePause(store, job.data.triageId, err.reason, outagePolicy);
    log.warn({ triageId: job.data.triageId, waitMs }, line);
    await triageLog(job, line);
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw new DelayedError();
  }

  /** Queues the grids of a pass as children of the triage job, each user's turns after their other jobs' grids. */
  async function queueGrids(job: Job<TriageJobData>, work: Extract<NextWork, { kind: 'grids' }>): Promise<void> {
    const { triageId } = job.data;
    const turn = await store.fairTurn(work.meta, work.pass, work.grids.length);
    await queue.addBulk(
      work.grids.map((grid, i) => ({
        name: GRID_JOB,
        data: { triageId, pass: work.pass, grid },
        opts: {
          jobId: gridJobId(triageId, work.pass, grid),
          parent: { id: job.id!, queue: job.queueQualifiedName },
          priority: Math.min(LAST_TURN, Math.max(1, turn) + i),
          // A grid that fails for good fails its triage (see the 'failed' handler): no pass ends short of a grid.
          failParentOnFailure: true,
          // Its outcome lives on in the grid's record and in the triage job's list of processed children.
          removeOnComplete: true,
        },
      })),
    );
    await job.log(`${work.pass} pass: ${work.grids.length} grid${work.grids.length === 1 ? '' : 's'} queued`);
  }

  /** The triage job's step: queue what is left of the pass and wait for it, or end the pass, or rank. */
  async function processTriage(job: Job<TriageJobData>, token: string | undefined): Promise<string> {
    const { triageId } = job.data;
    const jobLog = log.child({ triageId });
    const deps: StepDeps = { ...options, log: jobLog, jobLog: (line) => job.log(line) };
    try {
      // A pass whose grids are all queued and finished but not all recorded is queued again (twice at most).
      for (let round = 0; round < 3; round++) {
        const work = await nextWork(deps, triageId);
        await showProgress(triageId, job.id);
        if (work.kind === 'done') {
          await refundIfUnserved(triageId);
          if (work.status === 'cancelled') throw new TriageCancelledError();
          return work.status;
        }
        await queueGrids(job, work);
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
    job: Job<TriageJobData>,
    token: string | undefined,
    bullSignal?: AbortSignal,
  ): Promise<string> {
    const { triageId } = job.data;
    const pass = job.data.pass as Pass;
    const grid = job.data.grid ?? 0;
    const { controller, done } = track(triageId, bullSignal);
    const jobLog = log.child({ triageId, pass, grid });
    const parentId = job.parent?.id;
    try {
      const outage = await outageState(store, triageId);
      // Past the limit, reads fail the photos an outage hits; the outage stays on record until a read waits again.
      const storageOutage = outageExpired(outage, outagePolicy) ? 'fail' : 'pause';
      const outcome = await runGridStep(
        {
          ...options,
          gate: gate.ranked(job.opts.priority ?? 0),
          log: jobLog,
          jobLog: (line) => triageLog(job, line),
          storageOutage,
        },
        triageId,
        pass,
        grid,
        controller.signal,
      );
      if (outage && storageOutage === 'pause') await endOutage(store, triageId);
      if (outcome.kind === 'done') return outcome.status;
      if (outcome.recorded) await showProgress(triageId, parentId);
      return outcome.recorded ? 'recorded' : 'already recorded';
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      if (err instanceof StorageUnavailableError && !controller.signal.aborted)
        return await waitForStorage(job, token, err);
      const stop = controller.signal.reason;
      if (controller.signal.aborted && stop instanceof StopSignal) {
        if (stop.reason === 'shutdown') {
          jobLog.info('handing the grid back: shutting down');
          return await park(job, token);
        }
        // The triage job ends it as cancelled (and refunds) once its grid jobs have stopped.
        await store.finish(triageId, { status: 'cancelled' });
        jobLog.info('cancelled');
        return 'cancelled';
      }
      if (err instanceof TriageNotFoundError) throw new UnrecoverableError(err.message);
      jobLog.error({ err }, 'grid step failed');
      throw err;
    } finally {
      done();
    }
  }

  const worker = new Worker<TriageJobData>(
    TRIAGE_QUEUE,
    (job, token, signal) => (job.name === GRID_JOB ? processGrid(job, token, signal) : processTriage(job, token)),
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
        worker: new Worker(
          MAINTENANCE_QUEUE,
          () =>
            sweepExpired({
              store,
              storage: options.storage,
              log,
              ...(options.credits && { credits: options.credits }),
            }),
          {
            connection: options.connection,
            prefix: options.prefix,
            concurrency: 1,
            autorun: options.autorun ?? true,
          },
        ),
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
    async close(deadlineMs = WORKER_SETTINGS.shutdownDeadlineMs.default) {
      clearInterval(beating);
      const timer = setTimeout(() => {
        for (const running of active.values())
          for (const controller of running) controller.abort(new StopSignal('shutdown'));
      }, deadlineMs);
      try {
        await Promise.all([worker.close(), maintenance?.worker.close()]);
        await Promise.all([maintenance?.queue.close(), queue.close()]);
        await store.dropWorker(id).catch(() => {});
      } finally {
        clearTimeout(timer);
        await options.subscriber.unsubscribe().catch(() => {});
      }
    },
  };
}
