/**
 * The API against the local Storage server answering as the real one: a missing original, a refused part,
 * a key that removes nothing, a wrong key, names storage cannot hold, transforms on and off. None of them
 * is a 500, and none is answered as if it had worked.
 */
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SupabaseStorage } from '@triage/storage';
import { FakeSupabase } from '@triage/storage/testing';
import { BUCKET, JPEG_BYTES, JWT_SECRET, REDIS_URL, setup, type Env } from './harness.js';

const API_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/server.js');
const PNG_BYTES = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40, 2)]);
const USER = 'user-s';

let fake: FakeSupabase;
const envs: Env[] = [];
const children: ChildProcess[] = [];

function supabase(key = fake.serviceRoleKey): SupabaseStorage {
  return new SupabaseStorage({ url: fake.url, serviceRoleKey: key, retries: 1, backoff: { baseMs: 5, maxMs: 10 } });
}

/** The API on the local server; `sharing` gives it another API's Redis records (one job, two keys). */
async function api(options: { key?: string; transforms?: boolean; sharing?: Env } = {}): Promise<Env> {
  const shared = options.sharing;
  const env = await setup(
    {
      STORAGE_DRIVER: 'supabase',
      SUPABASE_URL: fake.url,
      SUPABASE_SERVICE_ROLE_KEY: options.key ?? fake.serviceRoleKey,
      STORAGE_TRANSFORMS: options.transforms ? 'on' : 'off',
    },
    {
      storage: supabase(options.key),
      ...(shared && {
        redis: shared.redis,
        store: shared.store,
        queue: shared.queue,
        handoffQueue: shared.handoffQueue,
      }),
    },
  );
  envs.push(env);
  return env;
}

/** Photos in the local server under a new job's folder; the `files` of a start-from-storage request. */
function stage(jobId: string, names: string[]) {
  return names.map((name) => {
    const path = `triage/${USER}/${jobId}/${name}`;
    fake.put(BUCKET, path, JPEG_BYTES, { contentType: 'image/jpeg' });
    return { original_name: name, storage_path: path, size: JPEG_BYTES.length };
  });
}

async function startFromStorage(env: Env, jobId: string, files: { original_name: string; storage_path: string }[]) {
  return env.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await env.auth(USER),
    payload: { job_id: jobId, files, target: '50%', criteria: 'standout', passes: 1 },
  });
}

/** A job accepted by the API, then ended as a worker would end it, with `picks` selected. */
async function completedJob(env: Env, names: string[], picks: number[]): Promise<string> {
  const jobId = randomUUID();
  const res = await startFromStorage(env, jobId, stage(jobId, names));
  expect(res.statusCode).toBe(200);
  await env.store.start(jobId);
  await env.store.finish(jobId, {
    status: 'completed',
    selected: picks,
    ranks: new Map(picks.map((p, i) => [p, i + 1])),
  });
  return jobId;
}

beforeAll(async () => {
  fake = await FakeSupabase.start();
});
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fake.transforms = 'on';
  fake.rendererDown = null;
  fake.buckets.set(BUCKET, {});
  for (const env of envs.splice(0)) await env.close();
});
afterAll(async () => {
  await fake.close();
});

