/**
 * Security through the real app (routes.test.ts and src/auth.test.ts cover the basics; this file covers what
 * they do not): attack tokens and key confusion end to end, another user probing a running job, storage path
 * escapes in the forms routes.test.ts leaves out, body and count limits, one rate budget for job creation,
 * the dashboard's credentials, and a whole job run with real secrets set, after which neither the API's nor
 * the worker's logs, nor the job data, nor any Redis value holds a token, a key or a signed URL.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysUnder } from '@triage/queue';
import { generateSampleSet } from '@triage/images';
import { SupabaseStorage } from '@triage/storage';
import { FakeSupabase } from '@triage/storage/testing';
import { FakeAnthropic } from '@triage/vision/testing';
import { createAuthenticator } from '../src/auth.js';
import { BUCKET, JPEG_BYTES, JWT_SECRET, REDIS_URL, setup, type Env } from './harness.js';

const A = 'user-a';
const B = 'user-b';
const WORKER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../worker/dist/main.js');

// ---------------------------------------------------------------- helpers

/** A pino logger writing into memory, at the most talkative level. */
function capturedLogger(): { logger: Logger; text(): string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), text: () => lines.join('') };
}

const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: JWTPayload = {}): JWTPayload => ({
  sub: A,
  aud: 'authenticated',
  role: 'authenticated',
  iat: now(),
  exp: now() + 3600,
  ...overrides,
});
const hs256 = (payload: JWTPayload, secret: string | Uint8Array = JWT_SECRET) =>
  new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** Any header, the signature an HMAC-SHA256 of the signing input with `key`. */
