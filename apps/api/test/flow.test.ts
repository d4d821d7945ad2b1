/**
 * The whole flow over a real socket, with a real in-process worker: start-from-storage → the events stream
 * and polling every 2 s until done → results (the signed thumbnail URL serves the image) → download (the
 * ZIP opens and holds the picks) → proceed → delete → 404. Then DELETE of a running job stops its worker.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import {
  composeGrid,
  generateSampleSet,
  thumbnailFromDcScans,
  thumbnailFromEmbedded,
  thumbnailFromFile,
  type SampleFile,
} from '@triage/images';
import type { Results, TriageStatus } from '@triage/client';
import { redisConnection, type RedisClient } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { OfflineProvider } from '@triage/vision';
import { createTriageWorker, type TriageWorker } from '@triage/worker';
import { BUCKET, setup, type Env } from './harness.js';

let env: Env;
let base: string;
let samples: { dir: string; files: SampleFile[] };
let worker: TriageWorker;
let subscriber: RedisClient;
let workerRedis: RedisClient;
const USER = 'user-flow';

beforeAll(async () => {
  // 12 photos per coarse grid, so that a small job has several grids and several progress events.
  env = await setup({ GRID_COARSE_ROWS: '3', GRID_COARSE_COLS: '4', HOST: '127.0.0.1', PORT: '0' });
  const dir = await mkdtemp(join(tmpdir(), 'triage-api-samples-'));
  samples = { dir, files: await generateSampleSet(dir, { count: 30, width: 640, height: 480 }) };
  base = await env.app.listen({ host: '127.0.0.1', port: 0 });
  // The worker reads the same storage folder, a little slowly, so that a DELETE can catch a job mid-grid.
  workerRedis = redisConnection(env.settings.redis, 'worker');
  subscriber = redisConnection(env.settings.redis, 'subscriber');
  worker = await createTriageWorker({
    connection: workerRedis,
    subscriber,
    prefix: env.prefix,
    store: env.store,
    storage: new LocalStorage({ root: env.storageDir, readLatencyMs: 20 }),
    vision: new OfflineProvider(),
    images: { thumbnail: thumbnailFromFile, thumbnailFromEmbedded, thumbnailFromDcScans, composeGrid },
    log: pino({ level: 'silent' }),
    lockDurationMs: 5000,
  });
}, 120_000);

afterAll(async () => {
  await worker?.close(2000);
  subscriber?.disconnect();
  await workerRedis?.quit();
  await env?.close();
  if (samples) await rm(samples.dir, { recursive: true, force: true });
});

async function stageSamples(jobId: string, files: SampleFile[]) {
  const out = [];
  for (const [i, f] of files.entries()) {
    const path = `triage/${USER}/${jobId}/${randomUUID()}.jpg`;
    const target = env.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(f.path, target);
    out.push({ original_name: i === 1 ? files[0]!.name : f.name, storage_path: path });
  }
  return out;
}

async function api(path: string, init: RequestInit = {}) {
  return fetch(`${base}${path}`, {
    ...init,
    headers: { ...(await env.auth(USER)), 'content-type': 'application/json', ...init.headers },
  });
}

/** Reads an SSE stream to its end; returns the status objects it carried. */
async function readEvents(
  res: Response,
): Promise<{ statuses: { status: string; grids_done: number }[]; heartbeats: number }> {
  const statuses = [];
  let heartbeats = 0;
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.startsWith(': heartbeat')) heartbeats++;
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (block.includes('event: status') && data) statuses.push(JSON.parse(data.slice(6)));
    }
  }
  return { statuses, heartbeats };
}

