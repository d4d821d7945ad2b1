/**
 * Caller identity: verifies Supabase access tokens.
 *
 * - HS256 with the project's JWT secret (the secret's UTF-8 bytes, as Supabase's legacy system signs them),
 *   when `jwtSecret` is configured;
 * - ES256 / RS256 against the project's JWKS at `${supabaseUrl}/auth/v1/.well-known/jwks.json`, when
 *   `supabaseUrl` is configured: fetched lazily, cached (`jwksCacheMs`, default 10 min), refetched on an unknown
 *   `kid` at most once per 30 s, so a flood of made-up kids cannot hammer the endpoint.
 *
 * The algorithm decides the key *before* any verification: an HS256 token is only ever checked against the
 * secret (so an HMAC made with the JWKS public key bytes fails), and an asymmetric token only against the JWKS
 * (so an RS256 token is never checked with the HMAC secret). Everything else (`none`, HS384, PS256, EdDSA, an
 * HS256 token with no secret configured, …) is rejected outright.
 *
 * With neither a secret nor a URL, the authenticator is in local mode: every request is the one local user and
 * a supplied token is ignored. Binding to loopback in that mode is the API's job.
 *
 * No message produced here ever contains the token; jose's own errors are mapped to fixed messages and are not
 * attached as `cause` (its claim errors carry the decoded payload).
 */
import { createHash, type webcrypto } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey, LocalJWKSet } from 'jose';

export interface Identity {
  userId: string;
  mode: 'supabase' | 'local';
}

/** Why a request was refused; for logs and metrics (never contains token material). */
export type AuthFailureReason =
  | 'missing'
  | 'scheme'
  | 'too_large'
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'unknown_key'
  | 'jwks_unavailable'
  | 'expired'
  | 'not_yet_valid'
  | 'audience'
  | 'claims'
  | 'subject';

/** A 401. `message` is safe to show the caller and never echoes the token. */
export class AuthError extends Error {
  readonly statusCode = 401;
  readonly reason: AuthFailureReason;
  constructor(message: string, reason: AuthFailureReason = 'claims') {
    super(message);
    this.name = 'AuthError';
    this.reason = reason;
  }
}

export interface Authenticator {
  readonly mode: 'supabase' | 'local';
  /** Takes the raw `Authorization` header value; resolves to the caller or rejects with an {@link AuthError}. */
  verify(authorization: string | undefined): Promise<Identity>;
}

export interface AuthenticatorOptions {
  /** The project's legacy JWT secret (`SUPABASE_JWT_SECRET`): enables HS256. */
  jwtSecret?: string;
  /** The project URL (`SUPABASE_URL`): enables ES256/RS256 against its JWKS. */
  supabaseUrl?: string;
  /** Expected `aud`; default `authenticated`. */
  audience?: string;
  /** Used for the JWKS request; default the global fetch. */
  fetch?: typeof fetch;
  /** Local mode's user id; default `local`. */
  localUserId?: string;
  /** How long a fetched JWKS is trusted; default 10 minutes. */
  jwksCacheMs?: number;
  /** Leeway for `exp` / `nbf`, in seconds; default 5. */
  clockToleranceSec?: number;
}

/** Largest accepted token, in characters (all ASCII once the format check passed). */
export const MAX_TOKEN_LENGTH = 8 * 1024;
/** Minimum time between two JWKS fetches triggered by an unknown `kid`. */
export const JWKS_REFETCH_COOLDOWN_MS = 30_000;
/** Minimum time between two fetch attempts after a failed one. */
const JWKS_FAILURE_BACKOFF_MS = 5_000;
const JWKS_FETCH_TIMEOUT_MS = 5_000;
const DEFAULT_JWKS_CACHE_MS = 10 * 60_000;
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;
const MAX_SUB_LENGTH = 128;

const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256'] as const;
/** Verified tokens remembered at most (the oldest is forgotten first). */
const VERIFIED_CACHE_SIZE = 10_000;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// A `sub` becomes a storage path segment (`triage/{sub}/…`): no separators, whitespace, controls or dot segments.
// eslint-disable-next-line no-control-regex -- matching control characters is the point: they must not reach a path
const UNSAFE_SUB = /[/\\\s\u0000-\u001f\u007f]/u;

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const secret = options.jwtSecret ? importHmacSecret(options.jwtSecret) : undefined;
  const supabaseUrl = options.supabaseUrl?.trim() ? options.supabaseUrl.trim().replace(/\/+$/, '') : undefined;

  if (!secret && !supabaseUrl) {
    const identity: Identity = { userId: options.localUserId ?? 'local', mode: 'local' };
    return {
      mode: 'local',
      verify: async () => ({ ...identity }),
    };
  }

  const keys: SigningKeys = {
    secret,
    jwks: supabaseUrl
      ? new JwksCache(
          new URL(`${supabaseUrl}/auth/v1/.well-known/jwks.json`),
          options.fetch ?? globalThis.fetch.bind(globalThis),
          options.jwksCacheMs ?? DEFAULT_JWKS_CACHE_MS,
        )
      : undefined,
    audience: options.audience ?? 'authenticated',
    clockTolerance: options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC,
  };

  // Tokens already verified, until they expire: a client polls with the same token every few seconds, and a
  // signature check is the largest cost of a status request. Keyed by the token's SHA-256, never the token.
  // A key withdrawn from the JWKS stops new tokens; one already verified stays good until its `exp`, which
  // is what a signed token promises anyway.
  const verified = new Map<string, { userId: string; exp: number }>();

  async function verify(authorization: string | undefined): Promise<Identity> {
    const token = extractBearer(authorization);
    const digest = createHash('sha256').update(token).digest('base64url');
    const known = verified.get(digest);
    if (known) {
      if (Date.now() / 1000 <= known.exp + keys.clockTolerance) return { userId: known.userId, mode: 'supabase' };
      verified.delete(digest);
    }

    const payload = await verifyToken(token, keys);
    const userId = checkSubject(payload.sub);
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
    verified.set(digest, { userId, exp: payload.exp! });
    return { userId, mode: 'supabase' };
  }

  return { mode: 'supabase', verify };
}

