import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidPathError, ObjectNotFoundError } from './driver.js';
import { LocalStorage, contentTypeOf } from './local.js';

const BUCKET = 'photos';
const PATH = 'triage/user-1/job-1/3f2a.jpg';

let root: string;
let storage: LocalStorage;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'triage-storage-test-'));
  storage = new LocalStorage({ root });
});

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
});

/** Bytes that differ at every offset, so a shifted or truncated read is caught. */
function pattern(size: number, seed = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Every file under a folder, relative, sorted. */
/** Sizes of the files being written beside the objects (`write` renames them into place when done). */
async function partialSizes(): Promise<number[]> {
  const partial = (await listFiles(root)).filter((f) => f.includes('.partial-'));
  return Promise.all(partial.map(async (f) => (await stat(join(root, f))).size));
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}

describe('LocalStorage: write and read back', () => {
  it('stores bucket B, path P at $root/B/P', async () => {
    const body = pattern(1000);
    await storage.write(BUCKET, PATH, body, { contentType: 'image/jpeg' });
    expect(await readFile(join(root, BUCKET, PATH))).toEqual(body);
    expect(storage.root).toBe(root);
    expect(storage.filePath(BUCKET, PATH)).toBe(join(root, BUCKET, PATH));
  });

  it('stat gives size, type and time', async () => {
    const before = Date.now();
    await storage.write(BUCKET, PATH, pattern(12345), { contentType: 'image/jpeg' });
    const info = await storage.stat(BUCKET, PATH);
    expect(info).not.toBeNull();
    expect(info!.size).toBe(12345);
    expect(info!.contentType).toBe('image/jpeg');
    expect(info!.modifiedAt).toBeInstanceOf(Date);
    expect(info!.modifiedAt!.getTime()).toBeGreaterThanOrEqual(before - 2000);
  });

  it('readToFile hands over the file itself, with its size', async () => {
    const body = pattern(5000);
    await storage.write(BUCKET, PATH, body, { contentType: 'image/jpeg' });
    const file = await storage.readToFile(BUCKET, PATH);
    expect(file.path).toBe(join(root, BUCKET, PATH));
    expect(file.size).toBe(5000);
    expect(await readFile(file.path)).toEqual(body);
    await file.release();
    // Releasing the stored original must not delete it.
    expect(await storage.stat(BUCKET, PATH)).not.toBeNull();
  });

  it('readStream gives the bytes', async () => {
    const body = pattern(300_000);
    await storage.write(BUCKET, PATH, body, { contentType: 'image/jpeg' });
    expect(await collect(await storage.readStream(BUCKET, PATH))).toEqual(body);
  });

  it('readRange gives the first 64 KB of a bigger file', async () => {
    const body = pattern(300_000);
    await storage.write(BUCKET, PATH, body, { contentType: 'image/jpeg' });
    const head = await storage.readRange(BUCKET, PATH, 0, 65536);
    expect(head.length).toBe(65536);
    expect(head).toEqual(body.subarray(0, 65536));
  });

  it('readRange gives any inner range, and stops at the end of the object', async () => {
    const body = pattern(100_000);
    await storage.write(BUCKET, PATH, body, { contentType: 'image/jpeg' });
    expect(await storage.readRange(BUCKET, PATH, 1000, 1010)).toEqual(body.subarray(1000, 1010));
    expect(await storage.readRange(BUCKET, PATH, 99_990, 200_000)).toEqual(body.subarray(99_990));
    expect((await storage.readRange(BUCKET, PATH, 0, 65536 * 4)).length).toBe(100_000);
    expect((await storage.readRange(BUCKET, PATH, 500, 500)).length).toBe(0);
    expect((await storage.readRange(BUCKET, PATH, 200_000, 200_100)).length).toBe(0);
  });

  it('readRange of a small file gives the whole file', async () => {
    await storage.write(BUCKET, PATH, Buffer.from('tiny'), { contentType: 'image/jpeg' });
    expect((await storage.readRange(BUCKET, PATH, 0, 65536)).toString()).toBe('tiny');
  });

  it('readRange rejects invalid ranges', async () => {
    await storage.write(BUCKET, PATH, pattern(100), { contentType: 'image/jpeg' });
    await expect(storage.readRange(BUCKET, PATH, -1, 10)).rejects.toThrow(RangeError);
    await expect(storage.readRange(BUCKET, PATH, 10, 5)).rejects.toThrow(RangeError);
    await expect(storage.readRange(BUCKET, PATH, 0.5, 5)).rejects.toThrow(RangeError);
  });

  it('writes a stream', async () => {
    const parts = [pattern(70_000, 1), pattern(1, 2), pattern(250_000, 3)];
    await storage.write(BUCKET, PATH, Readable.from(parts), { contentType: 'image/jpeg' });
    const expected = Buffer.concat(parts);
    expect(await readFile(join(root, BUCKET, PATH))).toEqual(expected);
    expect((await storage.stat(BUCKET, PATH))!.size).toBe(expected.length);
    expect(await collect(await storage.readStream(BUCKET, PATH))).toEqual(expected);
  });

  it('writes an empty object', async () => {
    await storage.write(BUCKET, 'empty.jpg', Buffer.alloc(0), { contentType: 'image/jpeg' });
    expect((await storage.stat(BUCKET, 'empty.jpg'))!.size).toBe(0);
  });

  it('keeps buckets apart', async () => {
    await storage.write('photos', 'a.jpg', Buffer.from('one'), { contentType: 'image/jpeg' });
    await storage.write('thumbs', 'a.jpg', Buffer.from('two'), { contentType: 'image/jpeg' });
    expect((await storage.readRange('photos', 'a.jpg', 0, 10)).toString()).toBe('one');
    expect((await storage.readRange('thumbs', 'a.jpg', 0, 10)).toString()).toBe('two');
  });
});

describe('LocalStorage: missing objects', () => {
  it('stat gives null', async () => {
    expect(await storage.stat(BUCKET, PATH)).toBeNull();
    expect(await storage.stat('nobucket', 'a.jpg')).toBeNull();
  });

  it('readToFile, readStream and readRange throw ObjectNotFoundError', async () => {
    await expect(storage.readToFile(BUCKET, PATH)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readStream(BUCKET, PATH)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readRange(BUCKET, PATH, 0, 10)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readRange(BUCKET, PATH, 0, 10)).rejects.toMatchObject({ bucket: BUCKET, path: PATH });
  });

  it('treats a path below a file as missing', async () => {
    await storage.write(BUCKET, 'a.jpg', Buffer.from('x'), { contentType: 'image/jpeg' });
    expect(await storage.stat(BUCKET, 'a.jpg/b.jpg')).toBeNull();
    await expect(storage.readToFile(BUCKET, 'a.jpg/b.jpg')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readStream(BUCKET, 'a.jpg/b.jpg')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readRange(BUCKET, 'a.jpg/b.jpg', 0, 1)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('treats a folder (a prefix of other objects) as a missing object in every read', async () => {
    await storage.write(BUCKET, PATH, pattern(100), { contentType: 'image/jpeg' });
    const folder = 'triage/user-1';
    expect(await storage.stat(BUCKET, folder)).toBeNull();
    await expect(storage.readToFile(BUCKET, folder)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readRange(BUCKET, folder, 0, 10)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.readStream(BUCKET, folder).then(collect)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});

describe('LocalStorage: atomic writes', () => {
  it('overwrites, leaving no partial file behind', async () => {
    await storage.write(BUCKET, PATH, pattern(50_000, 1), { contentType: 'image/jpeg' });
    await storage.write(BUCKET, PATH, pattern(20_000, 2), { contentType: 'image/jpeg' });
    expect(await readFile(join(root, BUCKET, PATH))).toEqual(pattern(20_000, 2));
    expect(await listFiles(root)).toEqual([join(BUCKET, PATH)]);
  });

  it('lets readers see only the old object while a new one is being written', async () => {
    const old = pattern(10_000, 1);
    await storage.write(BUCKET, PATH, old, { contentType: 'image/jpeg' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<Buffer> {
      yield pattern(30_000, 2).subarray(0, 15_000);
      await gate;
      yield pattern(30_000, 2).subarray(15_000);
    }
    const writing = storage.write(BUCKET, PATH, Readable.from(slow()), { contentType: 'image/jpeg' });
    await vi.waitUntil(async () => (await partialSizes()).includes(15_000), { timeout: 30_000 });
    // Half of the new object is on disk somewhere, but the object still reads whole and old.
    expect((await storage.stat(BUCKET, PATH))!.size).toBe(10_000);
    expect(await storage.readRange(BUCKET, PATH, 0, 100_000)).toEqual(old);
    release();
    await writing;
    expect(await storage.readRange(BUCKET, PATH, 0, 100_000)).toEqual(pattern(30_000, 2));
    expect(await listFiles(root)).toEqual([join(BUCKET, PATH)]);
  });

  it('keeps the old object and leaves no partial file when the body fails midway', async () => {
    const old = pattern(10_000, 1);
    await storage.write(BUCKET, PATH, old, { contentType: 'image/jpeg' });
    async function* broken(): AsyncGenerator<Buffer> {
      yield pattern(5000, 2);
      throw new Error('upload interrupted');
    }
    await expect(storage.write(BUCKET, PATH, Readable.from(broken()), { contentType: 'image/jpeg' })).rejects.toThrow(
      'upload interrupted',
    );
    expect(await readFile(join(root, BUCKET, PATH))).toEqual(old);
    expect(await listFiles(root)).toEqual([join(BUCKET, PATH)]);
  });

  it('survives two writes of the same object started in the same millisecond', async () => {
    // At-least-once delivery can run the same step twice at once. Date.now() is frozen so that both writes
    // start "in the same millisecond" (which happens unfrozen too, just not every time).
    vi.spyOn(Date, 'now').mockReturnValue(1_800_000_000_000);
    const a = pattern(40_000, 1);
    const b = pattern(40_000, 2);
    const gates = [0, 1].map(() => {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      return { promise, open };
    });
    async function* body(bytes: Buffer, gate: Promise<void>): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, 20_000);
      await gate;
      yield bytes.subarray(20_000);
    }
    const settle = (p: Promise<void>) =>
      p.then(
        () => 'fulfilled',
        (err: Error) => `rejected: ${err.message}`,
      );
    const writeA = settle(
      storage.write(BUCKET, PATH, Readable.from(body(a, gates[0]!.promise)), { contentType: 'image/jpeg' }),
    );
    const writeB = settle(
      storage.write(BUCKET, PATH, Readable.from(body(b, gates[1]!.promise)), { contentType: 'image/jpeg' }),
    );
    // Both are half written, side by side.
    await vi.waitUntil(async () => (await partialSizes()).filter((size) => size === 20_000).length === 2, {
      timeout: 30_000,
    });
    gates[0]!.open();
    expect(await writeA).toBe('fulfilled');
    // A finished: the object is exactly A, whatever B is still doing.
    expect(await readFile(join(root, BUCKET, PATH))).toEqual(a);
    gates[1]!.open();
    expect(await writeB).toBe('fulfilled');
    const stored = await readFile(join(root, BUCKET, PATH));
    expect(stored.equals(a) || stored.equals(b)).toBe(true);
    expect(await listFiles(root)).toEqual([join(BUCKET, PATH)]);
  });
});

describe('LocalStorage: remove', () => {
  it('removes objects and ignores missing ones', async () => {
    await storage.write(BUCKET, 'a/1.jpg', Buffer.from('1'), { contentType: 'image/jpeg' });
    await storage.write(BUCKET, 'a/2.jpg', Buffer.from('2'), { contentType: 'image/jpeg' });
    await storage.remove(BUCKET, ['a/1.jpg', 'a/missing.jpg', 'nowhere/x.jpg']);
    expect(await storage.stat(BUCKET, 'a/1.jpg')).toBeNull();
    expect(await storage.stat(BUCKET, 'a/2.jpg')).not.toBeNull();
    await storage.remove(BUCKET, ['a/1.jpg']);
    await storage.remove('nobucket', ['x.jpg']);
    await storage.remove(BUCKET, []);
  });

  it('rejects an escaping path', async () => {
    await writeFile(join(root, 'secret'), 'keep me');
    await expect(storage.remove(BUCKET, ['../secret'])).rejects.toBeInstanceOf(InvalidPathError);
    expect(await readFile(join(root, 'secret'), 'utf8')).toBe('keep me');
  });
});

describe('LocalStorage: path escapes', () => {
  const badPaths = [
    '../x',
    'a/../../x',
    '/etc/passwd',
    'a//b',
    './a',
    'a/%2e%2e/b',
    'a\\b',
    'a\u0000b',
    'a\nb',
    'a/\u001f',
    '..',
    '',
  ];
  const badBuckets = ['..', 'a/b', '.', '', '../photos', 'a\\b'];

  it('rejects escaping or malformed paths in every operation', async () => {
    for (const path of badPaths) {
      const label = JSON.stringify(path);
      expect(() => storage.filePath(BUCKET, path), label).toThrow(InvalidPathError);
      await expect(storage.stat(BUCKET, path), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.readToFile(BUCKET, path), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.readStream(BUCKET, path), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.readRange(BUCKET, path, 0, 10), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(
        storage.write(BUCKET, path, Buffer.from('x'), { contentType: 'image/jpeg' }),
        label,
      ).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.signedUrl(BUCKET, path, 60), label).rejects.toBeInstanceOf(InvalidPathError);
    }
  });

  it('rejects bad bucket names in every operation', async () => {
    for (const bucket of badBuckets) {
      const label = JSON.stringify(bucket);
      expect(() => storage.filePath(bucket, 'a.jpg'), label).toThrow(InvalidPathError);
      await expect(storage.stat(bucket, 'a.jpg'), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.readRange(bucket, 'a.jpg', 0, 1), label).rejects.toBeInstanceOf(InvalidPathError);
      await expect(
        storage.write(bucket, 'a.jpg', Buffer.from('x'), { contentType: 'image/jpeg' }),
        label,
      ).rejects.toBeInstanceOf(InvalidPathError);
      await expect(storage.remove(bucket, ['a.jpg']), label).rejects.toBeInstanceOf(InvalidPathError);
    }
  });

  it('never reads or writes outside the root', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'triage-outside-'));
    try {
      await writeFile(join(outside, 'secret'), 'keep me');
      await mkdir(join(root, BUCKET), { recursive: true });
      const rel = join('..', '..', outside.slice(1), 'secret');
      await expect(storage.readRange(BUCKET, rel, 0, 100)).rejects.toBeInstanceOf(InvalidPathError);
      await expect(
        storage.write(BUCKET, rel, Buffer.from('pwned'), { contentType: 'image/jpeg' }),
      ).rejects.toBeInstanceOf(InvalidPathError);
      await expect(
        storage.write(BUCKET, `${outside}/secret`, Buffer.from('pwned'), { contentType: 'image/jpeg' }),
      ).rejects.toBeInstanceOf(InvalidPathError);
      expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('keep me');
      expect(await listFiles(root)).toEqual([]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe('LocalStorage: signed URLs', () => {
  it('gives a file: URL of the object by default', async () => {
    await storage.write(BUCKET, PATH, Buffer.from('x'), { contentType: 'image/jpeg' });
    const url = await storage.signedUrl(BUCKET, PATH, 3600);
    expect(url.startsWith('file://')).toBe(true);
    expect(fileURLToPath(url)).toBe(join(root, BUCKET, PATH));
  });

  it('encodes awkward names in a file: URL', async () => {
    const path = 'triage/u/j/my photo #1 é.jpg';
    const url = await storage.signedUrl(BUCKET, path, 3600);
    expect(new URL(url).protocol).toBe('file:');
    expect(fileURLToPath(url)).toBe(join(root, BUCKET, path));
  });

  it('requires a signing key with a public URL', () => {
    expect(() => new LocalStorage({ root, publicUrl: 'http://localhost:3000/storage' })).toThrow(/signing key/);
  });

  describe('with publicUrl and signingKey', () => {
    const publicUrl = 'http://localhost:3000/storage';
    const signingKey = 'test-signing-key';

    function parse(url: string): { bucket: string; path: string; expires: number; signature: string } {
      const u = new URL(url);
      const prefix = new URL(publicUrl).pathname + '/';
      expect(u.pathname.startsWith(prefix)).toBe(true);
      const [bucket, ...rest] = u.pathname.slice(prefix.length).split('/');
      return {
        bucket: decodeURIComponent(bucket!),
        path: rest.map(decodeURIComponent).join('/'),
        expires: Number(u.searchParams.get('expires')),
        signature: u.searchParams.get('signature') ?? '',
      };
    }

    it('gives an http URL whose signature verifies', async () => {
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const now = Math.floor(Date.now() / 1000);
      const url = await signed.signedUrl(BUCKET, PATH, 3600);
      expect(url.startsWith(`${publicUrl}/${BUCKET}/${PATH}?`)).toBe(true);
      const p = parse(url);
      expect(p).toMatchObject({ bucket: BUCKET, path: PATH });
      expect(p.expires).toBeGreaterThanOrEqual(now + 3600);
      expect(p.expires).toBeLessThanOrEqual(now + 3602);
      expect(p.signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(signed.verifySignedUrl(p.bucket, p.path, p.expires, p.signature)).toBe(true);
    });

    it('handles a trailing slash on the public URL', async () => {
      const signed = new LocalStorage({ root, publicUrl: `${publicUrl}/`, signingKey });
      const url = await signed.signedUrl(BUCKET, PATH, 60);
      expect(url.startsWith(`${publicUrl}/${BUCKET}/${PATH}?`)).toBe(true);
    });

    it('encodes awkward names so that they verify after decoding', async () => {
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const path = 'triage/u/j/my photo #1 ?é&x=1.jpg';
      const url = await signed.signedUrl(BUCKET, path, 60);
      const p = parse(url);
      expect(p.path).toBe(path);
      expect(new URL(url).searchParams.get('x')).toBeNull();
      expect(signed.verifySignedUrl(p.bucket, p.path, p.expires, p.signature)).toBe(true);
    });

    it('fails when tampered with', async () => {
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const p = parse(await signed.signedUrl(BUCKET, PATH, 3600));
      expect(signed.verifySignedUrl(BUCKET, 'triage/user-1/job-1/other.jpg', p.expires, p.signature)).toBe(false);
      expect(signed.verifySignedUrl('thumbs', PATH, p.expires, p.signature)).toBe(false);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires + 1, p.signature)).toBe(false);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires + 86_400, p.signature)).toBe(false);
      const flipped = (p.signature[0] === 'A' ? 'B' : 'A') + p.signature.slice(1);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, flipped)).toBe(false);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, p.signature.slice(1))).toBe(false);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, '')).toBe(false);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, `${p.signature}x`)).toBe(false);
    });

    it('fails with another key, and without a key', async () => {
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const p = parse(await signed.signedUrl(BUCKET, PATH, 3600));
      const other = new LocalStorage({ root, publicUrl, signingKey: 'another-key' });
      expect(other.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(false);
      expect(storage.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(false);
    });

    it('fails once expired', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const start = new Date('2026-11-20T12:00:00.000Z');
      vi.setSystemTime(start);
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const p = parse(await signed.signedUrl(BUCKET, PATH, 3600));
      expect(p.expires).toBe(start.getTime() / 1000 + 3600);
      vi.setSystemTime(start.getTime() + 3599_000);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(true);
      vi.setSystemTime(start.getTime() + 3600_000);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(false);
      vi.setSystemTime(start.getTime() + 7200_000);
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(false);
    });

    it('gives an already expired URL for a non-positive lifetime', async () => {
      const signed = new LocalStorage({ root, publicUrl, signingKey });
      const p = parse(await signed.signedUrl(BUCKET, PATH, -10));
      expect(signed.verifySignedUrl(BUCKET, PATH, p.expires, p.signature)).toBe(false);
    });
  });
});

