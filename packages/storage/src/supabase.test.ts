/**
 * The Supabase driver with the real storage-js client and Node's fetch, pointed at a local server speaking
 * the Storage API wire protocol (src/testing/fake-supabase.ts) — never a mocked module.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ObjectNotFoundError, TransformRefusedError } from './driver.js';
import { StorageRequestError, SupabaseStorage, type SupabaseStorageOptions } from './supabase.js';
import { FakeSupabase } from './testing/fake-supabase.js';
import { jpegLike as jpegOf } from './testing/jpeg-like.js';

const KEY = 'service-role-key-abc123-never-log-me';
const BUCKET = 'photos';
const DIR = 'triage/user-1/job-1';

let fake: FakeSupabase;
let temp: string;

const jpegLike = (size: number, width = 4000, height = 3000) => jpegOf(size, width, height);

function driver(options: Partial<SupabaseStorageOptions> = {}): SupabaseStorage {
  return new SupabaseStorage({
    url: fake.url,
    serviceRoleKey: KEY,
    retries: 3,
    backoff: { baseMs: 5, maxMs: 20 },
    timeouts: { responseMs: 2_000, stallMs: 500, requestMs: 2_000 },
    tempDir: temp,
    ...options,
  });
}

async function leftovers(): Promise<string[]> {
  return readdir(temp);
}

beforeAll(async () => {
  fake = await FakeSupabase.start({ serviceRoleKey: KEY });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(async () => {
  temp = await mkdtemp(join(tmpdir(), 'supabase-driver-'));
  fake.clearFaults();
  fake.clearLog();
  fake.objects.clear();
  fake.maxInFlight = 0;
});
afterEach(async () => {
  await rm(temp, { recursive: true, force: true });
});

describe('reads', () => {
  it('streams an object to a temp file that release() deletes, with the key as apikey and Bearer', async () => {
    const body = jpegLike(300_000);
    fake.put(BUCKET, `${DIR}/a b.jpg`, body);
    const file = await driver().readToFile(BUCKET, `${DIR}/a b.jpg`);
    expect(file.size).toBe(body.length);
    expect(file.path.startsWith(temp)).toBe(true);
    expect((await readFile(file.path)).equals(body)).toBe(true);
    await file.release();
    expect(await leftovers()).toEqual([]);
    const [req] = fake.log('download');
    expect(req!.url).toBe(`/object/authenticated/${BUCKET}/triage/user-1/job-1/a%20b.jpg`);
    expect(req!.authorized).toBe(true);
    expect(req!.headers.authorization).toBe('[redacted]');
  });

  it('maps the service\'s 400 {statusCode:"404", code:"NoSuchKey"} to ObjectNotFoundError, without retrying', async () => {
    const err = await driver()
      .readToFile(BUCKET, `${DIR}/missing.jpg`)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ObjectNotFoundError);
    expect(fake.log('download')).toHaveLength(1);
    expect(fake.log('download')[0]!.status).toBe(400);
    expect(await leftovers()).toEqual([]);
  });

  it('retries a 500 with backoff and succeeds', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(10_000));
    fake.inject({ op: 'download', times: 2, fault: { kind: 'status', status: 500 } });
    const file = await driver().readToFile(BUCKET, `${DIR}/a.jpg`);
    expect(file.size).toBe(10_000);
    await file.release();
    expect(fake.log('download').map((r) => r.status)).toEqual([500, 500, 200]);
  });

  it('fails with a clear reason after the last attempt when storage keeps answering 500, leaving no temp file', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(10_000));
    fake.inject({ op: 'download', fault: { kind: 'status', status: 500 } });
    const err = await driver({ retries: 2 })
      .readToFile(BUCKET, `${DIR}/a.jpg`)
      .catch((e) => e);
    expect(err).toBeInstanceOf(StorageRequestError);
    expect(err.reason).toMatch(/failed after 3 attempts: storage answered HTTP 500/);
    expect(err.details).toMatchObject({ status: 500, attempts: 3, retryable: true });
    expect(fake.log('download')).toHaveLength(3);
    expect(await leftovers()).toEqual([]);
  });

  it('reads an error body that is valid JSON but no object (`null`, a number) as a bare HTTP status', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    for (const body of [null, 0, 'oops']) {
      fake.clearFaults();
      fake.inject({ op: 'download', fault: { kind: 'status', status: 502, body } });
      const err = await driver({ retries: 0 })
        .readToFile(BUCKET, `${DIR}/a.jpg`)
        .catch((e) => e);
      expect(err, String(body)).toBeInstanceOf(StorageRequestError);
      expect(err.reason).toMatch(/storage answered HTTP 502/);
    }
  });

  it('retries a 503 and a 429, but not a 403', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({ op: 'download', times: 1, fault: { kind: 'status', status: 503 } });
    fake.inject({ op: 'download', times: 1, fault: { kind: 'status', status: 429 } });
    await (await driver().readToFile(BUCKET, `${DIR}/a.jpg`)).release();
    expect(fake.log('download')).toHaveLength(3);
    fake.clearLog();
    fake.inject({
      op: 'download',
      fault: {
        kind: 'status',
        status: 400,
        body: { statusCode: '403', error: 'Unauthorized', message: 'new row violates row-level security policy' },
      },
    });
    const err = await driver()
      .readToFile(BUCKET, `${DIR}/a.jpg`)
      .catch((e) => e);
    expect(err).toBeInstanceOf(StorageRequestError);
    expect(err.details.retryable).toBe(false);
    expect(err.reason).toMatch(/HTTP 400 \(403\)/);
    expect(fake.log('download')).toHaveLength(1);
  });

  it('detects a stalled body (headers, some bytes, then nothing), retries, and succeeds', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(200_000));
    fake.inject({ op: 'download', times: 1, fault: { kind: 'stall', afterBytes: 1000 } });
    const file = await driver().readToFile(BUCKET, `${DIR}/a.jpg`);
    expect(file.size).toBe(200_000);
    await file.release();
    expect(fake.log('download')).toHaveLength(2);
    expect(await leftovers()).toEqual([]);
  });

  it('fails a photo whose downloads always stall, with the reason', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(200_000));
    fake.inject({ op: 'download', fault: { kind: 'stall', afterBytes: 0 } });
    const err = await driver({ retries: 1 })
      .readToFile(BUCKET, `${DIR}/a.jpg`)
      .catch((e) => e);
    expect(err).toBeInstanceOf(StorageRequestError);
    expect(err.reason).toMatch(/failed after 2 attempts: download stalled: no data for 500 ms/);
    expect(await leftovers()).toEqual([]);
  });

  it('gives up on a server that never sends headers (response timeout), retrying first', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({ op: 'download', fault: { kind: 'stall', beforeHeaders: true } });
    const err = await driver({ retries: 1, timeouts: { responseMs: 150, stallMs: 150 } })
      .readToFile(BUCKET, `${DIR}/a.jpg`)
      .catch((e) => e);
    expect(err.reason).toMatch(/failed after 2 attempts: no response within 150 ms/);
    expect(fake.log('download')).toHaveLength(2);
  });

  it('detects a truncated body (Content-Length not reached), retries, and succeeds', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(300_000));
    fake.inject({ op: 'download', times: 1, fault: { kind: 'truncate', afterBytes: 100_000 } });
    const file = await driver().readToFile(BUCKET, `${DIR}/a.jpg`);
    expect(file.size).toBe(300_000);
    await file.release();
    expect(fake.log('download')).toHaveLength(2);
  });

  it('fails with "truncated" when every body is cut short, leaving no temp file', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(300_000));
    fake.inject({ op: 'download', fault: { kind: 'truncate', afterBytes: 100_000 } });
    const err = await driver({ retries: 2 })
      .readToFile(BUCKET, `${DIR}/a.jpg`)
      .catch((e) => e);
    expect(err).toBeInstanceOf(StorageRequestError);
    expect(err.reason).toMatch(
      /failed after 3 attempts: download truncated: connection closed after \d+ of 300000 bytes/,
    );
    expect(await leftovers()).toEqual([]);
  });

  it('retries a connection reset', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({ op: 'download', times: 2, fault: { kind: 'reset' } });
    await (await driver().readToFile(BUCKET, `${DIR}/a.jpg`)).release();
    expect(fake.log('download')).toHaveLength(3);
  });

  it('stops at once on abort, without retrying', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({ op: 'download', fault: { kind: 'stall', beforeHeaders: true } });
    const controller = new AbortController();
    const pending = driver({ timeouts: { responseMs: 10_000, stallMs: 10_000 } }).readToFile(BUCKET, `${DIR}/a.jpg`, {
      signal: controller.signal,
    });
    // Aborted while the request is at the server (stalled there).
    await vi.waitUntil(() => fake.log('download').length === 1, { timeout: 30_000 });
    controller.abort(new Error('job cancelled'));
    await expect(pending).rejects.toThrow('job cancelled');
    expect(fake.log('download')).toHaveLength(1);
    expect(await leftovers()).toEqual([]);
  });

  it('reads a byte range with a Range header', async () => {
    const body = jpegLike(100_000);
    fake.put(BUCKET, `${DIR}/a.jpg`, body);
    const head = await driver().readRange(BUCKET, `${DIR}/a.jpg`, 0, 65_536);
    expect(head.equals(body.subarray(0, 65_536))).toBe(true);
    const middle = await driver().readRange(BUCKET, `${DIR}/a.jpg`, 500, 600);
    expect(middle.equals(body.subarray(500, 600))).toBe(true);
    const past = await driver().readRange(BUCKET, `${DIR}/a.jpg`, 200_000, 200_010);
    expect(past.length).toBe(0);
    expect(fake.log('download').map((r) => r.headers.range)).toEqual([
      'bytes=0-65535',
      'bytes=500-599',
      'bytes=200000-200009',
    ]);
    await expect(driver().readRange(BUCKET, `${DIR}/nope.jpg`, 0, 10)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('streams an object for a caller that passes it on', async () => {
    const body = jpegLike(500_000);
    fake.put(BUCKET, `${DIR}/a.jpg`, body);
    const stream = await driver().readStream(BUCKET, `${DIR}/a.jpg`);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    await expect(driver().readStream(BUCKET, `${DIR}/nope.jpg`)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('errors a passed-on stream whose body is cut short', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(300_000));
    fake.inject({ op: 'download', fault: { kind: 'truncate', afterBytes: 1000 } });
    const stream = await driver().readStream(BUCKET, `${DIR}/a.jpg`);
    const consume = async () => {
      for await (const _ of stream) void _;
    };
    await expect(consume()).rejects.toThrow(/truncated/);
  });
});

describe('metadata, URLs, removal, uploads', () => {
  it('stats through the info endpoint; a missing object is null', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1234));
    const info = await driver().stat(BUCKET, `${DIR}/a.jpg`);
    expect(info).toMatchObject({ size: 1234, contentType: 'image/jpeg' });
    expect(info!.modifiedAt).toBeInstanceOf(Date);
    expect(await driver().stat(BUCKET, `${DIR}/missing.jpg`)).toBeNull();
    expect(fake.log('info').map((r) => r.url)).toEqual([
      `/object/info/${BUCKET}/${DIR}/a.jpg`,
      `/object/info/${BUCKET}/${DIR}/missing.jpg`,
    ]);
  });

  it('checks many objects with bounded concurrency, in order, retrying 500s', async () => {
    const paths = Array.from({ length: 60 }, (_, i) => `${DIR}/${i}.jpg`);
    paths.forEach((p, i) => i % 7 !== 3 && fake.put(BUCKET, p, jpegLike(100 + i)));
    fake.inject({ op: 'info', times: 5, fault: { kind: 'status', status: 500 } });
    fake.inject({ op: 'info', fault: { kind: 'latency', ms: 5 } });
    const infos = await driver({ concurrency: 4 }).statMany(BUCKET, paths);
    expect(infos.map((x) => x?.size ?? null)).toEqual(paths.map((_, i) => (i % 7 === 3 ? null : 100 + i)));
    expect(fake.maxInFlight).toBeLessThanOrEqual(4);
    expect(fake.maxInFlight).toBeGreaterThan(1);
  });

  it('signs a URL, with a transform clamped to 1–2500, and the URL serves the object', async () => {
    const body = jpegLike(5000);
    fake.put(BUCKET, `${DIR}/a.jpg`, body);
    const plain = await driver().signedUrl(BUCKET, `${DIR}/a.jpg`, 3600);
    expect(plain).toMatch(new RegExp(`^${fake.url}/storage/v1/object/sign/${BUCKET}/${DIR}/a.jpg\\?token=`));
    const res = await fetch(plain);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);

    const thumb = await driver().signedUrl(BUCKET, `${DIR}/a.jpg`, 3600, { transform: { width: 4000, height: 0.2 } });
    expect(thumb).toContain('/render/image/sign/');
    expect(fake.log('sign')[1]!.json).toEqual({
      expiresIn: 3600,
      transform: { width: 2500, height: 1, resize: 'cover' },
    });
    expect((await fetch(thumb)).status).toBe(200);
    await expect(driver().signedUrl(BUCKET, `${DIR}/missing.jpg`, 60)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('signs many URLs in one call; a missing object gets null', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.put(BUCKET, `${DIR}/c.jpg`, jpegLike(100));
    const urls = await driver().signedUrls(BUCKET, [`${DIR}/a.jpg`, `${DIR}/b.jpg`, `${DIR}/c.jpg`], 3600);
    expect(urls[0]).toContain(`/object/sign/${BUCKET}/${DIR}/a.jpg?token=`);
    expect(urls[1]).toBeNull();
    expect(urls[2]).toContain('c.jpg?token=');
    expect(fake.log('signMany')).toHaveLength(1);
  });

  it('removes in batches of at most 1000; missing objects are fine once the key is shown to see objects', async () => {
    const paths = Array.from({ length: 2500 }, (_, i) => `${DIR}/${i}.jpg`);
    paths.slice(0, 2000).forEach((p) => fake.put(BUCKET, p, Buffer.from('x')));
    fake.inject({ op: 'remove', times: 1, fault: { kind: 'status', status: 502 } });
    await driver().remove(BUCKET, paths);
    expect(fake.objects.size).toBe(0);
    const calls = fake.log('remove');
    // The 500 paths never stored were not listed as removed: one probe object written, read and removed
    // shows that the key sees objects, so their absence is real.
    expect(calls.map((c) => (c.json as { prefixes: string[] }).prefixes.length)).toEqual([1000, 1000, 1000, 500, 1]);
    expect(calls.map((c) => c.status)).toEqual([502, 200, 200, 200, 200]);
    await driver().remove(BUCKET, []);
  });

  it('uploads a buffer and a stream, content type always set, streams sent with duplex half', async () => {
    const d = driver();
    await d.write(BUCKET, `${DIR}/grid.jpg`, jpegLike(1000), { contentType: 'image/jpeg' });
    const big = randomBytes(3 * 1024 * 1024);
    await d.write(BUCKET, `${DIR}/upload.heic`, Readable.from([big.subarray(0, 1_000_000), big.subarray(1_000_000)]), {
      contentType: 'image/heic',
    });
    expect(fake.get(BUCKET, `${DIR}/upload.heic`)!.body.equals(big)).toBe(true);
    expect(fake.get(BUCKET, `${DIR}/upload.heic`)!.contentType).toBe('image/heic');
    const uploads = fake.log('upload');
    expect(uploads.map((u) => [u.method, u.headers['content-type'], u.headers['x-upsert']])).toEqual([
      ['POST', 'image/jpeg', 'true'],
      ['POST', 'image/heic', 'true'],
    ]);
    expect(uploads[1]!.headers['transfer-encoding']).toBe('chunked');
    // Rewriting (a redelivered step saving its grid again) is an upsert, not a 409.
    await d.write(BUCKET, `${DIR}/grid.jpg`, jpegLike(2000), { contentType: 'image/jpeg' });
    expect(fake.get(BUCKET, `${DIR}/grid.jpg`)!.body.length).toBe(2000);
  });

  it('retries a buffer upload after a 500, but a stream upload only once', async () => {
    fake.inject({ op: 'upload', times: 1, fault: { kind: 'status', status: 500 } });
    await driver().write(BUCKET, `${DIR}/g.jpg`, Buffer.from('abc'), { contentType: 'image/jpeg' });
    expect(fake.log('upload').map((u) => u.status)).toEqual([500, 200]);
    fake.inject({ op: 'upload', times: 1, fault: { kind: 'status', status: 500 } });
    const err = await driver()
      .write(BUCKET, `${DIR}/s.jpg`, Readable.from([Buffer.from('abc')]), { contentType: 'image/jpeg' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(StorageRequestError);
  });

  it("never puts the service key in an error, a reason or the driver's JSON", async () => {
    fake.inject({ fault: { kind: 'status', status: 500 } });
    const d = driver({ retries: 0 });
    const errors = await Promise.all([
      d.readToFile(BUCKET, `${DIR}/a.jpg`).catch((e) => e),
      d.stat(BUCKET, `${DIR}/a.jpg`).catch((e) => e),
      d.signedUrl(BUCKET, `${DIR}/a.jpg`, 60).catch((e) => e),
      d.remove(BUCKET, [`${DIR}/a.jpg`]).catch((e) => e),
    ]);
    for (const err of errors) {
      expect(err).toBeInstanceOf(StorageRequestError);
      expect(`${err.message} ${err.reason} ${err.stack} ${JSON.stringify(err)}`).not.toContain(KEY);
    }
    expect(JSON.stringify(d)).not.toContain(KEY);
    expect(JSON.stringify(fake.requests)).not.toContain(KEY);
  });
});

describe('storage-side transforms (phase 4)', () => {
  it('asks the render endpoint for the cell size with resize=cover, into a temp file', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(50_000));
    const file = await driver().readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 120, height: 120, resize: 'cover' });
    expect(file.size).toBe(50_000);
    await file.release();
    expect(await leftovers()).toEqual([]);
    const [req] = fake.log('render');
    expect(req!.url.split('?')[0]).toBe(`/render/image/authenticated/${BUCKET}/${DIR}/a.jpg`);
    expect(req!.query).toEqual({ width: '120', height: '120', resize: 'cover' });
    expect(req!.headers.accept).toContain('image/webp');
  });

  it('clamps the size to 1–2500', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    await (await driver().readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 3000, height: 0 })).release();
    expect(fake.log('render')[0]!.query).toMatchObject({ width: '2500', height: '1' });
  });

  it('throws TransformRefusedError when the source is over 25 MB', async () => {
    fake.put(BUCKET, `${DIR}/big.jpg`, jpegLike(26 * 1024 * 1024, 3000, 2000));
    const err = await driver()
      .readTransformed(BUCKET, `${DIR}/big.jpg`, { width: 100, height: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    expect(err.status).toBe(413);
    expect(err.reason).toMatch(/maximum allowed size/);
    expect(fake.log('render')).toHaveLength(1); // a refusal is not retried
    expect(await leftovers()).toEqual([]);
  });

  it('throws TransformRefusedError when the source is over 50 MP', async () => {
    fake.put(BUCKET, `${DIR}/huge.jpg`, jpegLike(10_000, 9000, 6000));
    const err = await driver()
      .readTransformed(BUCKET, `${DIR}/huge.jpg`, { width: 100, height: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    expect(err.reason).toMatch(/resolution is too big/);
  });

  it('throws TransformRefusedError for a format the service cannot read', async () => {
    fake.put(BUCKET, `${DIR}/raw.cr3`, randomBytes(1000), { contentType: 'image/x-canon-cr3' });
    const err = await driver()
      .readTransformed(BUCKET, `${DIR}/raw.cr3`, { width: 100, height: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    expect(err.status).toBe(400);
  });

  it('throws TransformRefusedError after a 500 and its one retry (when asked for one)', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({ op: 'render', fault: { kind: 'status', status: 500 } });
    const err = await driver({ transformRetries: 1 })
      .readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 100, height: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    expect(fake.log('render')).toHaveLength(2);
    // ...and the original is still readable: the caller's fallback.
    await (await driver().readToFile(BUCKET, `${DIR}/a.jpg`)).release();
  });

  it('throws TransformRefusedError for an injected refusal, and ObjectNotFoundError for a missing source', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(1000));
    fake.inject({
      op: 'render',
      times: 1,
      fault: { kind: 'refuse', message: 'Image processing is not enabled for this project' },
    });
    const err = await driver()
      .readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 100, height: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    expect(err.reason).toMatch(/not enabled/);
    await expect(
      driver().readTransformed(BUCKET, `${DIR}/nope.jpg`, { width: 100, height: 100 }),
    ).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});

describe('SupabaseStorage: copy (POST /object/copy, on the server)', () => {
  it('copies without downloading, keeps an existing destination, and reports a missing source', async () => {
    const body = jpegLike(50_000);
    fake.put(BUCKET, `${DIR}/a.jpg`, body, { contentType: 'image/jpeg' });
    const s = driver();
    await s.copy(BUCKET, `${DIR}/a.jpg`, 'user-1/scored/job-1/a.jpg');
    expect(fake.get(BUCKET, 'user-1/scored/job-1/a.jpg')?.body).toEqual(body);
    expect(fake.get(BUCKET, 'user-1/scored/job-1/a.jpg')?.contentType).toBe('image/jpeg');
    const copies = fake.requests.filter((r) => r.op === 'copy');
    expect(copies).toHaveLength(1);
    expect(copies[0]!.json).toMatchObject({
      bucketId: BUCKET,
      sourceKey: `${DIR}/a.jpg`,
      destinationKey: 'user-1/scored/job-1/a.jpg',
    });
    // No byte of the object went to the client.
    expect(fake.requests.some((r) => r.op === 'download')).toBe(false);
    // Again (a redelivered hand-off): the service answers Duplicate, the driver takes it as done.
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(10), { contentType: 'image/jpeg' });
    await s.copy(BUCKET, `${DIR}/a.jpg`, 'user-1/scored/job-1/a.jpg');
    expect(fake.get(BUCKET, 'user-1/scored/job-1/a.jpg')?.body).toEqual(body);
    expect(fake.requests.filter((r) => r.op === 'copy').at(-1)?.status).toBe(400);
    await expect(s.copy(BUCKET, `${DIR}/missing.jpg`, 'user-1/m.jpg')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('retries a 5xx', async () => {
    fake.put(BUCKET, `${DIR}/b.jpg`, jpegLike(100), { contentType: 'image/jpeg' });
    fake.inject({ op: 'copy', times: 2, fault: { kind: 'status', status: 503 } });
    await driver().copy(BUCKET, `${DIR}/b.jpg`, 'user-1/b.jpg');
    expect(fake.has(BUCKET, 'user-1/b.jpg')).toBe(true);
    expect(fake.requests.filter((r) => r.op === 'copy')).toHaveLength(3);
  });
});
