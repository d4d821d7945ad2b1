/**
 * Whole jobs through the production backends: the real @supabase/storage-js and @anthropic-ai/sdk clients
 * talking to local servers that speak the Storage and Messages wire protocols, faults included.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { capacity, profileFor, type VisionProfile } from '@triage/core';
import { sharp } from '@triage/images';
import type { PhotoInput } from '@triage/queue';
import { SupabaseStorage } from '@triage/storage';
import { FakeSupabase } from '@triage/storage/testing';
import { AnthropicProvider, OfflineProvider, type VisionProvider } from '@triage/vision';
import { FakeAnthropic } from '@triage/vision/testing';
import {
  BUCKET,
  ended,
  inProcessWorker,
  putSamples,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  submit,
  waitForStatus,
  type Env,
  type InProcessWorker,
} from './harness.js';

const HAIKU: VisionProfile = profileFor('claude-haiku-4-5');

let env: Env;
let storageFake: FakeSupabase;
let visionFake: FakeAnthropic;
let worker: InProcessWorker | undefined;

function supabase(): SupabaseStorage {
  return new SupabaseStorage({
    url: storageFake.url,
    serviceRoleKey: storageFake.serviceRoleKey,
    retries: 2,
    backoff: { baseMs: 10, maxMs: 40 },
    // Long enough for a loaded machine's honest answer, short enough that the injected stalls end the test soon.
    timeouts: { responseMs: 5000, stallMs: 2000, requestMs: 20_000 },
  });
}

function anthropic(): AnthropicProvider {
  return new AnthropicProvider({
    apiKey: 'test-key',
    baseURL: visionFake.url,
    maxRetries: 1,
    timeoutMs: 5000,
    overloadedRetries: 1,
    overloadedBackoffMs: 20,
  });
}

async function startWorker(options: { vision?: VisionProvider; transforms?: boolean } = {}): Promise<void> {
  worker = await inProcessWorker(env, {
    storage: supabase(),
    vision: options.vision ?? anthropic(),
    storageTransforms: options.transforms ?? false,
  });
}

/** Uploads the sample photos (readable ones) to the fake storage under a new job's folder. */
function upload(
  count: number,
  extra?: (photo: PhotoInput, bytes: Buffer) => Promise<void>,
): Promise<{ id: string; photos: PhotoInput[] }> {
  return putSamples(storageFake, count, extra);
}

beforeAll(async () => {
  await sampleSet();
  env = await setup();
  storageFake = await FakeSupabase.start({
    // The service resizes like imgproxy would: cover to the asked size, as WebP.
    render: async (object, t) => ({
      body: await sharp(object.body).resize(t.width, t.height, { fit: 'cover' }).webp().toBuffer(),
      contentType: 'image/webp',
    }),
  });
  visionFake = await FakeAnthropic.start({ apiKey: 'test-key', retryAfterMs: 10 });
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  storageFake.clearFaults();
  storageFake.clearLog();
  visionFake.clearFaults?.();
});
afterAll(async () => {
  await storageFake.close();
  await visionFake.close();
  await env.close();
  await removeSampleSet();
});

