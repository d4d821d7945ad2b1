/** The retention sweep: stored photos first, records only once storage is clean, retried when it is not. */
import { access } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { finishedKey, MAINTENANCE_QUEUE, TriageStore } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { sweepExpired } from '../src/index.js';
import {
  BUCKET,
  ended,
  inProcessWorker,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  stageJob,
  waitForStatus,
  type Env,
} from './harness.js';

let env: Env;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  env = await setup();
});
afterAll(async () => {
  await env.close();
  await removeSampleSet();
});

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

class BrokenStorage extends LocalStorage {
  override async remove(): Promise<void> {
    throw new Error('storage is down');
  }
}

describe('retention', () => {
  it('removes a finished triage’s stored photos and then its records, once past the retention; a storage failure is retried later', async () => {
    const { files } = await sampleSet();
    // One second of retention, a weekly sweep: the test calls the sweep itself.
    const store = new TriageStore(env.redis, { prefix: env.prefix, retentionSeconds: 1 });
    const worker = await inProcessWorker(env, { store, sweepEveryMs: 7 * 24 * 3600 * 1000 });
    try {
      const job = await stageJob(env, files.slice(0, 12), { layouts: SMALL_GRIDS });
      expect((await waitForStatus(env, job.triageId, ended)).status).toBe('completed');
      const photos = (await store.meta(job.triageId))!;
      const stored = Array.from({ length: 12 }, (_, i) => i);
      const paths = (await store.photos(job.triageId, stored)).map((p) => env.storage.filePath(BUCKET, p.path));
      expect(await Promise.all(paths.map(exists))).toEqual(paths.map(() => true));

      // Not yet past the retention: nothing happens.
      expect(await sweepExpired({ store, storage: env.storage, log })).toEqual({ removed: 0, failed: 0 });

      const later = Date.now() + 5000;
      const broken = new BrokenStorage({ root: env.storageDir });
      expect(await sweepExpired({ store, storage: broken, log }, later)).toEqual({ removed: 0, failed: 1 });
      expect(await store.meta(job.triageId)).not.toBeNull();
      expect(await Promise.all(paths.map(exists))).toEqual(paths.map(() => true));

      expect(await sweepExpired({ store, storage: env.storage, log }, later)).toEqual({ removed: 1, failed: 0 });
      expect(await Promise.all(paths.map(exists))).toEqual(paths.map(() => false));
      expect(await store.meta(job.triageId)).toBeNull();
      expect(await env.redis.zscore(finishedKey(env.prefix), job.triageId)).toBeNull();
      expect(await env.redis.exists(...Object.values(store.keys(photos.triageId)))).toBe(0);

      // The sweep is a BullMQ job scheduler, one per queue whatever the number of workers.
      const maintenance = new Queue(MAINTENANCE_QUEUE, { connection: env.redis, prefix: env.prefix });
      const schedulers = await maintenance.getJobSchedulers();
      await maintenance.close();
      expect(schedulers.map((s) => s.key)).toContain('retention-sweep');
    } finally {
      await worker.close();
    }
  });
});