describe('results', () => {
  it('a selected original that has left storage: 200, the pick stays with thumbnail_url null and a reason', async () => {
    const env = await api();
    const jobId = await completedJob(env, ['a.jpg', 'b.jpg'], [0, 1]);
    fake.objects.delete(`${BUCKET}/triage/${USER}/${jobId}/a.jpg`);
    const res = await env.app.inject({ url: `/api/triage/${jobId}/results`, headers: await env.auth(USER) });
    expect(res.statusCode).toBe(200);
    const [gone, kept] = res.json().selected_photos;
    expect(gone).toMatchObject({
      id: '0',
      thumbnail_url: null,
      url: null,
      reason: 'the original is no longer in storage',
    });
    expect(kept.thumbnail_url).toMatch(/\/object\/sign\//);
  });

  it('thumbnail_url follows STORAGE_TRANSFORMS: a plain signed URL when off, a resized one when on and served', async () => {
    const off = await api({ transforms: false });
    const offJob = await completedJob(off, ['a.jpg'], [0]);
    const offReply = (
      await off.app.inject({ url: `/api/triage/${offJob}/results`, headers: await off.auth(USER) })
    ).json();
    expect(offReply.selected_photos[0].thumbnail_url).toMatch(/\/object\/sign\//);
    expect(fake.log('render')).toHaveLength(0);

    const on = await api({ transforms: true });
    const onJob = await completedJob(on, ['a.jpg'], [0]);
    const onReply = (await on.app.inject({ url: `/api/triage/${onJob}/results`, headers: await on.auth(USER) })).json();
    expect(onReply.selected_photos[0].thumbnail_url).toMatch(/\/render\/image\/sign\//);
  });

  it('transforms on but the renderer down: the thumbnail is the original, signed, not a failing render URL', async () => {
    const env = await api({ transforms: true });
    const jobId = await completedJob(env, ['a.jpg'], [0]);
    fake.rendererDown = { delayMs: 10 };
    const reply = (await env.app.inject({ url: `/api/triage/${jobId}/results`, headers: await env.auth(USER) })).json();
    const url = reply.selected_photos[0].thumbnail_url as string;
    expect(url).toMatch(/\/object\/sign\//);
    expect((await fetch(url)).status).toBe(200);
  });
});

describe('start', () => {
  it("a part the bucket refuses (MIME types) is skipped with the storage's reason, the rest accepted", async () => {
    const env = await api();
    fake.buckets.set(BUCKET, { allowedMimeTypes: ['image/jpeg'] });
    const boundary = 'b0undary';
    const part = (name: string, type: string, body: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\ncontent-disposition: form-data; name="files"; filename="${name}"\r\ncontent-type: ${type}\r\n\r\n`,
        ),
        body,
        Buffer.from('\r\n'),
      ]);
    const payload = Buffer.concat([
      part('a.jpg', 'image/jpeg', JPEG_BYTES),
      part('b.png', 'image/png', PNG_BYTES),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await env.app.inject({
      method: 'POST',
      url: '/api/triage/start',
      headers: { ...(await env.auth(USER)), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().photo_count).toBe(1);
    expect(res.json().skipped).toEqual([
      { name: 'b.png', reason: expect.stringMatching(/mime type image\/png is not supported/) },
    ]);
  });

  it('start-from-storage with a wrong key: 503 naming the setting, not "Files not found"', async () => {
    const env = await api({ key: 'not-the-key' });
    const jobId = randomUUID();
    const res = await startFromStorage(env, jobId, stage(jobId, ['a.jpg']));
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    expect(res.json().detail).not.toContain('not-the-key');
  });

  it('names storage cannot hold are refused with the reason; names that need encoding are accepted and found', async () => {
    const env = await api();
    const jobId = randomUUID();
    const refused = await startFromStorage(env, jobId, [
      { original_name: 'é.jpg', storage_path: `triage/${USER}/${jobId}/é.jpg` },
    ]);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().detail).toMatch(/é\.jpg.*ASCII/);
    const odd = await startFromStorage(env, jobId, stage(jobId, ['q?.jpg', 'a#1.jpg']));
    expect(odd.statusCode).toBe(200);
  });
});

describe('DELETE and readiness', () => {
  it('DELETE with a key that removes nothing (the anon key: 200 []) is an error, and the job and its photos stay', async () => {
    const good = await api();
    const jobId = await completedJob(good, ['a.jpg', 'b.jpg'], [0]);
    const anon = await api({ key: fake.anonKey, sharing: good });
    const res = await anon.app.inject({
      method: 'DELETE',
      url: `/api/triage/${jobId}`,
      headers: await anon.auth(USER),
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toMatch(/removed 0 of 2.*SUPABASE_SERVICE_ROLE_KEY/);
    expect(fake.has(BUCKET, `triage/${USER}/${jobId}/a.jpg`)).toBe(true);
    expect(
      (await good.app.inject({ url: `/api/triage/${jobId}/status`, headers: await good.auth(USER) })).statusCode,
    ).toBe(200);
    // With the service key the same request removes everything.
    const done = await good.app.inject({
      method: 'DELETE',
      url: `/api/triage/${jobId}`,
      headers: await good.auth(USER),
    });
    expect(done.statusCode).toBe(200);
    expect(fake.has(BUCKET, `triage/${USER}/${jobId}/a.jpg`)).toBe(false);
  });

  it('/readyz checks storage: 503 naming the setting with a wrong key, 200 with the right one', async () => {
    const wrong = await api({ key: 'not-the-key' });
    const bad = await wrong.app.inject({ url: '/readyz' });
    expect(bad.statusCode).toBe(503);
    expect(bad.json().detail).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    const right = await api();
    const ok = await right.app.inject({ url: '/readyz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'ready', storage: 'ok' });
  });

  it('the API process with the anon key stops at start, naming the setting', async () => {
    const child = spawn(process.execPath, [API_MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL,
        TRIAGE_PREFIX: `apitest-${randomUUID().slice(0, 8)}`,
        PORT: '0',
        STORAGE_DRIVER: 'supabase',
        SUPABASE_URL: fake.url,
        SUPABASE_SERVICE_ROLE_KEY: fake.anonKey,
        SUPABASE_JWT_SECRET: JWT_SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(out).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
  });
});