/** What a token may be verified with, and the claims every token must meet. */
interface SigningKeys {
  secret: Promise<webcrypto.CryptoKey> | undefined;
  jwks: JwksCache | undefined;
  audience: string;
  clockTolerance: number;
}

// Imported once as a WebCrypto key: given bytes or a KeyObject, jose imports it again on every verification
// (the largest single cost of a status request).
function importHmacSecret(jwtSecret: string): Promise<webcrypto.CryptoKey> {
  return crypto.subtle.importKey('raw', new TextEncoder().encode(jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'verify',
  ]);
}

/** The token's verified payload; the header's algorithm picks the key before anything is verified. */
async function verifyToken(token: string, keys: SigningKeys): Promise<JWTPayload> {
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    throw new AuthError('Malformed token', 'malformed');
  }

  const { secret, jwks, audience, clockTolerance } = keys;
  try {
    if (alg === 'HS256' && secret) {
      const { payload } = await jwtVerify(token, await secret, {
        algorithms: ['HS256'],
        audience,
        clockTolerance,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    }
    if (jwks && (alg === 'ES256' || alg === 'RS256')) {
      const { payload } = await jwtVerify(token, jwks.getKey, {
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        audience,
        clockTolerance,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    }
    throw new AuthError('Unsupported token algorithm', 'algorithm');
  } catch (err) {
    throw toAuthError(err);
  }
}

function extractBearer(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw new AuthError('Not authenticated', 'missing');
  }
  // Bound the work before any parsing: a header far larger than a token can be is refused as such.
  if (authorization.length > MAX_TOKEN_LENGTH + 64) throw new AuthError('Token too large', 'too_large');
  const match = /^\s*Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
  if (!match) throw new AuthError('Not authenticated: expected a Bearer token', 'scheme');
  const token = match[1]!;
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('Token too large', 'too_large');
  if (!COMPACT_JWS.test(token)) throw new AuthError('Malformed token', 'malformed');
  return token;
}

function checkSubject(sub: unknown): string {
  if (
    typeof sub !== 'string' ||
    sub.length === 0 ||
    sub.length > MAX_SUB_LENGTH ||
    sub === '.' ||
    sub === '..' ||
    UNSAFE_SUB.test(sub)
  ) {
    throw new AuthError('Invalid token subject', 'subject');
  }
  return sub;
}

function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError('Token expired', 'expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new AuthError('Token not yet valid', 'not_yet_valid');
    if (err.claim === 'aud') return new AuthError('Invalid token audience', 'audience');
    if (err.claim === 'sub') return new AuthError('Invalid token subject', 'subject');
    return new AuthError('Invalid token claims', 'claims');
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('Invalid token signature', 'signature');
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new AuthError('Unsupported token algorithm', 'algorithm');
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('Unknown token signing key', 'unknown_key');
  }
  if (err instanceof JwksUnavailable) {
    return new AuthError('Token signing keys are unavailable; try again shortly', 'jwks_unavailable');
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return new AuthError('Malformed token', 'malformed');
  }
  // Anything else (a key that would not import, a JWK of the wrong shape, …): refuse without details.
  return new AuthError('Invalid token', 'claims');
}

class JwksUnavailable extends Error {}

/**
 * A JWKS fetched lazily and cached. Fetches happen (one at a time) when there is no key set yet, when the cached
 * one is older than `maxAgeMs`, or when a token names a `kid` the set lacks — the last at most once per
 * {@link JWKS_REFETCH_COOLDOWN_MS} since the previous fetch attempt. After a failed fetch no new attempt is made
 * for {@link JWKS_FAILURE_BACKOFF_MS}; a stale key set stays in use meanwhile.
 */
class JwksCache {
  private local: LocalJWKSet | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastAttemptFailed = false;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly url: URL,
    private readonly fetchImpl: typeof fetch,
    private readonly maxAgeMs: number,
  ) {}

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = Date.now();
    if (!this.local || now - this.fetchedAt >= this.maxAgeMs) {
      const backingOff = this.lastAttemptFailed && now - this.lastAttemptAt < JWKS_FAILURE_BACKOFF_MS;
      if (!backingOff) await this.refresh().catch(() => undefined);
      if (!this.local) throw new JwksUnavailable();
    }
    const local = this.local;
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      if (this.pending) {
        // Someone is already refetching: use that result rather than starting another.
        await this.pending.catch(() => undefined);
      } else if (Date.now() - this.lastAttemptAt >= JWKS_REFETCH_COOLDOWN_MS) {
        await this.refresh().catch(() => undefined);
      } else {
        throw err;
      }
      if (this.local === local) throw err;
      return this.local(header, token);
    }
  };

  private refresh(): Promise<void> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<void> {
    this.lastAttemptAt = Date.now();
    try {
      const response = await this.fetchImpl(this.url.href, {
        method: 'GET',
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
      });
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        throw new JwksUnavailable(`JWKS endpoint answered ${response.status}`);
      }
      const json = (await response.json()) as JSONWebKeySet;
      this.local = createLocalJWKSet(json); // throws on a malformed set
      this.fetchedAt = Date.now();
      this.lastAttemptFailed = false;
    } catch (err) {
      this.lastAttemptFailed = true;
      throw err;
    }
  }
}
