/**
 * The BullMQ side of the worker: one triage job per photo set, one grid per processor invocation. After
 * each grid the job is parked (moved to delayed, due now) so that other jobs' grids run in between: a
 * 16-photo job never waits behind a 2,000-photo one. Concurrency is 1: one photo, one sharp pipeline.
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { RedisClient } from '@triage/queue';
import { hostname } from 'node:os';
import { cancelChannel, MAINTENANCE_QUEUE, TRIAGE_QUEUE, workersKey, type TriageJobData, type WorkerHeartbeat } from '@triage/queue';
import { sweepExpired } from './expiry.js';
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

export async function createTriageWorker(options: TriageWorkerOptions): Promise<TriageWorker> {
  const { store, log } = options;
  const active = new Map<string, AbortController>();

  await options.subscriber.subscribe(cancelChannel(options.prefix));
  options.subscriber.on('message', (_channel: string, triageId: string) => {
    const controller = active.get(triageId);
    if (controller) {
      log.info({ triageId }, 'cancel requested: stopping the running step');
      controller.abort(new StopSignal('cancel'));
    }
  });

  async function park(job: Job<TriageJobData>, token: string | undefined): Promise<never> {
    // Back to the queue, due now, without counting an attempt: other jobs' grids get their turn first.
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  async function processStep(job: Job<TriageJobData>, token: string | undefined, bullSignal?: AbortSignal): Promise<string> {
    const { triageId } = job.data;
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort(new StopSignal('cancel')), { once: true });
    active.set(triageId, controller);
    const jobLog = log.child({ triageId });
    try {
      const outcome = await runStep(
        { ...options, log: jobLog, jobLog: (line) => job.log(line) },
        triageId,
        controller.signal,
      );
      if (outcome.kind === 'grid') return await park(job, token);
      return outcome.status;
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const stop = controller.signal.reason;
      if (controller.signal.aborted && stop instanceof StopSignal) {
        if (stop.reason === 'cancel') {
          await store.finish(triageId, { status: 'cancelled' });
          jobLog.info('cancelled');
          return 'cancelled';
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
    if (!job) return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    log.error({ triageId: job.data.triageId, err }, 'triage failed');
    store
      .finish(job.data.triageId, { status: 'failed', errorMessage: `Triage failed: ${err.message}` })
      .catch((e: unknown) => log.error({ err: e }, 'could not record the failure'));
  });
  worker.on('error', (err) => log.error({ err }, 'worker error'));

  // The retention sweep: a BullMQ job scheduler, so that however many workers run it fires once per period.
  const maintenance: { queue: Queue; worker: Worker } | null = options.sweepEveryMs
    ? {
        queue: new Queue(MAINTENANCE_QUEUE, { connection: options.connection, prefix: options.prefix }),
        worker: new Worker(MAINTENANCE_QUEUE, () => sweepExpired({ store, storage: options.storage, log }), {
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
    await store.redis.hset(workersKey(options.prefix), id, JSON.stringify(beat));
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
        await store.redis.hdel(workersKey(options.prefix), id).catch(() => {});
      } finally {
        clearTimeout(timer);
        await options.subscriber.unsubscribe().catch(() => {});
      }
    },
  };
}
