/**
 * Whole jobs against the local Storage server when storage misbehaves as the real one does: transforms the
 * server does not serve, a renderer that is down, an outage, a wrong key at start. No photo is lost to any
 * of them.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sharp } from '@triage/images';
import { withExif } from '@triage/images/testing';
import type { PhotoInput } from '@triage/queue';
import { SupabaseStorage } from '@triage/storage';
import { FakeSupabase } from '@triage/storage/testing';
import { OfflineProvider } from '@triage/vision';
import { pino } from 'pino';
import { sweepExpired } from '../src/expiry.js';
import type { OutagePolicy } from '../src/outage.js';
import {
  BUCKET,
  ended,
  inProcessWorker,
  putSamples,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  spawnWorker,
  submit,
  waitForStatus,
  type Env,
  type InProcessWorker,
  type WorkerProcess,
} from './harness.js';

let env: Env;
let fake: FakeSupabase;
let worker: InProcessWorker | undefined;
const children: WorkerProcess[] = [];

function supabase(key = fake.serviceRoleKey): SupabaseStorage {
  return new SupabaseStorage({
    url: fake.url,
    serviceRoleKey: key,
    retries: 1,
    backoff: { baseMs: 10, maxMs: 20 },
    timeouts: { responseMs: 5000, stallMs: 5000, requestMs: 5000 },
  });
}

async function startWorker(options: { transforms?: boolean; outage?: Partial<OutagePolicy> } = {}): Promise<void> {
  worker = await inProcessWorker(env, {
    storage: supabase(),
    vision: new OfflineProvider(),
    storageTransforms: options.transforms ?? false,
    outagePolicy: { waitMs: 50, maxWaitMs: 200, ...options.outage },
  });
}

async function stopWorker(): Promise<void> {
  await worker?.close();
  worker = undefined;
}

function upload(count: number): Promise<{ id: string; photos: PhotoInput[] }> {
  return putSamples(fake, count);
}

async function runJob(count: number, options: { transforms?: boolean } = {}) {
  const { id, photos } = await upload(count);
  await submit(env, id, photos, { layouts: SMALL_GRIDS });
  await startWorker(options);
  const status = await waitForStatus(env, id, ended);
  await stopWorker();
  return { id, status, selected: await env.store.selected(id) };
}

beforeAll(async () => {
  await sampleSet();
  env = await setup();
  fake = await FakeSupabase.start({
    render: async (object, t) => ({
      body: await sharp(object.body).resize(t.width, t.height, { fit: 'cover' }).webp().toBuffer(),
      contentType: 'image/webp',
    }),
  });
});
beforeEach(() => {
  fake.transforms = 'on';
  fake.rendererDown = null;
  fake.outage = null;
  fake.clearFaults();
  fake.clearLog();
});
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
  fake.outage = null;
  await stopWorker();
});
afterAll(async () => {
  await fake.close();
  await env.close();
  await removeSampleSet();
});

describe('transforms the server does not make', () => {
  it('a self-hosted server with transforms off (route 404): the job reads originals and keeps its picks', async () => {
    fake.transforms = 'off-self-hosted';
    const { status } = await runJob(24, { transforms: true });
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);
    expect(status.final_selected).toBeGreaterThan(0);
    // The first refusal turned transforms off for the process.
    expect(fake.log('render')).toHaveLength(1);
  });

  it('a hosted project without the feature (403 FeatureNotEnabled): the same', async () => {
    fake.transforms = 'off-hosted';
    const { status } = await runJob(24, { transforms: true });
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);
    expect(fake.log('render')).toHaveLength(1);
  });

  it('a renderer that answers 500 after a delay costs a few render requests, then the job runs as without transforms', async () => {
    const plain = await runJob(24, { transforms: false });
    expect(fake.log('render')).toHaveLength(0);
    fake.clearLog();
    fake.rendererDown = { delayMs: 300 };
    const degraded = await runJob(24, { transforms: true });
    expect(degraded.status.status).toBe('completed');
    expect(degraded.status.photos_failed).toBe(0);
    // At most the breaker's three failures, whatever the number of photos and passes.
    expect(fake.log('render').length).toBeLessThanOrEqual(3);
    expect(fake.log('render').every((r) => r.status === 500)).toBe(true);
    // Read from the same originals, the same photos are picked.
    expect(degraded.selected).toEqual(plain.selected);
  });
});

describe('a storage outage pauses the job, it does not drop photos', () => {
  it('503 from everything: the job waits (status and job log say so) and completes with every photo once storage is back', async () => {
    const { id, photos } = await upload(24);
    await submit(env, id, photos, { layouts: SMALL_GRIDS });
    fake.outage = 503;
    await startWorker({ outage: { limitMs: 10 * 60_000 } });
    const paused = await waitForStatus(
      env,
      id,
      (s) => s.status === 'processing' && /storage unavailable/.test(s.error_message ?? ''),
    );
    expect(paused.error_message).toMatch(/503/);
    expect(paused.grids_done).toBe(0);
    const logs = await env.queue.getJobLogs(id);
    expect(logs.logs.some((line) => /storage unavailable/.test(line))).toBe(true);
    // Storage comes back: the job resumes where it was.
    fake.outage = null;
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);
    expect(status.error_message).toBeNull();
  });

  it('storage back after an outage past the limit: the outage leaves the record and the status (a later one waits again)', async () => {
    // Made exact by the storage's answers, not by time: the first grid's photos keep answering 503 and the
    // first reachability probe does too (an outage, noted at once past a 1 ms limit); every later probe
    // answers, as does every other photo.
    const { id, photos } = await upload(24);
    const firstGrid = new Set(photos.slice(0, 12).map((p) => p.path));
    fake.inject({ op: 'bucket', times: 1, fault: { kind: 'status', status: 503 } });
    for (const path of firstGrid) fake.inject({ path, fault: { kind: 'status', status: 503 } });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, passes: 1 });
    await startWorker({ outage: { limitMs: 1 } });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(12);
    expect(status.error_message).toBeNull();
    expect(await env.store.outage(id)).toBeNull();
  });

  it('a photo whose reads answered 503 while the rest of storage answers is read again, not failed', async () => {
    // The moment an outage ends between a failed read and the worker's reachability check, made exact: the
    // driver's two attempts at the photo's first read fail, and storage answers the probe and what follows.
    // The photo carries a capture time, which the read made again must keep (it orders and groups scenes).
    const { id, photos } = await upload(8);
    const dated = photos[3]!.path;
    fake.put(BUCKET, dated, withExif(fake.get(BUCKET, dated)!.body, { captured: '2026:05:01 10:03:00' }), {
      contentType: 'image/jpeg',
    });
    fake.inject({ path: dated, times: 2, fault: { kind: 'status', status: 503 } });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, passes: 1 });
    await startWorker();
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);
    expect(fake.log(undefined, dated).map((r) => r.status)).toEqual(expect.arrayContaining([503, 503]));
    expect((await env.store.coarseVerdicts(id)).get(3)?.captured).toBe(Date.UTC(2026, 4, 1, 10, 3));
  });

  it('one object that keeps answering 503 while the rest of storage answers fails its photo only', async () => {
    const { id, photos } = await upload(8);
    fake.inject({ path: photos[3]!.path, fault: { kind: 'status', status: 503 } });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, passes: 1 });
    await startWorker();
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(1);
    const [record] = await env.store.gridRecords(id);
    expect(record!.failures).toEqual([expect.objectContaining({ reason: expect.stringMatching(/503/) })]);
  });

  it('an outage longer than the limit fails the photos it hits, with the reason', async () => {
    const { id, photos } = await upload(12);
    await submit(env, id, photos, { layouts: SMALL_GRIDS, passes: 1 });
    fake.outage = 503;
    await startWorker({ outage: { limitMs: 100 } });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(12);
    const [record] = await env.store.gridRecords(id);
    expect(record!.failures[0]!.reason).toMatch(/503/);
  });
});

describe('removal', () => {
  it('the retention sweep with a key that removes nothing (200 []) reports a failure and keeps the triage for the next sweep', async () => {
    const { id, photos } = await upload(2);
    await submit(env, id, photos, { layouts: SMALL_GRIDS });
    await env.store.start(id);
    await env.store.finish(id, { status: 'completed', selected: [] });
    const later = Date.now() + (env.store.retentionSeconds + 60) * 1000;
    const result = await sweepExpired(
      { store: env.store, storage: supabase(fake.anonKey), log: pino({ level: 'silent' }) },
      later,
    );
    expect(result.removed).toBe(0);
    expect(result.failed).toBeGreaterThanOrEqual(1);
    expect(await env.store.meta(id)).not.toBeNull();
    expect(fake.has(BUCKET, photos[0]!.path)).toBe(true);
  });
});

describe('the start-up check', () => {
  it('a worker with the anon key in place of the service key stops at start, naming the setting', async () => {
    const child = spawnWorker(env, {
      STORAGE_DRIVER: 'supabase',
      SUPABASE_URL: fake.url,
      SUPABASE_SERVICE_ROLE_KEY: fake.anonKey,
    });
    children.push(child);
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(child.output()).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    expect(child.output()).not.toContain(fake.anonKey);
  });

  it('a worker pointed past the gateway (no /storage/v1) stops at start, naming SUPABASE_URL', async () => {
    const bare = await FakeSupabase.start({ gateway: false });
    try {
      const child = spawnWorker(env, {
        STORAGE_DRIVER: 'supabase',
        SUPABASE_URL: bare.url,
        SUPABASE_SERVICE_ROLE_KEY: bare.serviceRoleKey,
      });
      children.push(child);
      const { code } = await child.exited;
      expect(code).toBe(1);
      expect(child.output()).toMatch(/SUPABASE_URL/);
    } finally {
      await bare.close();
    }
  });
});
