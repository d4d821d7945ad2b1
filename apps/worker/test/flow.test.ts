/**
 * A triage as a flow of grid jobs: model answers awaited while the next grid is built (one grid's image work
 * at a time), turns shared by user, and a small job's grids going ahead of a big job's remaining ones.
 * Orders are decided by the queue (priorities, one step at a time where the test says so), not by timing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TRIAGE_JOB, type TriageJobData } from '@triage/queue';
import { OfflineProvider, type GridAnswer, type GridRequest } from '@triage/vision';
import type { Job } from 'bullmq';
import {
  ended,
  eventually,
  expectAccountedFor,
  IMAGES,
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
import type { ImageOps } from '../src/index.js';

/** A remote model's stand-in: the offline judge's answers, held back until the test lets them go. */
class HeldProvider extends OfflineProvider {
  // Judged elsewhere, as a remote model is: the worker does not run it under its image gate.
  override readonly local = false;
  private readonly waiting: (() => void)[] = [];
  private holding = true;

  get held(): number {
    return this.waiting.length;
  }

  override async judge(request: GridRequest): Promise<GridAnswer> {
    if (this.holding) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.judge(request);
  }

  release(): void {
    this.holding = false;
    for (const answer of this.waiting.splice(0)) answer();
  }
}

/** The real image work, counting how many calls run at once. */
function countingImages(): { images: ImageOps; most: () => number } {
  let now = 0;
  let most = 0;
  const counted =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      most = Math.max(most, ++now);
      try {
        return await op(...args);
      } finally {
        now--;
      }
    };
  return {
    images: {
      thumbnail: counted(IMAGES.thumbnail),
      thumbnailFromEmbedded: counted(IMAGES.thumbnailFromEmbedded),
      thumbnailFromDcScans: counted(IMAGES.thumbnailFromDcScans),
      composeGrid: counted(IMAGES.composeGrid),
    },
    most: () => most,
  };
}

let env: Env;
let worker: InProcessWorker | undefined;

beforeAll(async () => {
  await sampleSet();
  env = await setup();
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});
afterAll(async () => {
  await env?.close();
  await removeSampleSet();
});

/** The order in which triage jobs (not grid jobs) complete on `w`. */
function completionOrder(w: InProcessWorker): string[] {
  const order: string[] = [];
  w.worker.worker.on('completed', (job: Job<TriageJobData>) => {
    if (job.name === TRIAGE_JOB) order.push(job.data.triageId);
  });
  return order;
}

describe('a triage as a flow of grid jobs', () => {
  it('builds the next grids while earlier ones wait for their answers, one grid’s image work at a time', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS }); // 60 photos: 5 coarse grids of 12
    const vision = new HeldProvider();
    const counting = countingImages();
    worker = await inProcessWorker(env, { vision, images: counting.images, concurrency: 4 });
    // Four grids built and sent while no answer has come back: the builds did not wait for the model.
    await eventually(async () => vision.held >= 4);
    expect((await env.store.status(job.triageId))!.grids_done).toBe(0);
    vision.release();
    const status = await waitForStatus(env, job.triageId, ended);
    expect(status.status).toBe('completed');
    expect(status.final_selected).toBe(6);
    // Never two image operations at once, though four grid steps ran together; each grid judged once.
    expect(counting.most()).toBe(1);
    const { repeats } = await expectAccountedFor(env.store, job.triageId, 60, 0);
    expect(repeats).toBe(0);
  });

  it('shares turns by user: one user’s three jobs run in order, another user’s one job beside the first', async () => {
    const { files } = await sampleSet();
    const some = files.slice(0, 36); // 3 coarse grids each
    const a = [];
    for (let i = 0; i < 3; i++)
      a.push((await stageJob(env, some, { layouts: SMALL_GRIDS, userId: 'user-a' })).triageId);
    const b = (await stageJob(env, some, { layouts: SMALL_GRIDS, userId: 'user-b' })).triageId;
    // All four waiting before any worker runs: submitted at the same moment, as far as the queue can tell.
    worker = await inProcessWorker(env, { concurrency: 1, autorun: false });
    const order = completionOrder(worker);
    void worker.worker.worker.run();
    for (const id of [...a, b]) expect((await waitForStatus(env, id, ended)).status).toBe('completed');
    await eventually(async () => order.length === 4);
    const at = (id: string) => order.indexOf(id);
    expect(at(a[0]!)).toBeLessThan(at(a[1]!));
    expect(at(a[1]!)).toBeLessThan(at(a[2]!));
    // B's one job ends no later than the median of A's three.
    expect(at(b)).toBeLessThan(at(a[1]!));
  });

  it('a small job submitted while a big one runs goes ahead of the big one’s remaining grids', async () => {
    const { files } = await sampleSet();
    const big = (await stageJob(env, [...files, ...files], { layouts: SMALL_GRIDS, userId: 'user-a' })).triageId; // 10 coarse grids
    worker = await inProcessWorker(env, { concurrency: 1 });
    await waitForStatus(env, big, (s) => s.grids_done >= 1);
    const small = (await stageJob(env, files.slice(0, 12), { layouts: SMALL_GRIDS, userId: 'user-c' })).triageId;
    const bigThen = (await env.store.status(big))!.grids_done;
    expect((await waitForStatus(env, small, ended)).status).toBe('completed');
    const bigNow = (await env.store.status(big))!;
    // Both of the small job's grids ran next, after at most the big job's grid in flight when it arrived.
    expect(bigNow.grids_done - bigThen).toBeLessThanOrEqual(1);
    expect(bigNow.status).toBe('processing');
    expect((await waitForStatus(env, big, ended)).status).toBe('completed');
  });
});