describe('Supabase Storage and Anthropic together', () => {
  it('a job over originals served by Storage and judged by the Messages API completes, with tokens and cost', async () => {
    const { id, photos } = await upload(24);
    const before = visionFake.requests.length;
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU });
    await startWorker();
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.final_selected).toBe(2);
    expect(status.photos_failed).toBe(0);
    expect(status.tokens.input).toBeGreaterThan(0);
    expect(status.tokens.output).toBeGreaterThan(0);
    expect(status.cost_usd).toBeCloseTo((status.tokens.input * 1 + status.tokens.output * 5) / 1e6, 6);

    const requests = visionFake.requests.slice(before);
    expect(requests).toHaveLength(status.grids_done);
    for (const r of requests) {
      expect(r.images).toHaveLength(1);
      expect(r.contentOrder[0]).toBe('image');
      expect(r.images[0]!.width).toBeLessThanOrEqual(1092);
      expect(r.images[0]!.height).toBeLessThanOrEqual(1092);
      expect(r.images[0]!.downsized).toBe(false);
      expect(r.keys).not.toContain('temperature');
      expect(r.labels[0]).toBe('A1');
      expect(r.authorized).toBe(true);
    }
    // Every original was downloaded through the authenticated object route.
    expect(storageFake.log('download').length).toBeGreaterThanOrEqual(24);
  });

  it('phase 3: a client thumbnail is used when it covers the cell and has the aspect ratio, the original otherwise', async () => {
    const { id, photos } = await upload(24, async (photo, bytes) => {
      const index = Number(photo.path.split('/').pop()!.split('-')[0]);
      // Even photos get a 400 px copy (big enough for both passes), odd ones a 64 px copy (too small).
      const side = index % 2 === 0 ? 400 : 64;
      const thumb = await sharp(bytes)
        .resize(side, Math.round((side * 3) / 4))
        .jpeg()
        .toBuffer();
      photo.thumbnailPath = photo.path.replace(/\.jpg$/, '.thumb.jpg');
      storageFake.put(BUCKET, photo.thumbnailPath, thumb, { contentType: 'image/jpeg' });
    });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU });
    await startWorker({ vision: new OfflineProvider() });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');

    const coarse = (await env.store.gridRecords(id)).filter((r) => r.pass === 'coarse');
    expect(coarse.reduce((n, r) => n + (r.sources.thumbnail ?? 0), 0)).toBe(12);
    expect(coarse.reduce((n, r) => n + (r.sources.original ?? 0), 0)).toBe(12);
    const downloaded = storageFake
      .log('download')
      .filter((r) => !r.headers.range)
      .map((r) => r.path!);
    for (const [i, photo] of photos.entries()) {
      if (i % 2 === 0) expect(downloaded).toContain(photo.thumbnailPath);
      else expect(downloaded).toContain(photo.path);
    }
  });

  it('phase 4: transforms are asked at the right size and a refused one falls back to the original', async () => {
    const { id, photos } = await upload(24);
    storageFake.inject({
      op: 'render',
      path: photos[5]!.path,
      fault: { kind: 'refuse', status: 422, message: 'unsupported' },
    });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU });
    await startWorker({ vision: new OfflineProvider(), transforms: true });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);

    const renders = storageFake.log('render');
    expect(renders.length).toBeGreaterThanOrEqual(24);
    for (const r of renders) {
      // The cell (84 px coarse, 233 px fine) or 320 px, whichever is larger: signals are measured at 320.
      expect(r.query.width).toBe('320');
      expect(r.query.height).toBe('320');
      expect(r.query.resize).toBe('cover');
    }
    const records = await env.store.gridRecords(id);
    const coarse = records.filter((r) => r.pass === 'coarse');
    expect(coarse.reduce((n, r) => n + (r.sources.transform ?? 0), 0)).toBe(23);
    expect(coarse.reduce((n, r) => n + (r.sources.original ?? 0), 0)).toBe(1);
    // Transformed reads are small: far fewer bytes than the originals.
    const originals = photos.reduce((n, p) => n + storageFake.get(BUCKET, p.path)!.body.length, 0);
    expect(coarse.reduce((n, r) => n + r.bytesRead, 0)).toBeLessThan(originals / 3);
  });

  it('large progressive JPEGs are read by range requests through their DC scans only, in both passes; a baseline one whole', async () => {
    const id = randomUUID();
    const photos: PhotoInput[] = [];
    const sizes = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      // 3000 × 2600: its 1/8 scale (375 × 325) covers the 320 px the signals are measured at. Photo 5 is baseline.
      const image = sharp({
        create: {
          width: 3000,
          height: 2600,
          channels: 3,
          background: { r: 40 * i, g: 120, b: 200 - 30 * i },
          noise: { type: 'gaussian', mean: 128, sigma: 30 },
        },
      });
      const bytes = await image
        .jpeg({ quality: 90, progressive: i < 5 })
        .withMetadata({ orientation: i < 5 ? i + 1 : 1 })
        .toBuffer();
      const photo = { name: `${i}.jpg`, path: `triage/user-1/${id}/${i}.jpg` };
      storageFake.put(BUCKET, photo.path, bytes, { contentType: 'image/jpeg' });
      sizes.set(photo.path, bytes.length);
      photos.push(photo);
    }
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU, target: '50%' });
    await startWorker({ vision: new OfflineProvider() });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);

    const records = await env.store.gridRecords(id);
    const fine = records.filter((r) => r.pass === 'fine');
    expect(fine.length).toBeGreaterThan(0);
    for (const r of records) {
      const progressive = r.photos.filter((i) => i < 5).length;
      expect(r.sources, `${r.pass} grid ${r.grid}`).toEqual({
        ...(progressive > 0 && { 'dc-scans': progressive }),
        ...(r.photos.includes(5) && { original: 1 }),
      });
      // Each photo's thumbnail time, aligned with the grid's photos, within the grid's own duration.
      expect(r.readMs).toHaveLength(r.photos.length);
      for (const ms of r.readMs) expect(ms).toBeGreaterThan(0);
      expect(r.readMs.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(r.durationMs + 1);
    }
    // The progressive files were never downloaded whole: a head and one more range each, a fraction of the file.
    const downloads = storageFake.log('download');
    for (const photo of photos.slice(0, 5)) {
      const reads = downloads.filter((r) => r.path === photo.path);
      expect(reads.length).toBeGreaterThan(0);
      for (const r of reads) expect(r.headers.range, photo.path).toMatch(/^bytes=\d+-\d+$/);
    }
    expect(downloads.filter((r) => r.path === photos[5]!.path && !r.headers.range)).not.toHaveLength(0);
    const coarse = records.find((r) => r.pass === 'coarse')!;
    const progressiveBytes = photos.slice(0, 5).reduce((n, p) => n + sizes.get(p.path)!, 0);
    expect(coarse.bytesRead - sizes.get(photos[5]!.path)!).toBeLessThan(progressiveBytes / 4);
    // Six 8 MP photos are encoded in the test itself: on a loaded machine that alone can take most of a minute.
  }, 180_000);

  it('storage faults: a missing object, a 500 that persists, a stall and a truncated body each fail one photo with a reason; a passing 500 is retried', async () => {
    const { id, photos } = await upload(24);
    storageFake.objects.delete(`${BUCKET}/${photos[1]!.path}`);
    storageFake.inject({ op: 'download', path: photos[2]!.path, fault: { kind: 'status', status: 500 } });
    storageFake.inject({ op: 'download', path: photos[3]!.path, fault: { kind: 'stall', afterBytes: 1000 } });
    storageFake.inject({ op: 'download', path: photos[4]!.path, fault: { kind: 'truncate', afterBytes: 5000 } });
    storageFake.inject({ op: 'download', path: photos[6]!.path, times: 1, fault: { kind: 'status', status: 503 } });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU });
    await startWorker({ vision: new OfflineProvider() });
    const status = await waitForStatus(env, id, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(4);

    const coarse = await env.store.coarseVerdicts(id);
    expect(coarse.size).toBe(24);
    expect(coarse.get(1)!.failure).toMatch(/missing|not found/i);
    expect(coarse.get(2)!.failure).toMatch(/500/);
    expect(coarse.get(3)!.failure).toMatch(/stall|no data/i);
    expect(coarse.get(4)!.failure).toMatch(/truncated/i);
    expect(coarse.get(6)!.failure).toBeUndefined();
    // The persistent 500 was tried more than once before the photo was given up.
    expect(storageFake.log('download', photos[2]!.path).length).toBeGreaterThan(1);
  });

  it('vision faults: 429 with retry-after, 529, 500, a stall, a refusal, malformed JSON and foreign labels; the job completes and no photo is lost', async () => {
    const { id, photos } = await upload(48);
    visionFake.inject({ times: 1, fault: { kind: 'status', status: 429, type: 'rate_limit_error', retryAfter: 0 } });
    visionFake.inject({ times: 1, fault: { kind: 'status', status: 529, type: 'overloaded_error' } });
    visionFake.inject({ times: 1, fault: { kind: 'refusal' } });
    visionFake.inject({ times: 1, fault: { kind: 'text', text: '{"picks": ["A1", "B2"' } });
    visionFake.inject({ times: 1, fault: { kind: 'picks', picks: ['Z9', 'A1', 'A2'] } });
    visionFake.inject({ times: 6, fault: { kind: 'status', status: 500, type: 'api_error' } });
    visionFake.inject({ times: 2, fault: { kind: 'stall' } });
    await submit(env, id, photos, { layouts: SMALL_GRIDS, profile: HAIKU });
    await startWorker();
    const status = await waitForStatus(env, id, ended, 120_000);
    expect(status.status).toBe('completed');
    expect(status.final_selected).toBeGreaterThanOrEqual(1);

    const records = await env.store.gridRecords(id);
    const coarse = records.filter((r) => r.pass === 'coarse');
    expect(coarse.reduce((n, r) => n + r.photos.length, 0)).toBe(48);
    // Foreign labels never become votes: every vote names a photo of that grid.
    for (const r of records) for (const index of Object.keys(r.votes)) expect(r.photos).toContain(Number(index));
    // A grid whose calls all failed kept its photos, marked not reviewed.
    const unreviewed = records.filter((r) => !r.reviewed);
    expect(unreviewed.length).toBeGreaterThan(0);
    const verdicts = await env.store.coarseVerdicts(id);
    for (const r of unreviewed.filter((u) => u.pass === 'coarse')) {
      expect(r.error).toBeTruthy();
      for (const index of r.photos) expect(verdicts.get(index)!.reviewed).toBe(false);
    }
  });

  it('a 2,000-photo two-pass job against the Messages API reports its tokens and cost', async () => {
    const { files } = await sampleSet();
    const small = await sharp(await readFile(files.find((f) => f.kind === 'good')!.path))
      .resize(160, 120)
      .jpeg()
      .toBuffer();
    const id = randomUUID();
    const photos: PhotoInput[] = Array.from({ length: 2000 }, (_, i) => ({
      name: `p${i}.jpg`,
      path: `triage/user-1/${id}/${i}.jpg`,
    }));
    for (const p of photos) storageFake.put(BUCKET, p.path, small, { contentType: 'image/jpeg' });
    const before = visionFake.requests.length;
    await submit(env, id, photos, { profile: HAIKU });
    await startWorker();
    const status = await waitForStatus(env, id, ended, 300_000);
    expect(status.status).toBe('completed');
    // Every photo is the same image: one near-duplicate group, of which the final cut keeps one.
    expect(status.final_selected).toBe(1);
    const coarseGrids = Math.ceil(2000 / capacity((await env.store.meta(id))!.plan.coarse));
    expect(status.grids_done).toBeGreaterThan(coarseGrids);
    expect(visionFake.requests.length - before).toBe(status.grids_done);
    expect(status.tokens.input).toBeGreaterThan(status.grids_done * 1000);
    expect(status.cost_usd).toBeGreaterThan(0);
    expect(status.cost_usd).toBeLessThan(0.4); // the old service's estimate
    console.log(
      `2,000 photos, two passes, 10 %: ${status.grids_done} grids, ${status.tokens.input} input + ${status.tokens.output} output tokens, $${status.cost_usd.toFixed(4)}`,
    );
  }, 400_000);
});
