/**
 * Supabase Storage as it really answers: the local server follows the answers observed on the real one
 * (raw HTTP), and the driver tells each of them apart — an object that is not there, a wrong URL, key or
 * bucket, an outage, a refused object or name, a transform feature that is off or failing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InvalidPathError, ObjectNotFoundError, TransformRefusedError } from './driver.js';
import { StorageRequestError, SupabaseStorage, TransformBreaker, type SupabaseStorageOptions } from './supabase.js';
import { FakeSupabase } from './testing/fake-supabase.js';
import { jpegLike as jpegOf } from './testing/jpeg-like.js';

const KEY = 'service-role-key-answers';
const ANON = 'anon-key-answers';
const BUCKET = 'photos';
const DIR = 'triage/user-1/job-1';

let fake: FakeSupabase;
let bare: FakeSupabase;
let temp: string;

const jpegLike = (size: number, width = 400, height = 300) => jpegOf(size, width, height);

function driver(options: Partial<SupabaseStorageOptions> = {}, server: FakeSupabase = fake): SupabaseStorage {
  return new SupabaseStorage({
    url: server.url,
    serviceRoleKey: KEY,
    retries: 1,
    backoff: { baseMs: 5, maxMs: 10 },
    timeouts: { responseMs: 5_000, stallMs: 5_000, requestMs: 5_000 },
    tempDir: temp,
    ...options,
  });
}

async function raw(path: string, init: RequestInit & { key?: string | null } = {}, server: FakeSupabase = fake) {
  const key = init.key === undefined ? KEY : init.key;
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (key !== null) Object.assign(headers, { authorization: `Bearer ${key}`, apikey: key });
  const res = await fetch(`${server.url}${server.basePath}${path}`, { ...init, headers });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, body };
}

async function rejection(promise: Promise<unknown>): Promise<StorageRequestError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageRequestError);
  return err as StorageRequestError;
}

beforeAll(async () => {
  fake = await FakeSupabase.start({ serviceRoleKey: KEY, anonKey: ANON });
  bare = await FakeSupabase.start({ serviceRoleKey: KEY, anonKey: ANON, gateway: false });
});
afterAll(async () => {
  await fake.close();
  await bare.close();
});
beforeEach(async () => {
  temp = await mkdtemp(join(tmpdir(), 'supabase-answers-'));
  for (const f of [fake, bare]) {
    f.clearFaults();
    f.clearLog();
    f.objects.clear();
    f.transforms = 'on';
    f.rendererDown = null;
    f.outage = null;
    f.buckets.clear();
    f.createBucket(BUCKET);
  }
});
afterEach(async () => {
  await rm(temp, { recursive: true, force: true });
});

describe('the local server answers as the real one', () => {
  it('base path: the server at /, a gateway at /storage/v1', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    bare.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    expect((await raw(`/object/info/${BUCKET}/${DIR}/a.jpg`)).status).toBe(200);
    expect((await raw(`/object/info/${BUCKET}/${DIR}/a.jpg`, {}, bare)).status).toBe(200);
    expect(bare.basePath).toBe('');
    const viaGatewayPath = await fetch(`${bare.url}/storage/v1/object/info/${BUCKET}/${DIR}/a.jpg`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(viaGatewayPath.status).toBe(404);
    expect(await viaGatewayPath.json()).toMatchObject({
      statusCode: 404,
      message: `Route GET:/storage/v1/object/info/${BUCKET}/${DIR}/a.jpg not found`,
    });
  });

  it('no Authorization: 400 InvalidRequest; a bad key: 403 AccessDenied, but info answers as anonymous (404 NoSuchBucket)', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const none = await raw(`/object/authenticated/${BUCKET}/${DIR}/a.jpg`, { key: null });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe('InvalidRequest');
    const bad = await raw(`/object/authenticated/${BUCKET}/${DIR}/a.jpg`, { key: 'not-a-key' });
    expect(bad.status).toBe(403);
    expect(bad.body.code).toBe('AccessDenied');
    const info = await raw(`/object/info/${BUCKET}/${DIR}/a.jpg`, { key: 'not-a-key' });
    expect(info.status).toBe(404);
    expect(info.body).toMatchObject({ statusCode: '404', error: 'Bucket not found', code: 'NoSuchBucket' });
  });

  it('the anon key sees no object (NoSuchKey) and removes nothing (200 [])', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const read = await raw(`/object/authenticated/${BUCKET}/${DIR}/a.jpg`, { key: ANON });
    expect(read.status).toBe(400);
    expect(read.body.code).toBe('NoSuchKey');
    const removed = await raw(`/object/${BUCKET}`, {
      key: ANON,
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefixes: [`${DIR}/a.jpg`] }),
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual([]);
    expect(fake.has(BUCKET, `${DIR}/a.jpg`)).toBe(true);
  });

  it('missing bucket 404 NoSuchBucket; missing object 400 with "404" NoSuchKey (HEAD: bare 400, JSON headers); unknown route 404 numeric', async () => {
    const bucket = await raw(`/object/authenticated/nope/${DIR}/a.jpg`);
    expect(bucket.status).toBe(404);
    expect(bucket.body).toMatchObject({ statusCode: '404', error: 'Bucket not found', code: 'NoSuchBucket' });
    const object = await raw(`/object/authenticated/${BUCKET}/${DIR}/missing.jpg`);
    expect(object.status).toBe(400);
    expect(object.body).toMatchObject({ statusCode: '404', code: 'NoSuchKey' });
    const head = await raw(`/object/authenticated/${BUCKET}/${DIR}/missing.jpg`, { method: 'HEAD' });
    expect(head.status).toBe(400);
    expect(head.text).toBe('');
    expect(head.headers.get('content-type')).toMatch(/application\/json/);
    const route = await raw('/objects/whatever');
    expect(route.status).toBe(404);
    expect(route.body).toMatchObject({
      statusCode: 404,
      message: `Route GET:${fake.basePath}/objects/whatever not found`,
    });
  });

  it('a range wholly past the end: 416 InvalidRange without Content-Range', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const past = await raw(`/object/authenticated/${BUCKET}/${DIR}/a.jpg`, { headers: { range: 'bytes=500-600' } });
    expect(past.status).toBe(416);
    expect(past.body).toMatchObject({ error: 'invalid_range', code: 'InvalidRange' });
    expect(past.headers.get('content-range')).toBeNull();
  });

  it('duplicate upload KeyAlreadyExists; non-ASCII and % in keys InvalidKey; MIME always and size only when the length is known', async () => {
    const upload = (path: string, body: RequestInit['body'], type = 'image/jpeg', extra: RequestInit = {}) =>
      raw(`/object/${BUCKET}/${path}`, { method: 'POST', headers: { 'content-type': type }, body, ...extra });
    expect((await upload(`${DIR}/a.jpg`, jpegLike(100))).status).toBe(200);
    expect((await upload(`${DIR}/a.jpg`, jpegLike(100))).body.code).toBe('KeyAlreadyExists');
    expect((await upload(`${DIR}/${encodeURIComponent('é.jpg')}`, jpegLike(100))).body.code).toBe('InvalidKey');
    expect((await upload(`${DIR}/${encodeURIComponent('x%20y.jpg')}`, jpegLike(100))).body.code).toBe('InvalidKey');
    fake.createBucket('limited', { allowedMimeTypes: ['image/jpeg'], fileSizeLimit: 1000 });
    const png = await raw(`/object/limited/${DIR}/a.png`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: jpegLike(10),
    });
    expect(png.status).toBe(415);
    expect(png.body.message).toBe('mime type image/png is not supported');
    const big = await raw(`/object/limited/${DIR}/big.jpg`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: jpegLike(2000),
    });
    expect(big.status).toBe(413);
    const chunked = await raw(`/object/limited/${DIR}/chunked.jpg`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: Readable.toWeb(Readable.from([jpegLike(2000)])),
      duplex: 'half',
    });
    expect(chunked.status).toBe(200);
    expect(fake.get('limited', `${DIR}/chunked.jpg`)!.body.length).toBe(2000);
  });

  it('signed URLs: expired InvalidJWT, another object\'s InvalidSignature, tampered "signature verification failed"', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.put(BUCKET, `${DIR}/b.jpg`, jpegLike(100));
    const get = (path: string, token: string) => raw(`/object/sign/${BUCKET}/${path}?token=${token}`, { key: null });
    const expired = await get(`${DIR}/a.jpg`, fake.token(BUCKET, `${DIR}/a.jpg`, -10));
    expect(expired.body).toMatchObject({ code: 'InvalidJWT', message: '"exp" claim timestamp check failed' });
    const foreign = await get(`${DIR}/b.jpg`, fake.token(BUCKET, `${DIR}/a.jpg`, 60));
    expect(foreign.body.code).toBe('InvalidSignature');
    const token = fake.token(BUCKET, `${DIR}/a.jpg`, 60);
    const tampered = await get(`${DIR}/a.jpg`, `${token.slice(0, -2)}xx`);
    expect(tampered.body.message).toBe('signature verification failed');
    expect((await get(`${DIR}/a.jpg`, token)).status).toBe(200);
  });

  it('transforms off: signing with a transform gives /object/sign; render is a route 404 (self-hosted) or 403 FeatureNotEnabled (hosted)', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.transforms = 'off-self-hosted';
    const signed = await raw(`/object/sign/${BUCKET}/${DIR}/a.jpg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ expiresIn: 60, transform: { width: 10, height: 10 } }),
    });
    expect(String(signed.body.signedURL)).toMatch(new RegExp(`^/object/sign/${BUCKET}/`));
    const selfHosted = await raw(`/render/image/authenticated/${BUCKET}/${DIR}/a.jpg?width=10`);
    expect(selfHosted.status).toBe(404);
    expect(String(selfHosted.body.message)).toMatch(/^Route GET:.*render\/image\/authenticated.* not found$/);
    fake.transforms = 'off-hosted';
    const hosted = await raw(`/render/image/authenticated/${BUCKET}/${DIR}/a.jpg?width=10`);
    expect(hosted.status).toBe(403);
    expect(hosted.body.code).toBe('FeatureNotEnabled');
  });

  it('render of an undecodable file: 400 InvalidRequest; renderer down: 500 InternalError after the delay', async () => {
    fake.put(BUCKET, `${DIR}/doc.pdf`, randomBytes(100), { contentType: 'application/pdf' });
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const undecodable = await raw(`/render/image/authenticated/${BUCKET}/${DIR}/doc.pdf?width=10`);
    expect(undecodable.status).toBe(400);
    expect(undecodable.body.code).toBe('InvalidRequest');
    fake.rendererDown = { delayMs: 50 };
    const down = await raw(`/render/image/authenticated/${BUCKET}/${DIR}/a.jpg?width=10`);
    expect(down.status).toBe(500);
    expect(down.body).toMatchObject({ statusCode: '500', error: 'InternalError', message: 'fetch failed' });
  });
});

describe('the driver tells the answers apart', () => {
  it('only an object-level answer is "not found"', async () => {
    await expect(driver().stat(BUCKET, `${DIR}/missing.jpg`)).resolves.toBeNull();
    await expect(driver().readToFile(BUCKET, `${DIR}/missing.jpg`)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('a URL without the gateway prefix is a configuration error naming SUPABASE_URL, not a missing file', async () => {
    bare.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const err = await rejection(driver({}, bare).stat(BUCKET, `${DIR}/a.jpg`));
    expect(err.kind).toBe('config');
    expect(err.details.setting).toBe('SUPABASE_URL');
    expect(err.reason).toMatch(/SUPABASE_URL/);
    const read = await rejection(driver({}, bare).readToFile(BUCKET, `${DIR}/a.jpg`));
    expect(read.details.setting).toBe('SUPABASE_URL');
  });

  it('a wrong key is a configuration error naming SUPABASE_SERVICE_ROLE_KEY (info included), a missing bucket one naming STORAGE_BUCKET', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    const wrong = driver({ serviceRoleKey: 'wrong-key' });
    const stat = await rejection(wrong.stat(BUCKET, `${DIR}/a.jpg`));
    expect(stat.kind).toBe('config');
    expect(stat.reason).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    const read = await rejection(wrong.readToFile(BUCKET, `${DIR}/a.jpg`));
    expect(read.details.setting).toBe('SUPABASE_SERVICE_ROLE_KEY');
    const bucket = await rejection(driver().stat('elsewhere', `${DIR}/a.jpg`));
    expect(bucket.details.setting).toBe('STORAGE_BUCKET');
  });

  it('5xx through the retries is an outage ("unavailable"); reachable() tells it from one failing object', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.inject({ op: 'download', path: `${DIR}/a.jpg`, fault: { kind: 'status', status: 503 } });
    const err = await rejection(driver().readToFile(BUCKET, `${DIR}/a.jpg`));
    expect(err.kind).toBe('unavailable');
    await expect(driver().reachable(BUCKET)).resolves.toBe(true);
    fake.outage = 503;
    await expect(driver().reachable(BUCKET)).resolves.toBe(false);
  });

  it('the start-up check passes with the service key and leaves nothing behind; names the setting otherwise', async () => {
    await driver().check(BUCKET);
    expect(fake.objects.size).toBe(0);
    expect((await rejection(driver({ serviceRoleKey: ANON }).check(BUCKET))).reason).toMatch(
      /SUPABASE_SERVICE_ROLE_KEY/,
    );
    expect((await rejection(driver({ serviceRoleKey: 'wrong' }).check(BUCKET))).reason).toMatch(
      /SUPABASE_SERVICE_ROLE_KEY/,
    );
    expect((await rejection(driver().check('elsewhere'))).reason).toMatch(/STORAGE_BUCKET/);
    expect((await rejection(driver({}, bare).check(BUCKET))).reason).toMatch(/SUPABASE_URL/);
  });

  it('the start-up check tells an outage while writing its probe from a wrong key', async () => {
    fake.inject({ op: 'upload', times: 2, fault: { kind: 'status', status: 503 } });
    const err = await rejection(driver().check(BUCKET));
    expect(err.kind).toBe('unavailable');
    expect(err.reason).not.toMatch(/SUPABASE_SERVICE_ROLE_KEY|anon key/);
  });

  it('a remove that removes fewer objects than asked is an error: the anon key, whose remove answers 200 []', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.put(BUCKET, `${DIR}/b.jpg`, jpegLike(100));
    const err = await rejection(driver({ serviceRoleKey: ANON }).remove(BUCKET, [`${DIR}/a.jpg`, `${DIR}/b.jpg`]));
    expect(err.reason).toMatch(/removed 0 of 2/);
    expect(err.reason).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
    expect(fake.objects.size).toBe(2);
    // With the service key the same call removes them, and an object already gone is no error.
    await driver().remove(BUCKET, [`${DIR}/a.jpg`, `${DIR}/b.jpg`, `${DIR}/gone.jpg`]);
    expect(fake.objects.size).toBe(0);
  });

  it('keys with ?, # and a space are encoded for every call: what is written is what is read, signed and removed', async () => {
    const d = driver();
    for (const name of ['q?.jpg', 'a#1.jpg', 'x y.jpg']) {
      const path = `${DIR}/${name}`;
      await d.write(BUCKET, path, jpegLike(200), { contentType: 'image/jpeg' });
      expect(fake.has(BUCKET, path)).toBe(true);
      expect((await d.stat(BUCKET, path))?.size).toBe(200);
      const file = await d.readToFile(BUCKET, path);
      expect(file.size).toBe(200);
      await file.release();
      expect((await d.readRange(BUCKET, path, 0, 10)).length).toBe(10);
      const url = await d.signedUrl(BUCKET, path, 60);
      expect((await fetch(url)).status).toBe(200);
      const [many] = await d.signedUrls(BUCKET, [path], 60);
      expect((await fetch(many!)).status).toBe(200);
      await d.remove(BUCKET, [path]);
      expect(fake.has(BUCKET, path)).toBe(false);
    }
    expect(fake.objects.size).toBe(0);
  });

  it('names storage cannot hold (non-ASCII, %) are refused before any request, with the reason', async () => {
    for (const name of ['é.jpg', 'x%20y.jpg']) {
      expect(() => driver().checkKey(`${DIR}/${name}`)).toThrow(InvalidPathError);
      await expect(driver().stat(BUCKET, `${DIR}/${name}`)).rejects.toBeInstanceOf(InvalidPathError);
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('a refused upload (bucket MIME types) is a "refused" error with the storage\'s reason', async () => {
    fake.createBucket('limited', { allowedMimeTypes: ['image/jpeg'] });
    const err = await rejection(
      driver().write('limited', `${DIR}/a.png`, Buffer.from('png'), { contentType: 'image/png' }),
    );
    expect(err.kind).toBe('refused');
    expect(err.reason).toMatch(/mime type image\/png is not supported/);
  });
});

describe('transforms degrade, per process', () => {
  it('a self-hosted server without transforms (route 404): the first refusal turns them off, no more render requests', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.transforms = 'off-self-hosted';
    const d = driver();
    for (let i = 0; i < 5; i++) {
      await expect(d.readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 10, height: 10 })).rejects.toBeInstanceOf(
        TransformRefusedError,
      );
    }
    expect(fake.log('render')).toHaveLength(1);
    // Signed thumbnails follow the same decision: the original, signed.
    expect(await d.signedUrl(BUCKET, `${DIR}/a.jpg`, 60, { transform: { width: 10, height: 10 } })).toMatch(
      /\/object\/sign\//,
    );
    await expect(d.transformsUsable(BUCKET, `${DIR}/a.jpg`)).resolves.toBe(false);
  });

  it('a hosted project without the feature (403 FeatureNotEnabled): off at once, not a key error', async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.transforms = 'off-hosted';
    const d = driver();
    const err = await d.readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 10, height: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransformRefusedError);
    await d.readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 10, height: 10 }).catch(() => {});
    expect(fake.log('render')).toHaveLength(1);
  });

  it("a renderer that answers 500: off after three failures; one object's refusal does not count", async () => {
    fake.put(BUCKET, `${DIR}/a.jpg`, jpegLike(100));
    fake.put(BUCKET, `${DIR}/doc.pdf`, randomBytes(100), { contentType: 'application/pdf' });
    const d = driver();
    for (let i = 0; i < 4; i++)
      await d.readTransformed(BUCKET, `${DIR}/doc.pdf`, { width: 10, height: 10 }).catch(() => {});
    expect(d.breaker.allows()).toBe(true);
    fake.rendererDown = { delayMs: 10 };
    fake.clearLog();
    for (let i = 0; i < 10; i++)
      await d.readTransformed(BUCKET, `${DIR}/a.jpg`, { width: 10, height: 10 }).catch(() => {});
    expect(fake.log('render')).toHaveLength(3);
  });

  it('the breaker tries again after its wait, and one more failure opens it again at once', () => {
    const b = new TransformBreaker(3, 1000);
    b.failed('500', false, 0);
    b.failed('500', false, 0);
    expect(b.allows(0)).toBe(true);
    b.failed('500', false, 0);
    expect(b.allows(999)).toBe(false);
    expect(b.allows(1000)).toBe(true);
    b.failed('500', false, 1000);
    expect(b.allows(1001)).toBe(false);
    expect(b.allows(2000)).toBe(true);
    b.succeeded(2000);
    b.failed('500', false, 2000);
    expect(b.allows(2001)).toBe(true);
  });
});

it('leaves no temp file behind', async () => {
  expect(await readdir(temp)).toEqual([]);
});
