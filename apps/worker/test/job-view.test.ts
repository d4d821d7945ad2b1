/**
 * What an operator sees of a triage's BullMQ job (Bull Board reads these fields): its progress, naming the
 * phase and grid, as the job advances; a cancelled triage ending as a failed job with a clear reason, never
 * among the completed ones; and per-grid starts that do not use up the job's retry attempts.
 */
import { QueueEvents, type Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GRID_JOB, type TriageJobData } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import type { JobProgress } from '../src/index.js';
import {
  ended,
  inProcessWorker,
  REDIS_URL,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  stageJob,
  waitForStatus,
  type Env,
  type InProcessWorker,
} from './harness.js';

let env: Env;
let events: QueueEvents;
let worker: InProcessWorker | undefined;

beforeAll(async () => {
  await sampleSet();
  env = await setup();
  events = new QueueEvents(env.queue.name, { connection: { url: REDIS_URL }, prefix: env.prefix });
  await events.waitUntilReady();
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});
afterAll(async () => {
  await events?.close();
  await env?.close();
  await removeSampleSet();
});

/** Resolves when the job with this id ends in BullMQ: its final state and the job as stored then. */
function jobEnded(id: string): Promise<{ state: 'completed' | 'failed'; reason?: string }> {
  return new Promise((resolvePromise) => {
    const onCompleted = ({ jobId }: { jobId: string }) => jobId === id && done({ state: 'completed' });
    const onFailed = ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
      jobId === id && done({ state: 'failed', reason: failedReason });
    function done(result: { state: 'completed' | 'failed'; reason?: string }) {
      events.off('completed', onCompleted);
      events.off('failed', onFailed);
      resolvePromise(result);
    }
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
  });
}

describe('the BullMQ job as the dashboard shows it', () => {
  it('reports its progress after every grid (phase, grid, percent), ending at 100 % complete; retries untouched', async () => {
    const { files } = await sampleSet();
    const seen: JobProgress[] = [];
    const onProgress = ({ data }: { jobId: string; data: unknown }) => void seen.push(data as JobProgress);
    events.on('progress', onProgress);
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS, passes: 2 });
    const finished = jobEnded(job.triageId);
    worker = await inProcessWorker(env);
    expect(await finished).toEqual({ state: 'completed' });
    events.off('progress', onProgress);

    const stored = (await env.queue.getJob(job.triageId)) as Job<TriageJobData>;
    const status = (await env.store.status(job.triageId))!;
    expect(stored.progress).toEqual({
      progress: 100,
      phase: 'complete',
      grid: `${status.grids_done}/${status.grids_total}`,
      grids_done: status.grids_done,
      grids_total: status.grids_total,
      message: 'Complete',
    });
    // One event per step: both passes, each grid named as the webapp's status names it.
    const phases = new Set(seen.map((p) => p.phase));
    expect(phases).toEqual(new Set(['coarse_pass', 'fine_pass', 'complete']));
    for (const p of seen.filter((x) => x.phase === 'coarse_pass' || x.phase === 'fine_pass')) {
      expect(p.message).toBe(`${p.phase === 'coarse_pass' ? 'Coarse' : 'Fine'} selection: grid ${p.grid}`);
    }
    expect(seen.length).toBeGreaterThanOrEqual(status.grids_done);

    // Each grid was one child job of the triage's, whose outcome the triage job keeps (the grid job itself is
    // removed once complete), and each was sent to the provider once: attempts stay for real failures.
    const children = await stored.getChildrenValues();
    expect(Object.keys(children)).toHaveLength(status.grids_done);
    expect(Object.values(children).every((v) => v === 'recorded')).toBe(true);
    expect(await env.queue.getJobs(['completed']).then((jobs) => jobs.filter((j) => j.name === GRID_JOB))).toEqual([]);
    expect(Object.values(await env.store.attempts(job.triageId)).every((n) => n === 1)).toBe(true);
    // The triage's own job: started once, then once after each pass (coarse, fine), never failed.
    expect(stored.attemptsStarted).toBe(3);
    expect(stored.attemptsMade).toBeLessThan(stored.opts.attempts ?? 1);
    expect(stored.failedReason ?? null).toBeNull();
  });

  it('a cancelled triage ends as a failed job with the reason "cancelled by user", not as a completed one', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS });
    const finished = jobEnded(job.triageId);
    // Reads slowed down so that the job is still running when the cancel arrives.
    worker = await inProcessWorker(env, { storage: new LocalStorage({ root: env.storageDir, readLatencyMs: 20 }) });
    await waitForStatus(env, job.triageId, (s) => s.grids_done >= 1);
    await env.store.requestCancel(job.triageId);
    expect((await waitForStatus(env, job.triageId, ended)).status).toBe('cancelled');
    expect(await finished).toEqual({ state: 'failed', reason: 'cancelled by user' });
    const stored = (await env.queue.getJob(job.triageId))!;
    expect(await stored.getState()).toBe('failed');
    expect(stored.failedReason).toBe('cancelled by user');
    const completed = await env.queue.getJobs(['completed']);
    expect(completed.map((j) => j.id)).not.toContain(job.triageId);
    // The triage keeps its own status: cancelled, not failed.
    expect((await env.store.status(job.triageId))!.status).toBe('cancelled');
  });
});
