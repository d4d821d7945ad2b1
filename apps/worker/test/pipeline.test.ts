/**
 * A whole two-pass triage through the real queue, Redis, sharp and local storage, with the worker in this
 * process so that sharp's pipeline counters can be sampled throughout.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sharpCounters, sharpInFlight } from '@triage/images';
import { loadSelection } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import {
  ended,
  inProcessWorker,
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
/** The real local driver, noting each whole-file read; `holdNext` makes the next one wait for its signal. */
class WatchedStorage extends LocalStorage {
  /** The paths read whole, in the order the reads started (a read asked with an aborted signal is refused
   * at once, by this driver as by every other, and so is not one). */
  readonly reads: string[] = [];
  private held?: () => void;
  /** Resolves when the next whole-file read has started; that read then ends only when its signal aborts. */
  holdNext(): Promise<void> {
    return new Promise((resolve) => (this.held = resolve));
  }
  override async readToFile(...args: Parameters<LocalStorage['readToFile']>) {
    if (!args[2]?.signal?.aborted) this.reads.push(args[1]);
    const held = this.held;
    this.held = undefined;
    if (held) {
      // A read that lasts until the job is stopped, as a slow remote store's would.
      const signal = args[2]?.signal;
      if (!signal) throw new Error('a held read needs a signal to end it');
      held();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      signal.throwIfAborted();
    }
    return super.readToFile(...args);
  }
}
let storage: WatchedStorage;
let worker: InProcessWorker | undefined;

async function startInProcessWorker(): Promise<void> {
  storage = new WatchedStorage({ root: env.storageDir });
  worker = await inProcessWorker(env, { storage });
}

beforeAll(async () => {
  await sampleSet();
});
afterAll(async () => {
  await removeSampleSet();
});

describe('a two-pass triage of 60 generated photos', () => {
  beforeAll(async () => {
    env = await setup();
  });
  afterEach(async () => {
    await worker?.close();
    worker = undefined;
  });
  afterAll(async () => {
    await env.close();
  });

  it('completes, keeps no flawed photo, and never runs more than one sharp pipeline', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { target: '10%' });

    let maxInFlight = 0;
    let samples = 0;
    let busy = 0;
    const sampler = setInterval(() => {
      maxInFlight = Math.max(maxInFlight, sharpInFlight());
      samples++;
      if (sharpCounters().process > 0) busy++;
    }, 1);
    await startInProcessWorker();
    const status = await waitForStatus(env, job.triageId, ended);
    clearInterval(sampler);

    expect(status.status).toBe('completed');
    expect(status.total_input).toBe(60);
    expect(status.photos_failed).toBe(3);
    expect(status.final_selected).toBe(6); // K = floor(60 × 10 / 100)
    expect(status.pass1_survivors).toBeGreaterThanOrEqual(6);
    expect(status.progress).toBeNull();
    expect(status.grids_done).toBe(status.grids_total);

    const selected = await loadSelection(env.store, job.triageId);
    expect(selected).toHaveLength(6);
    const kinds = selected.map((s) => job.files[s.index]!);
    expect(kinds.map((f) => f.kind).filter((k) => k !== 'good' && k !== 'burst')).toEqual([]);
    // At most one frame of each burst.
    const bursts = kinds.filter((f) => f.kind === 'burst').map((f) => f.burst);
    expect(new Set(bursts).size).toBe(bursts.length);
    expect(selected.map((s) => s.rank)).toEqual([1, 2, 3, 4, 5, 6]);

    // Sharp was really sampled while it worked, and never had a second pipeline queued or running.
    expect(samples).toBeGreaterThan(50);
    expect(busy).toBeGreaterThan(0);
    expect(maxInFlight).toBe(1);
  });

  it('turns unreadable files into placeholders with reasons, keeping every other photo in its cell', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS });
    await startInProcessWorker();
    const status = await waitForStatus(env, job.triageId, ended);
    expect(status.status).toBe('completed');

    const coarse = await env.store.coarseVerdicts(job.triageId);
    expect(coarse.size).toBe(60); // every photo accounted for
    const failures = [...coarse].filter(([, v]) => v.failure).map(([i, v]) => [job.files[i]!.defect, v.failure]);
    expect(failures).toHaveLength(3);
    for (const [defect, reason] of failures) {
      if (defect === 'empty file') expect(reason).toMatch(/empty file/);
      else if (defect === 'not an image') expect(reason).toMatch(/not an image/);
      else expect(reason).toMatch(/corrupt or truncated/);
    }

    const records = await env.store.gridRecords(job.triageId);
    const coarseRecords = records.filter((r) => r.pass === 'coarse');
    expect(coarseRecords.map((r) => r.photos.length).reduce((a, b) => a + b)).toBe(60);
    for (const record of coarseRecords) {
      expect(record.photos).toEqual(Array.from({ length: record.photos.length }, (_, i) => record.photos[0]! + i));
      expect(record.labels[0]).toBe('A1');
      for (const failure of record.failures) {
        // The failed photo keeps its cell, and its cell is never picked.
        expect(record.photos).toContain(failure.index);
        expect(record.votes[String(failure.index)]).toBeUndefined();
      }
    }
    // Progress was published per grid: 5 coarse grids of 12.
    expect(coarseRecords).toHaveLength(5);
  });

  it('a 12-photo job submitted after a 120-photo one does not wait for the whole big job', async () => {
    const { files } = await sampleSet();
    // 10 coarse grids: far more than the grid steps a worker takes at once (WORKER_CONCURRENCY, 4).
    const big = await stageJob(env, [...files, ...files], { layouts: SMALL_GRIDS });
    const small = await stageJob(env, files.slice(0, 12), { layouts: SMALL_GRIDS });
    await startInProcessWorker();
    await waitForStatus(env, small.triageId, ended);
    const bigStatus = await env.store.status(big.triageId);
    expect(bigStatus?.status).toBe('processing');
    await waitForStatus(env, big.triageId, ended);
    const bigRecords = await env.store.gridRecords(big.triageId);
    const smallRecords = await env.store.gridRecords(small.triageId);
    const lastSmall = Math.max(...smallRecords.map((r) => r.finishedAt));
    expect(bigRecords.filter((r) => r.finishedAt > lastSmall).length).toBeGreaterThan(2);
  });

  it('stops a running job within one photo when it is cancelled', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS });
    await startInProcessWorker();
    await waitForStatus(env, job.triageId, (s) => s.grids_done >= 1);
    // Mid-grid: the worker waits on a photo of a grid after the first, and can only go on if it is stopped.
    await storage.holdNext();
    const reads = storage.reads.length;
    const held = storage.reads.at(-1)!;
    const recorded = (await env.store.status(job.triageId))!.grids_done;
    await env.store.requestCancel(job.triageId);
    const status = await waitForStatus(env, job.triageId, ended);
    expect(status.status).toBe('cancelled');
    // No photo after the held one was started (the one decoding meanwhile may still have needed its whole
    // file), and the interrupted grid was never recorded.
    const photoIndex = (path: string) => Number(/\/(\d{4})-[^/]*$/.exec(path)![1]);
    expect(storage.reads.slice(reads).filter((path) => photoIndex(path) >= photoIndex(held))).toEqual([]);
    expect(await env.store.gridRecords(job.triageId)).toHaveLength(recorded);
    expect(recorded).toBeLessThan(status.grids_total);
  });
});