describe('the whole flow over a real socket', () => {
  it('start → events and polling → results → download → proceed → delete', async () => {
    const jobId = randomUUID();
    const files = await stageSamples(jobId, samples.files);
    const started = await api('/api/triage/start-from-storage', {
      method: 'POST',
      body: JSON.stringify({ job_id: jobId, files, target: '20%', passes: 2 }),
    });
    expect(started.status).toBe(200);
    expect(await started.json()).toMatchObject({
      job_id: jobId,
      status: 'processing',
      photo_count: 30,
      credits_deducted: 0,
      credits_required: 1,
    });

    const eventsRes = await api(`/api/triage/${jobId}/events`, { headers: { accept: 'text/event-stream' } });
    expect(eventsRes.status).toBe(200);
    expect(eventsRes.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = readEvents(eventsRes);

    // The webapp's way: poll every 2 s until the job ends.
    const polled: string[] = [];
    for (;;) {
      const s = (await (await api(`/api/triage/${jobId}/status`)).json()) as TriageStatus;
      polled.push(s.status);
      if (['completed', 'failed', 'cancelled'].includes(s.status)) break;
      expect(s.status === 'pending' || s.progress !== null).toBe(true);
      await new Promise((r) => setTimeout(r, 2000));
    }
    expect(polled.at(-1)).toBe('completed');

    const { statuses } = await events; // the stream ended by itself when the job ended
    expect(statuses.at(-1)!.status).toBe('completed');
    expect(statuses.length).toBeGreaterThanOrEqual(3);
    const done = statuses.map((s) => s.grids_done);
    expect(done).toEqual([...done].sort((a, b) => a - b));

    const results = (await (await api(`/api/triage/${jobId}/results?include=all`)).json()) as Results;
    expect(results.status).toBe('completed');
    expect(results.selected_photos.length).toBe(results.final_selected);
    expect(results.selected_photos.length).toBeGreaterThan(0);
    const photos = results.photos ?? [];
    expect(photos).toHaveLength(30);
    const failed = photos.filter((p) => p.fate === 'failed');
    for (const p of failed) expect(p.reason).toMatch(/^could not be read: /);
    for (const p of photos) expect(p.reason).toEqual(expect.any(String));
    // Every readable photo carries its signals; the sample set's bursts are near-duplicate groups, one kept at most.
    for (const p of photos.filter((x) => x.fate !== 'failed')) {
      expect(p.signals).toMatchObject({
        sharpness: expect.any(Number),
        exposure: expect.any(Number),
        clipped_highlights: expect.any(Number),
      });
    }
    const grouped = photos.filter((p) => p.group);
    expect(grouped.length).toBeGreaterThan(1);
    for (const p of grouped) {
      expect(p.group).toEqual({ id: expect.any(String), size: expect.any(Number), picked: p.fate === 'selected' });
      expect(grouped.filter((q) => q.group!.id === p.group!.id && q.fate === 'selected').length).toBeLessThanOrEqual(1);
    }
    const first = results.selected_photos[0]!;
    // The signed thumbnail URL points at this API and serves the image without a token.
    const thumb = first.thumbnail_url!.replace('http://api.test', base);
    const image = await fetch(thumb);
    expect(image.status).toBe(200);
    expect(Buffer.from(await image.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));

    const zipRes = await api(`/api/triage/${jobId}/download`);
    expect(zipRes.status).toBe(200);
    expect(zipRes.headers.get('content-disposition')).toBe(
      `attachment; filename=triage_${jobId.slice(0, 8)}_selected.zip`,
    );
    const zipPath = join(env.dir, 'picks.zip');
    await writeFile(zipPath, Buffer.from(await zipRes.arrayBuffer()));
    const listing = (await promisify(execFile)('unzip', ['-Z1', zipPath])).stdout.trim().split('\n');
    expect(listing).toHaveLength(results.selected_photos.length);
    expect(new Set(listing).size).toBe(listing.length);
    const test = await promisify(execFile)('unzip', ['-t', zipPath]);
    expect(test.stdout).toMatch(/No errors detected/);

    const proceed = await api(`/api/triage/${jobId}/proceed`, {
      method: 'POST',
      body: JSON.stringify({ photo_ids: [first.id] }),
    });
    expect(await proceed.json()).toEqual({ queued_count: 1, credits_deducted: 0, credits_required: 1 });

    const del = await api(`/api/triage/${jobId}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    for (const f of files) expect(await env.storage.stat(BUCKET, f.storage_path)).toBeNull();
    expect((await api(`/api/triage/${jobId}/status`)).status).toBe(404);
    expect((await api(`/api/triage/${jobId}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('reports each live worker’s memory, as the operating system counts it, in /metrics', async () => {
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const line = (kind: string) =>
      new RegExp(`triage_worker_memory_bytes\\{worker="[^"]+:${process.pid}",kind="${kind}"\\} (\\d+)`).exec(metrics);
    const rss = Number(line('rss')?.[1]);
    const peak = Number(line('peak')?.[1]);
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    expect(peak).toBeGreaterThanOrEqual(rss);
  });

  it('DELETE of a running job stops the worker promptly and forgets the job', async () => {
    const jobId = randomUUID();
    const all = [...samples.files, ...samples.files, ...samples.files];
    const files = await stageSamples(jobId, all);
    expect(
      (await api('/api/triage/start-from-storage', { method: 'POST', body: JSON.stringify({ job_id: jobId, files }) }))
        .status,
    ).toBe(200);
    // Wait until the worker is inside the job.
    await vi.waitUntil(async () => (await env.store.status(jobId))?.status === 'processing', {
      timeout: 30_000,
      interval: 25,
    });
    const events = readEvents(await api(`/api/triage/${jobId}/events`));
    const del = await api(`/api/triage/${jobId}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await env.store.meta(jobId)).toBeNull();
    const statuses = (await events).statuses;
    expect(statuses.length).toBeGreaterThan(0); // and the stream ended (by the cancel or by the job's removal)
    const records = await env.store.gridRecords(jobId);
    expect(records).toEqual([]);
    // The worker took the next job at once: it is not stuck on the deleted one.
    const next = randomUUID();
    const nextFiles = await stageSamples(next, samples.files.slice(0, 4));
    expect(
      (
        await api('/api/triage/start-from-storage', {
          method: 'POST',
          body: JSON.stringify({ job_id: next, files: nextFiles, target: '1' }),
        })
      ).status,
    ).toBe(200);
    const ended = ['completed', 'failed', 'cancelled'];
    await vi.waitUntil(async () => ended.includes((await env.store.status(next))?.status ?? ''), {
      timeout: 40_000,
      interval: 50,
    });
    expect((await env.store.status(next))?.status).toBe('completed');
  });
});
