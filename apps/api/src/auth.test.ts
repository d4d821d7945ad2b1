import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthError, createAuthenticator, type Authenticator } from './auth.js';

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const USER = '6f1c2a9e-3b1d-4c55-9e2a-0d7c9b1e4a11';
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

// ---------------------------------------------------------------- a local JWKS server counting its hits
let server: Server;
let baseUrl: string;
let hits = 0;
let jwksStatus = 200;
let publishedKeys: JWK[] = [];

let es: KeyPair;
let rs: KeyPair;
let rotated: KeyPair;
let stranger: KeyPair;

async function publicJwk(pair: KeyPair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
}

beforeAll(async () => {
  [es, rs, rotated, stranger] = await Promise.all([
    generateKeyPair('ES256', { extractable: true }),
    generateKeyPair('RS256', { extractable: true }),
    generateKeyPair('ES256', { extractable: true }),
    generateKeyPair('ES256', { extractable: true }),
  ]);
  server = createServer((req, res) => {
    if (req.url === '/auth/v1/.well-known/jwks.json' && req.method === 'GET') {
      hits += 1;
      if (jwksStatus !== 200) {
        res.writeHead(jwksStatus, { 'content-type': 'application/json' }).end('{"error":"down"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: publishedKeys }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(async () => {
  hits = 0;
  jwksStatus = 200;
  publishedKeys = [await publicJwk(es, 'es-1', 'ES256'), await publicJwk(rs, 'rs-1', 'RS256')];
});

afterEach(() => {
  vi.useRealTimers();
});

// ---------------------------------------------------------------- helpers
const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: Partial<JWTPayload> & Record<string, unknown> = {}): JWTPayload {
  return {
    sub: USER,
    aud: 'authenticated',
    role: 'authenticated',
    iss: 'https://example.supabase.co/auth/v1',
    iat: now(),
    exp: now() + 3600,
    ...overrides,
  };
}

/** Drops the claims whose override is `undefined` (so a test can omit `sub` or `exp`). */
function clean(payload: JWTPayload): JWTPayload {
  return Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
}

function hs256(payload: JWTPayload = claims(), secret: string | Uint8Array = SECRET): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  return new SignJWT(clean(payload)).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
}

function signWith(pair: KeyPair, alg: 'ES256' | 'RS256', kid: string, payload: JWTPayload = claims()) {
  return new SignJWT(clean(payload)).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(pair.privateKey);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token with any header, its signature an HMAC-SHA256 of the signing input with `key`. */
function forge(header: Record<string, unknown>, payload: JWTPayload, key: string | Buffer = SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

async function expectRejected(auth: Authenticator, header: string | undefined, reason?: string) {
  const err: unknown = await auth.verify(header).then(
    (identity) => new Error(`accepted as ${JSON.stringify(identity)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  const authErr = err as AuthError;
  expect(authErr.statusCode).toBe(401);
  if (reason) expect(authErr.reason).toBe(reason);
  // The credential part of the header (the whole header when it has no scheme word).
  const token = /^\s*\S+\s+(.+)$/s.exec(header ?? '')?.[1]?.trim() ?? header?.trim();
  if (token && !/^(bearer|basic)$/i.test(token)) {
    for (const text of [authErr.message, String(authErr.stack), JSON.stringify(authErr)]) {
      expect(text).not.toContain(token);
      // Not even one of the token's segments (e.g. the signature or the payload) may leak.
      for (const part of token.split('.')) if (part.length >= 8) expect(text).not.toContain(part);
    }
  }
  expect(authErr.cause).toBeUndefined();
  return authErr;
}

const bearer = (token: string) => `Bearer ${token}`;

// ---------------------------------------------------------------- tests
describe('createAuthenticator: HS256 with the project secret', () => {
  const auth = createAuthenticator({ jwtSecret: SECRET });

  it('is in supabase mode and accepts a valid token', async () => {
    expect(auth.mode).toBe('supabase');
    await expect(auth.verify(bearer(await hs256()))).resolves.toEqual({ userId: USER, mode: 'supabase' });
  });

  it('accepts the scheme case-insensitively', async () => {
    await expect(auth.verify(`bearer ${await hs256()}`)).resolves.toMatchObject({ userId: USER });
  });

  it('rejects a missing or empty header', async () => {
    const err = await expectRejected(auth, undefined, 'missing');
    expect(err.message).toMatch(/not authenticated/i);
    await expectRejected(auth, '', 'missing');
    await expectRejected(auth, '   ', 'missing');
  });

  it("rejects the 'Basic' scheme and a bare token", async () => {
    const token = await hs256();
    await expectRejected(auth, `Basic ${Buffer.from('user:pass').toString('base64')}`, 'scheme');
    await expectRejected(auth, `Basic ${token}`, 'scheme');
    await expectRejected(auth, token, 'scheme');
    await expectRejected(auth, 'Bearer', 'scheme');
    await expectRejected(auth, `Bearer ${token} extra`, 'scheme');
  });

  it('rejects garbage', async () => {
    for (const garbage of [
      'garbage',
      'a.b.c',
      'a.b',
      '...',
      `${b64url({ alg: 'HS256' })}.not-json!.x`,
      'eyJ.eyJ.sig',
    ]) {
      await expectRejected(auth, bearer(garbage), 'malformed');
    }
    // Well-formed segments whose header is not JSON.
    await expectRejected(
      auth,
      bearer(`${Buffer.from('nope').toString('base64url')}.${b64url(claims())}.c2ln`),
      'malformed',
    );
  });

  it('rejects alg none, signed or unsigned', async () => {
    const unsigned = new UnsecuredJWT(claims()).encode(); // "header.payload." — empty signature
    await expectRejected(auth, bearer(unsigned), 'malformed');
    await expectRejected(auth, bearer(unsigned + 'AAAA'), 'algorithm');
    await expectRejected(auth, bearer(forge({ alg: 'none' }, claims())), 'algorithm');
    await expectRejected(auth, bearer(forge({ alg: 'None' }, claims())), 'algorithm');
  });

  it('rejects other HMAC algorithms even with the right secret', async () => {
    const key = new TextEncoder().encode(SECRET);
    const hs512 = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS512' }).sign(key);
    await expectRejected(auth, bearer(hs512), 'algorithm');
  });

  it('rejects a token signed with another secret', async () => {
    await expectRejected(auth, bearer(await hs256(claims(), 'another-secret-another-secret-another!')), 'signature');
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await hs256()).split('.');
    await expectRejected(auth, bearer(`${h}.${b64url(claims({ sub: 'someone-else' }))}.${s}`), 'signature');
  });

  it('rejects an RS256 token when only a secret is configured (never HMAC-checked)', async () => {
    await expectRejected(auth, bearer(await signWith(rs, 'RS256', 'rs-1')), 'algorithm');
    // Even one whose "signature" is a valid HMAC made with the secret.
    await expectRejected(auth, bearer(forge({ alg: 'RS256', kid: 'rs-1' }, claims())), 'algorithm');
    await expectRejected(auth, bearer(await signWith(es, 'ES256', 'es-1')), 'algorithm');
  });

  it('refuses a remembered token once it has expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const strict = createAuthenticator({ jwtSecret: SECRET, clockToleranceSec: 0 });
    const token = bearer(await hs256(claims({ exp: now() + 30 })));
    await expect(strict.verify(token)).resolves.toMatchObject({ userId: USER });
    await expect(strict.verify(token)).resolves.toMatchObject({ userId: USER });
    vi.setSystemTime(Date.now() + 31_000);
    await expectRejected(strict, token, 'expired');
  });

  it('rejects an expired token, within and beyond the clock tolerance', async () => {
    await expectRejected(auth, bearer(await hs256(claims({ exp: now() - 60 }))), 'expired');
    // 2 s past exp is inside the default 5 s tolerance.
    await expect(auth.verify(bearer(await hs256(claims({ exp: now() - 2 }))))).resolves.toMatchObject({ userId: USER });
    const strict = createAuthenticator({ jwtSecret: SECRET, clockToleranceSec: 0 });
    await expectRejected(strict, bearer(await hs256(claims({ exp: now() - 2 }))), 'expired');
  });

  it('rejects a token without exp', async () => {
    await expectRejected(auth, bearer(await hs256(claims({ exp: undefined }))), 'claims');
  });

  it('rejects a token that is not yet valid', async () => {
    await expectRejected(auth, bearer(await hs256(claims({ nbf: now() + 600 }))), 'not_yet_valid');
  });

  it('rejects the wrong or a missing audience', async () => {
    await expectRejected(auth, bearer(await hs256(claims({ aud: 'anon' }))), 'audience');
    await expectRejected(auth, bearer(await hs256(claims({ aud: undefined }))), 'audience');
    const custom = createAuthenticator({ jwtSecret: SECRET, audience: 'my-app' });
    await expectRejected(custom, bearer(await hs256()), 'audience');
    await expect(custom.verify(bearer(await hs256(claims({ aud: 'my-app' }))))).resolves.toMatchObject({
      userId: USER,
    });
  });

  it('rejects a missing sub', async () => {
    await expectRejected(auth, bearer(await hs256(claims({ sub: undefined }))), 'subject');
  });

  it('rejects a sub unfit for a storage path', async () => {
    for (const sub of ['../x', 'a/b', '..', '.', 'a b', 'a\tb', 'a\\b', 'x\u0000', 'x'.repeat(129), '']) {
      await expectRejected(auth, bearer(await hs256(claims({ sub }))), sub === '' ? undefined : 'subject');
    }
    const numeric = forge({ alg: 'HS256' }, { ...claims(), sub: 42 as unknown as string });
    await expectRejected(auth, bearer(numeric));
    await expect(auth.verify(bearer(await hs256(claims({ sub: 'x'.repeat(128) }))))).resolves.toMatchObject({
      userId: 'x'.repeat(128),
    });
  });

  it('rejects a token over 8 KB, even a validly signed one', async () => {
    const big = await hs256(claims({ padding: 'p'.repeat(9000) }));
    expect(big.length).toBeGreaterThan(8192);
    await expectRejected(auth, bearer(big), 'too_large');
    await expectRejected(auth, bearer('x'.repeat(100_000)), 'too_large');
  });
});

describe('createAuthenticator: ES256 / RS256 from the JWKS', () => {
  const make = (extra: Parameters<typeof createAuthenticator>[0] = {}) =>
    createAuthenticator({ supabaseUrl: `${baseUrl}/`, ...extra });

  it('fetches lazily, accepts ES256 and RS256, and caches the key set', async () => {
    const auth = make();
    expect(auth.mode).toBe('supabase');
    expect(hits).toBe(0);
    await expect(auth.verify(bearer(await signWith(es, 'ES256', 'es-1')))).resolves.toEqual({
      userId: USER,
      mode: 'supabase',
    });
    await expect(auth.verify(bearer(await signWith(rs, 'RS256', 'rs-1')))).resolves.toMatchObject({ userId: USER });
    await Promise.all(Array.from({ length: 10 }, async () => auth.verify(bearer(await signWith(es, 'ES256', 'es-1')))));
    expect(hits).toBe(1);
  });

  it('uses the injected fetch', async () => {
    const fetchSpy = vi.fn((input: Parameters<typeof fetch>[0], init?: RequestInit) => fetch(input, init));
    const auth = make({ fetch: fetchSpy });
    await auth.verify(bearer(await signWith(es, 'ES256', 'es-1')));
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(fetchSpy.mock.calls[0]![0]).toBe(`${baseUrl}/auth/v1/.well-known/jwks.json`);
  });

  it('accepts a rotated key after one refetch on its new kid', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const auth = make();
    await auth.verify(bearer(await signWith(es, 'ES256', 'es-1')));
    expect(hits).toBe(1);

    publishedKeys.push(await publicJwk(rotated, 'es-2', 'ES256'));
    vi.setSystemTime(Date.now() + 31_000);
    await expect(auth.verify(bearer(await signWith(rotated, 'ES256', 'es-2')))).resolves.toMatchObject({
      userId: USER,
    });
    expect(hits).toBe(2);
    await auth.verify(bearer(await signWith(rotated, 'ES256', 'es-2')));
    await auth.verify(bearer(await signWith(es, 'ES256', 'es-1')));
    expect(hits).toBe(2);
  });

  it('rate-limits refetches caused by a flood of unknown kids', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const auth = make();
    await auth.verify(bearer(await signWith(es, 'ES256', 'es-1')));
    expect(hits).toBe(1);

    const flood = await Promise.all(Array.from({ length: 50 }, () => signWith(stranger, 'ES256', randomUUID())));
    for (const token of flood) await expectRejected(auth, bearer(token), 'unknown_key');
    expect(hits).toBe(1);

    // After the cooldown, a burst of unknown kids causes exactly one refetch…
    vi.setSystemTime(Date.now() + 31_000);
    const burst = await Promise.all(flood.slice(0, 20).map((t) => auth.verify(bearer(t)).catch((e: unknown) => e)));
    for (const err of burst) expect(err).toBeInstanceOf(AuthError);
    expect(hits).toBe(2);
    // …and the next ones none, until another 30 s have passed.
    for (const token of flood.slice(20)) await expectRejected(auth, bearer(token), 'unknown_key');
    expect(hits).toBe(2);
    vi.setSystemTime(Date.now() + 31_000);
    await expectRejected(auth, bearer(flood[0]!), 'unknown_key');
    expect(hits).toBe(3);
  });

  it('refetches when the cache expires and then refuses a withdrawn key', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const auth = make({ jwksCacheMs: 60_000 });
    await auth.verify(bearer(await signWith(rs, 'RS256', 'rs-1')));
    expect(hits).toBe(1);
    publishedKeys = publishedKeys.filter((k) => k.kid !== 'rs-1');
    vi.setSystemTime(Date.now() + 61_000);
    await expectRejected(auth, bearer(await signWith(rs, 'RS256', 'rs-1')), 'unknown_key');
    expect(hits).toBe(2);
  });

  it('remembers a verified token until it expires (no second check), and refuses it once expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const auth = make({ jwksCacheMs: 60_000, clockToleranceSec: 0 });
    const token = bearer(await signWith(rs, 'RS256', 'rs-1', claims({ exp: now() + 120 })));
    await expect(auth.verify(token)).resolves.toMatchObject({ userId: USER });
    expect(hits).toBe(1);
    // Were it checked again, the withdrawn key would make it fail: the same token passes, with no fetch.
    publishedKeys = publishedKeys.filter((k) => k.kid !== 'rs-1');
    vi.setSystemTime(Date.now() + 61_000);
    await expect(auth.verify(token)).resolves.toMatchObject({ userId: USER });
    expect(hits).toBe(1);
    // Past its expiry it is checked again (the key is gone by now), and refused.
    vi.setSystemTime(Date.now() + 60_000);
    await expectRejected(auth, token, 'unknown_key');
    expect(hits).toBe(2);
  });

  it('answers 401 when the JWKS endpoint fails, and backs off', async () => {
    jwksStatus = 500;
    const auth = make();
    const token = await signWith(es, 'ES256', 'es-1');
    await expectRejected(auth, bearer(token), 'jwks_unavailable');
    await expectRejected(auth, bearer(token), 'jwks_unavailable');
    expect(hits).toBe(1);
  });

  it('rejects an ES256 token whose kid names the RSA key, and a forged signature', async () => {
    const auth = make();
    await expectRejected(auth, bearer(await signWith(stranger, 'ES256', 'rs-1')), 'unknown_key');
    await expectRejected(auth, bearer(await signWith(stranger, 'ES256', 'es-1')), 'signature');
  });

  it('rejects HS256 when no secret is configured, whatever it is signed with', async () => {
    const auth = make();
    const pem = await exportSPKI(rs.publicKey);
    await expectRejected(auth, bearer(await hs256(claims(), pem)), 'algorithm');
    await expectRejected(auth, bearer(await hs256()), 'algorithm');
    expect(hits).toBe(0);
  });

  it('rejects expired, not-yet-valid, wrong-audience and bad-sub asymmetric tokens', async () => {
    const auth = make();
    await expectRejected(auth, bearer(await signWith(es, 'ES256', 'es-1', claims({ exp: now() - 60 }))), 'expired');
    await expectRejected(
      auth,
      bearer(await signWith(es, 'ES256', 'es-1', claims({ nbf: now() + 600 }))),
      'not_yet_valid',
    );
    await expectRejected(auth, bearer(await signWith(rs, 'RS256', 'rs-1', claims({ aud: 'anon' }))), 'audience');
    await expectRejected(auth, bearer(await signWith(es, 'ES256', 'es-1', claims({ sub: 'a/b' }))), 'subject');
    await expectRejected(auth, bearer(await signWith(es, 'ES256', 'es-1', claims({ sub: undefined }))), 'subject');
  });
});

describe('createAuthenticator: both secret and JWKS (key confusion)', () => {
  const make = () => createAuthenticator({ jwtSecret: SECRET, supabaseUrl: baseUrl });

  it('accepts all three algorithms', async () => {
    const auth = make();
    await expect(auth.verify(bearer(await hs256()))).resolves.toMatchObject({ userId: USER });
    await expect(auth.verify(bearer(await signWith(es, 'ES256', 'es-1')))).resolves.toMatchObject({ userId: USER });
    await expect(auth.verify(bearer(await signWith(rs, 'RS256', 'rs-1')))).resolves.toMatchObject({ userId: USER });
  });

  it('rejects HS256 tokens signed with the public key bytes as the HMAC secret', async () => {
    const auth = make();
    const rsJwk = publishedKeys.find((k) => k.kid === 'rs-1')!;
    const secrets: (string | Uint8Array)[] = [
      await exportSPKI(rs.publicKey),
      await exportSPKI(es.publicKey),
      JSON.stringify(rsJwk),
      Buffer.from(rsJwk.n!, 'base64url'),
    ];
    for (const secret of secrets) {
      await expectRejected(auth, bearer(await hs256(claims(), secret)), 'signature');
      // Same with the kid of the published key in the header.
      const key = typeof secret === 'string' ? secret : Buffer.from(secret);
      await expectRejected(auth, bearer(forge({ alg: 'HS256', kid: 'rs-1' }, claims(), key)), 'signature');
    }
  });

  it('never checks an RS256-labelled token against the HMAC secret', async () => {
    const auth = make();
    await expectRejected(auth, bearer(forge({ alg: 'RS256', kid: 'rs-1' }, claims())), 'signature');
    await expectRejected(auth, bearer(forge({ alg: 'ES256', kid: 'es-1' }, claims())), 'signature');
  });

  it('ignores keys a token carries itself (jwk / jku headers)', async () => {
    const auth = make();
    const attackerJwk = await exportJWK(stranger.publicKey);
    for (const header of [
      { alg: 'ES256' as const, kid: 'es-1', jwk: attackerJwk },
      { alg: 'ES256' as const, kid: 'es-1', jku: 'https://attacker.example/jwks.json' },
    ]) {
      const token = await new SignJWT(claims()).setProtectedHeader(header).sign(stranger.privateKey);
      await expectRejected(auth, bearer(token), 'signature');
    }
  });

  it('rejects PS256, EdDSA and HS384 outright', async () => {
    const auth = make();
    for (const alg of ['PS256', 'EdDSA', 'HS384', 'ES512', 'RS512']) {
      await expectRejected(auth, bearer(forge({ alg, kid: 'rs-1' }, claims())), 'algorithm');
    }
  });
});

describe('createAuthenticator: local mode', () => {
  it('is every request the local user, ignoring any token', async () => {
    const auth = createAuthenticator({});
    expect(auth.mode).toBe('local');
    await expect(auth.verify(undefined)).resolves.toEqual({ userId: 'local', mode: 'local' });
    await expect(auth.verify('Bearer garbage')).resolves.toEqual({ userId: 'local', mode: 'local' });
    await expect(auth.verify(bearer(await hs256()))).resolves.toEqual({ userId: 'local', mode: 'local' });
  });

  it('uses localUserId, and treats empty settings as unset', async () => {
    const auth = createAuthenticator({ jwtSecret: '', supabaseUrl: '  ', localUserId: 'me' });
    expect(auth.mode).toBe('local');
    await expect(auth.verify('Basic abc')).resolves.toEqual({ userId: 'me', mode: 'local' });
    expect(hits).toBe(0);
  });
});