describe('LocalStorage: read latency', () => {
  it('delays every read by readLatencyMs', async () => {
    const slow = new LocalStorage({ root, readLatencyMs: 150 });
    await slow.write(BUCKET, PATH, pattern(1000), { contentType: 'image/jpeg' });
    for (const read of [
      () => slow.readRange(BUCKET, PATH, 0, 10),
      () => slow.readToFile(BUCKET, PATH),
      () => slow.readStream(BUCKET, PATH).then(collect),
    ]) {
      const t0 = performance.now();
      await read();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    }
  });

  it('does not delay writes or stat', async () => {
    // An hour per read: a delayed write or stat could not end within the test's time, on any machine.
    const slow = new LocalStorage({ root, readLatencyMs: 3_600_000 });
    const t0 = performance.now();
    await slow.write(BUCKET, PATH, pattern(1000), { contentType: 'image/jpeg' });
    await slow.stat(BUCKET, PATH);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('stops waiting as soon as the signal aborts', async () => {
    // An hour per read: a read that ignored the abort could not settle within the test's time, on any machine.
    const slow = new LocalStorage({ root, readLatencyMs: 3_600_000 });
    await slow.write(BUCKET, PATH, pattern(1000), { contentType: 'image/jpeg' });
    for (const read of [
      (signal: AbortSignal) => slow.readRange(BUCKET, PATH, 0, 10, { signal }),
      (signal: AbortSignal) => slow.readToFile(BUCKET, PATH, { signal }),
      (signal: AbortSignal) => slow.readStream(BUCKET, PATH, { signal }),
    ]) {
      const controller = new AbortController();
      const t0 = performance.now();
      const reading = read(controller.signal);
      // The read is waiting (its signal was live when it was called: see the next test for one that is not).
      controller.abort();
      await expect(reading).rejects.toMatchObject({ name: 'AbortError' });
      expect(performance.now() - t0).toBeLessThan(30_000);
    }
  });

  it('refuses to start with an aborted signal', async () => {
    await storage.write(BUCKET, PATH, pattern(1000), { contentType: 'image/jpeg' });
    for (const s of [storage, new LocalStorage({ root, readLatencyMs: 10 })]) {
      const signal = AbortSignal.abort();
      await expect(s.readRange(BUCKET, PATH, 0, 10, { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(s.readToFile(BUCKET, PATH, { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(s.readStream(BUCKET, PATH, { signal })).rejects.toMatchObject({ name: 'AbortError' });
    }
  });

  it('aborts a stream already being read', async () => {
    await storage.write(BUCKET, PATH, pattern(5_000_000), { contentType: 'image/jpeg' });
    const controller = new AbortController();
    const stream = await storage.readStream(BUCKET, PATH, { signal: controller.signal });
    controller.abort();
    await expect(collect(stream)).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('contentTypeOf', () => {
  it('maps image extensions, case-insensitively', () => {
    expect(contentTypeOf('a.jpg')).toBe('image/jpeg');
    expect(contentTypeOf('a/b.JPEG')).toBe('image/jpeg');
    expect(contentTypeOf('x.png')).toBe('image/png');
    expect(contentTypeOf('x.HEIC')).toBe('image/heic');
    expect(contentTypeOf('x.webp')).toBe('image/webp');
    expect(contentTypeOf('x.tif')).toBe('image/tiff');
  });

  it('falls back to octet-stream', () => {
    expect(contentTypeOf('x.bin')).toBe('application/octet-stream');
    expect(contentTypeOf('noext')).toBe('application/octet-stream');
  });
});

describe('LocalStorage: copy', () => {
  it('copies an object to another path, keeps an existing destination, and leaves no partial file', async () => {
    const original = pattern(200_000, 3);
    await storage.write(BUCKET, PATH, original, { contentType: 'image/jpeg' });
    await storage.copy(BUCKET, PATH, 'user-1/scored/job-1/3f2a.jpg');
    expect(await collect(await storage.readStream(BUCKET, 'user-1/scored/job-1/3f2a.jpg'))).toEqual(original);
    // A repeated copy after the source changed keeps the first copy: the destination is never overwritten.
    await storage.write(BUCKET, PATH, pattern(10, 4), { contentType: 'image/jpeg' });
    await storage.copy(BUCKET, PATH, 'user-1/scored/job-1/3f2a.jpg');
    expect(await collect(await storage.readStream(BUCKET, 'user-1/scored/job-1/3f2a.jpg'))).toEqual(original);
    expect((await readdir(join(root, BUCKET, 'user-1/scored/job-1'))).sort()).toEqual(['3f2a.jpg']);
  });

  it('a missing source is an ObjectNotFoundError, and an escaping path is refused', async () => {
    await expect(storage.copy(BUCKET, PATH, 'user-1/x.jpg')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await storage.write(BUCKET, PATH, pattern(10), { contentType: 'image/jpeg' });
    await expect(storage.copy(BUCKET, PATH, '../other/x.jpg')).rejects.toBeInstanceOf(InvalidPathError);
  });
});