function forge(header: Record<string, unknown>, payload: JWTPayload, key: string | Buffer = JWT_SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

/** A refused token: 401, `WWW-Authenticate: Bearer`, a body that is `{detail}` only and holds no part of the token. */
function expectRefused(
  res: { statusCode: number; headers: Record<string, unknown>; body: string; json(): unknown },
  token: string,
  what: string,
) {
  expect(res.statusCode, what).toBe(401);
  expect(res.headers['www-authenticate'], what).toBe('Bearer');
  const body = res.json() as Record<string, unknown>;
  expect(Object.keys(body), what).toEqual(['detail']);
  expect(body.detail, what).toEqual(expect.any(String));
  expect(res.body, what).not.toContain(token);
  for (const part of token.split('.')) if (part.length >= 8) expect(res.body, what).not.toContain(part);
}

/** Every string value under `prefix` in Redis, whatever its type. */
async function redisValues(env: Env, prefix: string): Promise<{ keys: number; text: string }> {
  const out: string[] = [];
  const keys = await keysUnder(env.redis, prefix);
  for (const key of keys) {
    out.push(key);
    const type = await env.redis.type(key);
    if (type === 'string') out.push((await env.redis.get(key)) ?? '');
    else if (type === 'hash') out.push(...Object.entries(await env.redis.hgetall(key)).flat());
    else if (type === 'list') out.push(...(await env.redis.lrange(key, 0, -1)));
    else if (type === 'set') out.push(...(await env.redis.smembers(key)));
    else if (type === 'zset') out.push(...(await env.redis.zrange(key, '0', '-1', 'WITHSCORES')));
    else if (type === 'stream') out.push(JSON.stringify(await env.redis.xrange(key, '-', '+')));
    else if (type !== 'none') out.push(`unread type ${type}`);
  }
  return { keys: keys.length, text: out.join('\n') };
}

let env: Env;
let apiLog: ReturnType<typeof capturedLogger>;

beforeAll(async () => {
  apiLog = capturedLogger();
  env = await setup(
    { DASHBOARD_USER: 'admin', DASHBOARD_PASSWORD: 'dashboard-password-7f3a' },
    { logger: apiLog.logger },
  );
});
afterAll(async () => {
  await env?.close();
});

async function start(e: Env, userId: string, body: Record<string, unknown>) {
  return e.app.inject({
    method: 'POST',
    url: '/api/triage/start-from-storage',
    headers: await e.auth(userId),
    payload: body,
  });
}

/** A pending job of A's (no worker runs here). */
async function pendingJob(e: Env = env, userId = A, count = 2) {
  const jobId = randomUUID();
  const files = await e.stage(userId, jobId, count);
  const res = await start(e, userId, { job_id: jobId, files });
  expect(res.statusCode, res.body).toBe(200);
  return { jobId, files };
}

// ---------------------------------------------------------------- tokens

describe('attack tokens through the real app', () => {
  it('forged, expired, wrong-audience, alg none, tampered and cross-algorithm tokens: 401 on every route, the token never echoed', async () => {
    const { jobId, files } = await pendingJob();
    const valid = await hs256(claims());
    expect(
      (
        await env.app.inject({
          method: 'GET',
          url: '/api/triage/active',
          headers: { authorization: `Bearer ${valid}` },
        })
      ).statusCode,
    ).toBe(200);

    const [h, , s] = valid.split('.');
    const cases: [string, string][] = [
      ['forged: another secret', await hs256(claims(), 'not-the-secret-but-just-as-long-0123456789abcdef')],
      ['expired a minute ago', await hs256(claims({ iat: now() - 3600, exp: now() - 60 }))],
      ['wrong audience', await hs256(claims({ aud: 'anon' }))],
      ['service-role audience', await hs256(claims({ aud: 'service_role', role: 'service_role' }))],
      ['no audience', await hs256({ sub: A, exp: now() + 3600 })],
      ['no expiry', await hs256({ sub: A, aud: 'authenticated' })],
      ['not yet valid', await hs256(claims({ nbf: now() + 600 }))],
      ['alg none, unsigned', new UnsecuredJWT(claims()).encode()],
      ['alg none, with a signature', forge({ alg: 'none', typ: 'JWT' }, claims())],
      ['alg NONE', forge({ alg: 'NONE' }, claims())],
      ['payload swapped for B', `${h}.${b64url(claims({ sub: B }))}.${s}`],
      ['HS512 with the right secret', forge({ alg: 'HS512' }, claims())],
      ['RS256-labelled, HMAC with the secret (key confusion)', forge({ alg: 'RS256', typ: 'JWT' }, claims())],
      ['ES256-labelled, HMAC with the secret (key confusion)', forge({ alg: 'ES256', kid: 'x' }, claims())],
      ['a path in sub', await hs256(claims({ sub: `${A}/../${B}` }))],
    ];
    for (const [what, token] of cases) {
      const headers = { authorization: `Bearer ${token}` };
      for (const req of [
        { method: 'GET', url: '/api/triage/active' },
        { method: 'GET', url: `/api/triage/${jobId}/status` },
        { method: 'GET', url: `/api/triage/${jobId}/events` },
        { method: 'POST', url: '/api/triage/start-from-storage', payload: { job_id: randomUUID(), files } },
        { method: 'DELETE', url: `/api/triage/${jobId}` },
      ] as const) {
        expectRefused(await env.app.inject({ ...req, headers }), token, `${what}: ${req.method} ${req.url}`);
      }
    }
    // Nothing any of them asked for happened.
    expect((await env.store.status(jobId))?.status).toBe('pending');
    expect((await env.store.meta(jobId))?.cancelRequested).toBe(false);
    expect(await env.queue.getJob(jobId)).toBeTruthy();
  });

  describe('with a JWKS configured beside the secret (key confusion)', () => {
    let jwks: Server;
    let confused: Env;
    let rs: Awaited<ReturnType<typeof generateKeyPair>>;
    let attacker: Awaited<ReturnType<typeof generateKeyPair>>;
    beforeAll(async () => {
      rs = await generateKeyPair('RS256', { extractable: true });
      attacker = await generateKeyPair('RS256', { extractable: true });
      const published = { keys: [{ ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' }] };
      jwks = createServer((req, res) => {
        if (req.url === '/auth/v1/.well-known/jwks.json')
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(published));
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
      const supabaseUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
      confused = await setup({}, { authenticator: createAuthenticator({ jwtSecret: JWT_SECRET, supabaseUrl }) });
    });
    afterAll(async () => {
      await confused?.close();
      await new Promise<void>((r) => jwks.close(() => r()));
    });

    it('the published RSA key signs for real, but never works as an HMAC secret, and a token’s own key is ignored', async () => {
      const rsToken = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rs-1' }).sign(rs.privateKey);
      const ok = await confused.app.inject({
        method: 'GET',
        url: '/api/triage/active',
        headers: { authorization: `Bearer ${rsToken}` },
      });
      expect(ok.statusCode).toBe(200);

      const jwk = await exportJWK(rs.publicKey);
      const pem = await exportSPKI(rs.publicKey);
      const attacks: [string, string][] = [
        ['HS256 with the PEM public key as secret', await hs256(claims(), pem)],
        ['HS256 with the PEM public key, kid rs-1', forge({ alg: 'HS256', kid: 'rs-1' }, claims(), pem)],
        ['HS256 with the JWK JSON as secret', forge({ alg: 'HS256', kid: 'rs-1' }, claims(), JSON.stringify(jwk))],
        ['HS256 with the modulus bytes as secret', forge({ alg: 'HS256' }, claims(), Buffer.from(jwk.n!, 'base64url'))],
        [
          'RS256 signed by an unknown key, kid rs-1',
          await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'rs-1' }).sign(attacker.privateKey),
        ],
        [
          'RS256 carrying its own jwk',
          await new SignJWT(claims())
            .setProtectedHeader({ alg: 'RS256', kid: 'rs-1', jwk: await exportJWK(attacker.publicKey) })
            .sign(attacker.privateKey),
        ],
        [
          'RS256 pointing at a jku',
          await new SignJWT(claims())
            .setProtectedHeader({ alg: 'RS256', kid: 'evil', jku: 'http://127.0.0.1:1/jwks.json' })
            .sign(attacker.privateKey),
        ],
        ['PS256 with the secret', forge({ alg: 'PS256', kid: 'rs-1' }, claims())],
        ['alg none with the kid', forge({ alg: 'none', kid: 'rs-1' }, claims())],
      ];
      for (const [what, token] of attacks) {
        expectRefused(
          await confused.app.inject({
            method: 'GET',
            url: '/api/triage/active',
            headers: { authorization: `Bearer ${token}` },
          }),
          token,
          what,
        );
      }
    });
  });
});

// ---------------------------------------------------------------- another user's job

describe('user B probing user A’s job while it is pending', () => {
  it('gets 404 “Triage job not found” on status, results, events, download, proceed and delete; A’s job is untouched', async () => {
    const { jobId, files } = await pendingJob();
    const b = await env.auth(B);
    const probes = [
      ['GET', `/api/triage/${jobId}/status`],
      ['GET', `/api/triage/${jobId}/results`],
      ['GET', `/api/triage/${jobId}/results?include=all`],
      ['GET', `/api/triage/${jobId}/events`],
      ['GET', `/api/triage/${jobId}/download`],
      ['POST', `/api/triage/${jobId}/proceed`],
      ['DELETE', `/api/triage/${jobId}`],
      // The same id in capitals is another (unknown) id, not a way round the owner check.
      ['DELETE', `/api/triage/${jobId.toUpperCase()}`],
    ] as const;
    for (const [method, url] of probes) {
      const res = await env.app.inject({
        method,
        url,
        headers: b,
        ...(method === 'POST' && { payload: { photo_ids: ['0'] } }),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json(), `${method} ${url}`).toEqual({ detail: 'Triage job not found' });
    }
    // B cannot take A's job id for a job of B's own either (the id is taken; nothing of A's changes).
    const bFiles = await env.stage(B, jobId, 1);
    expect((await start(env, B, { job_id: jobId, files: bFiles })).statusCode).toBe(409);

    // A's job: still pending, not asked to cancel, still queued, photos still stored, A still sees it.
    const meta = await env.store.meta(jobId);
    expect(meta).toMatchObject({ userId: A, status: 'pending', cancelRequested: false, total: files.length });
    expect(await env.queue.getJob(jobId)).toBeTruthy();
    for (const f of files) expect(await env.storage.stat(BUCKET, f.storage_path)).not.toBeNull();
    const mine = await env.app.inject({
      method: 'GET',
      url: `/api/triage/${jobId}/status`,
      headers: await env.auth(A),
    });
    expect(mine.statusCode).toBe(200);
    expect(mine.json()).toMatchObject({ job_id: jobId, status: 'pending' });
  });
});

// ---------------------------------------------------------------- storage paths

describe('storage path escapes', () => {
  it('refuses double-encoded, NUL, absolute, drive-letter and look-alike prefixes with 403, for originals and thumbnails', async () => {
    const jobId = randomUUID();
    const [file] = await env.stage(A, jobId, 1);
    const folder = `triage/${A}/${jobId}`;
    const bad = [
      `${folder}/%252e%252e/%252e%252e/${B}/x.jpg`, // double-encoded ..
      `${folder}/..%252f..%252f${B}%252fx.jpg`, // double-encoded /
      `${folder}/%25%32%65%25%32%65/x.jpg`, // %2e spelt out with encoded digits
      `${folder}/%2E%2E/x.jpg`, // upper-case encoding
      `${folder}/..%5cx.jpg`, // encoded backslash
      `${folder}/x.jpg\u0000.png`, // NUL
      `${folder}/x.jpg%00.png`, // encoded NUL
      `${folder}/..`,
      `${folder}/.`,
      `${folder}/./x.jpg`,
      `${folder}/a/../../${randomUUID()}/x.jpg`,
      `${folder}\\..\\..\\${B}\\x.jpg`,
      `/etc/passwd`,
      `//etc/passwd`,
      `C:\\Windows\\win.ini`,
      `C:/Windows/win.ini`,
      `file:///etc/passwd`,
      `triage/${A}2/${jobId}/x.jpg`, // another user whose id starts with A's
      `triage/${A}/${jobId}x/y.jpg`, // another job whose id starts with this one
      `triage/${B}/${jobId}/x.jpg`,
      `TRIAGE/${A}/${jobId}/x.jpg`,
      `${folder}/x.jpg\n`,
      `${folder}/${'a'.repeat(1100)}.jpg`,
    ];
    for (const storage_path of bad) {
      const res = await start(env, A, { job_id: jobId, files: [file, { original_name: 'x.jpg', storage_path }] });
      expect(res.statusCode, JSON.stringify(storage_path)).toBe(403);
      expect(res.json()).toEqual({ detail: 'Invalid storage path - must be in user/job folder' });
      const thumb = await start(env, A, { job_id: jobId, files: [{ ...file, thumbnail_path: storage_path }] });
      expect(thumb.statusCode, `thumbnail ${JSON.stringify(storage_path)}`).toBe(403);
    }
    expect(await env.store.meta(jobId)).toBeNull();
  });

  it('a signed storage URL serves its own object only: a changed path, traversal or a missing signature is refused', async () => {
    // A file next to the bucket that no URL may reach.
    await writeFile(join(env.storageDir, 'secret.txt'), 'not for you');
    const path = `triage/${A}/${randomUUID()}/0000.jpg`;
    await mkdir(dirname(env.storage.filePath(BUCKET, path)), { recursive: true });
    await writeFile(env.storage.filePath(BUCKET, path), JPEG_BYTES);
    const signed = new URL(await env.storage.signedUrl(BUCKET, path, 600));
    const ok = await env.app.inject({ method: 'GET', url: signed.pathname + signed.search });
    expect(ok.statusCode).toBe(200);
    const q = signed.search;
    for (const url of [
      `/storage/${BUCKET}/triage/${A}/other.jpg${q}`,
      `${signed.pathname}/../../../../secret.txt${q}`,
      `/storage/${BUCKET}/..%2fsecret.txt${q}`,
      `/storage/${BUCKET}/%2e%2e/secret.txt${q}`,
      `/storage/..%2f..%2fsecret.txt${q}`,
      `/storage/${BUCKET}/${path}`,
      `/storage/${BUCKET}/${path}?expires=${signed.searchParams.get('expires')}`,
      `/storage/${BUCKET}/${path}?expires=99999999999&signature=${signed.searchParams.get('signature')}`,
    ]) {
      const res = await env.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, url).toBeLessThan(500);
      expect(res.body, url).not.toContain('not for you');
    }
  });

  it('an uploaded file’s name never becomes a path', async () => {
    const boundary = '----security-boundary';
    const names = [
      '../../../../escape-1.jpg',
      '..\\..\\escape-2.jpg',
      '/etc/escape-3.jpg',
      'a%2f..%2f..%2fescape-4.jpg',
    ];
    const body = Buffer.concat([
      ...names.flatMap((name) => [
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${name}"\r\nContent-Type: image/jpeg\r\n\r\n`,
        ),
        JPEG_BYTES,
        Buffer.from('\r\n'),
      ]),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await env.app.inject({
      method: 'POST',
      url: '/api/triage/start',
      headers: { ...(await env.auth(A)), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(200);
    const { job_id } = res.json<{ job_id: string }>();
    const photos = await env.store.photos(job_id, [0, 1, 2, 3]);
    // Names are kept as names (at most their last segment); the paths are made here, under the job's folder.
    expect(photos).toHaveLength(names.length);
    for (const p of photos) expect(p.path).toMatch(new RegExp(`^triage/${A}/${job_id}/[0-9a-f-]{36}\\.jpg$`));
    const everything = await readdir(env.dir, { recursive: true });
    expect(everything.filter((f) => String(f).includes('escape-'))).toEqual([]);
  });
});

// ---------------------------------------------------------------- limits

describe('body, count and rate limits', () => {
  it('an oversized JSON body is 413 {detail}, read no further and stored nowhere', async () => {
    const jobId = randomUUID();
    const entry = { original_name: 'x'.repeat(1000), storage_path: `triage/${A}/${jobId}/${'y'.repeat(1000)}.jpg` };
    const payload = JSON.stringify({ job_id: jobId, files: Array.from({ length: 2500 }, () => entry) });
    expect(payload.length).toBeGreaterThan(4 * 1024 * 1024);
    const res = await env.app.inject({
      method: 'POST',
      url: '/api/triage/start-from-storage',
      headers: { ...(await env.auth(A)), 'content-type': 'application/json' },
      payload,
    });
    expect(res.statusCode).toBe(413);
    expect(Object.keys(res.json())).toEqual(['detail']);
    expect(await env.store.meta(jobId)).toBeNull();
  });

  it('a multipart upload of 2,001 photos is 400 “Maximum 2000 photos allowed per triage”, and its files are removed', async () => {
    const user = `user-many-${randomUUID().slice(0, 6)}`;
    const boundary = '----many-boundary';
    const part = (i: number) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
        ),
        JPEG_BYTES,
        Buffer.from('\r\n'),
      ]);
    const body = Buffer.concat([
      ...Array.from({ length: 2001 }, (_, i) => part(i)),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await env.app.inject({
      method: 'POST',
      url: '/api/triage/start',
      headers: { ...(await env.auth(user)), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: body,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toBe('Maximum 2000 photos allowed per triage');
    const left = await readdir(join(env.storageDir, BUCKET, 'triage', user), { recursive: true }).catch(() => []);
    expect(left.filter((f) => String(f).endsWith('.jpg'))).toEqual([]);
  });

  it('job creation has one budget per user across both start routes: 429 with a Retry-After in seconds', async () => {
    const limited = await setup({ RATE_LIMIT_PER_MINUTE: '2', MAX_ACTIVE_JOBS_PER_USER: '100' });
    try {
      const user = `user-rate-${randomUUID().slice(0, 6)}`;
      const viaStorage = async () => {
        const jobId = randomUUID();
        return start(limited, user, { job_id: jobId, files: await limited.stage(user, jobId, 1) });
      };
      const viaUpload = async () => {
        const boundary = '----rate-boundary';
        const payload = Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
          ),
          JPEG_BYTES,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]);
        return limited.app.inject({
          method: 'POST',
          url: '/api/triage/start',
          headers: { ...(await limited.auth(user)), 'content-type': `multipart/form-data; boundary=${boundary}` },
          payload,
        });
      };
      // Refused tokens are turned away before the limiter: they do not spend the user's budget.
      for (let i = 0; i < 5; i++) {
        const jobId = randomUUID();
        const forged = await hs256(claims({ sub: user }), 'not-the-secret-but-just-as-long-0123456789abcdef');
        const res = await limited.app.inject({
          method: 'POST',
          url: '/api/triage/start-from-storage',
          headers: { authorization: `Bearer ${forged}` },
          payload: { job_id: jobId, files: [] },
        });
        expect(res.statusCode).toBe(401);
      }
      expect((await viaStorage()).statusCode).toBe(200);
      expect((await viaUpload()).statusCode).toBe(200);
      // The budget of 2 is spent, whichever route is used next.
      for (const attempt of [viaStorage, viaUpload]) {
        const res = await attempt();
        expect(res.statusCode).toBe(429);
        expect(res.json().detail).toMatch(/^Too many triage jobs started: at most 2 per minute\. Try again in/);
        const retryAfter = Number(res.headers['retry-after']);
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
    } finally {
      await limited.close();
    }
  });
});

// ---------------------------------------------------------------- dashboard

describe('the dashboard', () => {
  it('is 401 for a wrong user, a malformed header, an API token and an empty password, on its page and its JSON API', async () => {
    const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    const bearer = `Bearer ${await env.token(A)}`;
    for (const authorization of [
      undefined,
      basic('root:dashboard-password-7f3a'),
      basic('admin:'),
      basic('admin'),
      basic('admin:dashboard-password-7f3a-and-more'),
      basic('Admin:dashboard-password-7f3a'),
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('admin:dashboard-password-7f3a').toString('base64')} extra`,
      bearer,
      'dashboard-password-7f3a',
    ]) {
      for (const url of [
        '/admin/queues',
        '/admin/queues/api/queues',
        `/admin/queues/api/queues/triage/${randomUUID()}`,
      ]) {
        const res = await env.app.inject({
          method: 'GET',
          url,
          headers: authorization === undefined ? {} : { authorization },
        });
        expect(res.statusCode, `${authorization} ${url}`).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic/);
        expect(res.body).not.toMatch(/triage|queue/i);
      }
    }
    // Write actions are refused too (and would be read-only anyway).
    const clean = await env.app.inject({ method: 'PUT', url: '/admin/queues/api/queues/triage/clean/completed' });
    expect(clean.statusCode).toBe(401);
  });

  it('is not mounted at all without credentials configured', async () => {
    const bare = await setup();
    try {
      expect((await bare.app.inject({ method: 'GET', url: '/admin/queues' })).statusCode).toBe(404);
      expect((await bare.app.inject({ method: 'GET', url: '/admin/queues/api/queues' })).statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

// ---------------------------------------------------------------- secrets

describe('secrets never reach logs, job data or Redis', () => {
  it('a whole job with real keys set: no token, secret, key or signed URL in the API’s and the worker’s logs, the job data or any Redis value', async () => {
    const SERVICE_KEY = `sb-service-role-${randomUUID()}`;
    const ANTHROPIC_KEY = `sk-ant-api03-${randomUUID()}`;
    const SIGNING_KEY = `signing-key-${randomUUID()}`;
    const DASHBOARD_PASSWORD = `dash-${randomUUID()}`;
    const storageFake = await FakeSupabase.start({ serviceRoleKey: SERVICE_KEY });
    const visionFake = await FakeAnthropic.start({ apiKey: ANTHROPIC_KEY, retryAfterMs: 10 });
    const samplesDir = await mkdtemp(join(tmpdir(), 'triage-security-samples-'));
    const log = capturedLogger();
    const settingsEnv = {
      STORAGE_DRIVER: 'supabase',
      SUPABASE_URL: storageFake.url,
      SUPABASE_SERVICE_ROLE_KEY: SERVICE_KEY,
      SUPABASE_JWT_SECRET: JWT_SECRET,
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      ANTHROPIC_BASE_URL: visionFake.url,
      STORAGE_SIGNING_KEY: SIGNING_KEY,
      LOG_LEVEL: 'trace',
    };
    const secure = await setup(
      { ...settingsEnv, DASHBOARD_USER: 'admin', DASHBOARD_PASSWORD, GRID_COARSE_ROWS: '3', GRID_COARSE_COLS: '4' },
      { storage: new SupabaseStorage({ url: storageFake.url, serviceRoleKey: SERVICE_KEY }), logger: log.logger },
    );
    let workerOut = '';
    const worker = spawn(process.execPath, [WORKER_MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL,
        TRIAGE_PREFIX: secure.prefix,
        ...settingsEnv,
        WORKER_LOCK_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        MALLOC_ARENA_MAX: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout.on('data', (d: Buffer) => (workerOut += d.toString()));
    worker.stderr.on('data', (d: Buffer) => (workerOut += d.toString()));
    const workerExited = new Promise((r) => worker.once('exit', r));
    try {
      const user = 'user-secrets';
      const token = await secure.token(user);
      const headers = { authorization: `Bearer ${token}` };
      const jobId = randomUUID();
      const samples = await generateSampleSet(samplesDir, { count: 30, width: 480, height: 360 });
      const files = [];
      for (const [i, f] of samples.entries()) {
        const storage_path = `triage/${user}/${jobId}/${String(i).padStart(4, '0')}.jpg`;
        storageFake.put(BUCKET, storage_path, await readFile(f.path), { contentType: 'image/jpeg' });
        files.push({ original_name: f.name, storage_path });
      }
      // The provider fails once with a 500 and once answers prose, so that its error paths are logged too.
      visionFake.inject({ times: 3, fault: { kind: 'status', status: 500 } });
      visionFake.inject({ times: 1, fault: { kind: 'text', text: 'I would rather not answer in JSON.' } });

      const started = await secure.app.inject({
        method: 'POST',
        url: '/api/triage/start-from-storage',
        headers,
        payload: { job_id: jobId, files, target: '20%' },
      });
      expect(started.statusCode, started.body).toBe(200);
      let status: { status: string } | undefined;
      for (let i = 0; i < 600; i++) {
        status = (await secure.app.inject({ method: 'GET', url: `/api/triage/${jobId}/status`, headers })).json<{
          status: string;
        }>();
        if (['completed', 'failed', 'cancelled'].includes(status.status)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status?.status, workerOut.slice(-2000)).toBe('completed');

      // Everything a client does with a finished job, plus a few things it should not do.
      const results = await secure.app.inject({
        method: 'GET',
        url: `/api/triage/${jobId}/results?include=all`,
        headers,
      });
      expect(results.statusCode).toBe(200);
      const selected = results.json<{ selected_photos: { id: string; url: string; thumbnail_url: string }[] }>()
        .selected_photos;
      expect(selected.length).toBeGreaterThan(0);
      // The signed URLs do reach the client (that is their purpose)…
      expect(selected[0]!.url).toMatch(/[?&]token=/);
      const signedUrls = selected.flatMap((p) => [p.url, p.thumbnail_url]);
      expect((await secure.app.inject({ method: 'GET', url: `/api/triage/${jobId}/events`, headers })).statusCode).toBe(
        200,
      );
      expect(
        (await secure.app.inject({ method: 'GET', url: `/api/triage/${jobId}/download`, headers })).statusCode,
      ).toBe(200);
      expect(
        (
          await secure.app.inject({
            method: 'POST',
            url: `/api/triage/${jobId}/proceed`,
            headers,
            payload: { photo_ids: [selected[0]!.id] },
          })
        ).statusCode,
      ).toBe(200);
      expect((await secure.app.inject({ method: 'GET', url: '/api/triage/active', headers })).statusCode).toBe(200);
      // The legacy upload route too (its multipart parser traces the request's headers).
      const boundary = '----secrets-boundary';
      const upload = await secure.app.inject({
        method: 'POST',
        url: '/api/triage/start',
        headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
          ),
          await readFile(samples[0]!.path),
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]),
      });
      expect(upload.statusCode, upload.body).toBe(200);
      const dashboard = `Basic ${Buffer.from(`admin:${DASHBOARD_PASSWORD}`).toString('base64')}`;
      expect(
        (
          await secure.app.inject({
            method: 'GET',
            url: '/admin/queues/api/queues',
            headers: { authorization: dashboard },
          })
        ).statusCode,
      ).toBe(200);
      // A token in the query string, and a bad token: refused, and not written down either.
      expect(
        (await secure.app.inject({ method: 'GET', url: `/api/triage/active?access_token=${token}&token=${token}` }))
          .statusCode,
      ).toBe(401);
      const forged = await hs256(claims({ sub: user }), 'not-the-secret-but-just-as-long-0123456789abcdef');
      expect(
        (
          await secure.app.inject({
            method: 'GET',
            url: '/api/triage/active',
            headers: { authorization: `Bearer ${forged}` },
          })
        ).statusCode,
      ).toBe(401);

      worker.kill('SIGTERM');
      await workerExited;
      // The logs did capture the run (so that their silence about secrets means something).
      expect(log.text()).toMatch(/request completed/);
      expect(workerOut).toMatch(/worker ready/);
      expect(workerOut).toMatch(/coarse grid 1\//);
      expect(workerOut).toMatch(/vision provider failed|not reviewed/);

      const jobs = await secure.queue.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed'], 0, -1);
      expect(jobs.map((j) => j.id)).toContain(jobId);
      const handoffs = await secure.handoffQueue.getJobs(
        ['waiting', 'active', 'completed', 'failed', 'delayed'],
        0,
        -1,
      );
      expect(handoffs).toHaveLength(1);
      const jobLogs = await secure.queue.getJobLogs(jobId, 0, -1);
      expect(jobLogs.logs.length).toBeGreaterThan(0);
      const redis = await redisValues(secure, secure.prefix);
      expect(redis.keys).toBeGreaterThan(10);

      const places: Record<string, string> = {
        'API logs': log.text(),
        'worker logs': workerOut,
        'triage job data': JSON.stringify(
          jobs.map((j) => ({
            data: j.data,
            opts: j.opts,
            returnvalue: j.returnvalue,
            failedReason: j.failedReason,
            stacktrace: j.stacktrace,
          })),
        ),
        'hand-off job data': JSON.stringify(handoffs.map((j) => ({ data: j.data, opts: j.opts }))),
        'job logs': JSON.stringify(jobLogs.logs),
        'Redis values': redis.text,
      };
      const signature = token.split('.')[2]!;
      const forbidden: [string, string | RegExp][] = [
        ['the bearer token', token],
        ['the bearer token’s signature', signature],
        ['the forged token', forged],
        ['the JWT secret', JWT_SECRET],
        ['the service-role key', SERVICE_KEY],
        ['the Anthropic key', ANTHROPIC_KEY],
        ['the storage signing key', SIGNING_KEY],
        ['the dashboard password', DASHBOARD_PASSWORD],
        ['the dashboard credentials', dashboard.slice('Basic '.length)],
        ['a signature= query', /[?&]signature=(?!\[REDACTED\])/],
        ['a token= query', /[?&](access_)?token=(?!\[REDACTED\])/],
        ['a signed URL', /\/object\/sign\//],
        ...signedUrls.map((u, i): [string, string] => [`signed URL ${i}`, new URL(u).searchParams.get('token') ?? u]),
      ];
      for (const [place, text] of Object.entries(places)) {
        for (const [what, needle] of forbidden) {
          if (typeof needle === 'string') expect(text.includes(needle), `${what} in the ${place}`).toBe(false);
          else
            expect(
              needle.test(text),
              `${what} in the ${place}: …${needle.exec(text) ? text.slice(Math.max(0, needle.exec(text)!.index - 200), needle.exec(text)!.index + 100) : ''}…`,
            ).toBe(false);
        }
      }
    } finally {
      if (worker.exitCode === null && worker.signalCode === null) {
        worker.kill('SIGKILL');
        await workerExited;
      }
      await secure.close();
      await storageFake.close();
      await visionFake.close();
      await rm(samplesDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the attacks of this file left no token in the API’s own logs', () => {
    // Every request above was logged by the app under test (forged and valid tokens, signed storage URLs).
    const text = apiLog.text();
    expect(text).toMatch(/request completed/);
    // One line per request, the app's own (masked URL); Fastify's own pair per request is switched off.
    expect(text).not.toMatch(/incoming request/);
    expect(text).not.toMatch(/[?&]signature=(?!\[REDACTED\])/);
    const jwt = /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.exec(text);
    expect(jwt && text.slice(jwt.index - 300, jwt.index + 200)).toBeNull(); // no JWT, whoever's
    expect(text).not.toContain(JWT_SECRET);
    expect(text).not.toContain('dashboard-password-7f3a');
  });
});
