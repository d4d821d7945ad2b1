/**
 * The Supabase Storage driver (production). Objects live in Supabase buckets; the service-role key
 * authorises every call (so row-level security does not apply: callers check ownership first).
 *
 * How each operation reaches the Storage API (`{url}/storage/v1`):
 *   - readToFile / readStream / readRange: GET /object/authenticated/{bucket}/{path}, streamed with Node's
 *     fetch (Range header for readRange). Never a whole Blob: bytes go straight to a temp file (deleted by
 *     `release()`, and on any error) or to the caller's stream. The body is watched: no byte for
 *     `timeouts.stallMs` is a stall, fewer bytes than Content-Length (or undici's `terminated`) a truncation.
 *   - readTransformed (phase 4): GET /render/image/authenticated/{bucket}/{path}?width&height&resize, to a
 *     temp file; any refusal becomes a TransformRefusedError the worker catches to read the original. A
 *     TransformBreaker remembers for the process when the feature itself is refused or failing.
 *   - stat / statMany: storage-js `info()` (GET /object/info/{bucket}/{path}); statMany with bounded concurrency.
 *   - signedUrl / signedUrls: storage-js `createSignedUrl` (with an optional transform, clamped to 1–2500)
 *     and `createSignedUrls`; the URL is rebuilt from the signed token with the key encoded.
 *   - copy: storage-js `copy()` (POST /object/copy), on the server: no byte passes through this process; the
 *     service's "already exists" answer means an earlier copy got there, and is no error.
 *   - remove: storage-js `remove()` (DELETE /object/{bucket}), at most `removeBatch` (≤ 1000) paths per call;
 *     paths the answer does not list as deleted must be shown absent (see confirmGone).
 *   - write: storage-js `upload()` with the content type always set, `upsert`, and `duplex: 'half'` for streams.
 *   - check / reachable: storage-js `getBucket()`, plus a probe object written, read and removed (check).
 * storage-js puts keys into URLs unencoded, so every key is given to it percent-encoded per segment.
 * The real API answers a missing object with HTTP 400 and `{statusCode: "404", code: "NoSuchKey"}`: that is
 * an ObjectNotFoundError (permanent), and only that. A route 404, NoSuchBucket, 401/403 are configuration
 * errors naming the setting; 5xx, 408, 429, connection errors, stalls and truncated bodies are retried with
 * exponential backoff, then "unavailable"; after the last attempt the call fails with a StorageRequestError
 * whose `reason` says what happened and whose `kind` what it means (see StorageErrorKind).
 * The service-role key is sent as `apikey` and `Authorization: Bearer`; it never appears in an error or log.
 */
import { StorageClient, StorageApiError, isStorageError, type TransformOptions } from '@supabase/storage-js';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  checkBucket,
  checkByteRange,
  checkObjectPath,
  InvalidPathError,
  ObjectNotFoundError,
  StorageRequestError,
  TransformRefusedError,
  type StorageErrorKind,
  type ImageTransform,
  type LocalFile,
  type ObjectInfo,
  type ReadOptions,
  type SignedUrlOptions,
  type StorageDriver,
} from './driver.js';
import { mapBounded } from './bounded.js';

export interface SupabaseStorageOptions {
  /** The project URL, e.g. `https://abcd.supabase.co` (the driver adds `/storage/v1`). */
  url: string;
  /** The service-role key (SUPABASE_SERVICE_ROLE_KEY). Never logged. */
  serviceRoleKey: string;
  /** A fetch implementation (tests, proxies); the global fetch by default. */
  fetch?: typeof fetch;
  /** Extra attempts after the first for retryable failures (5xx, 408, 429, connection errors, stalls, truncation). Default 3. */
  retries?: number;
  /** Exponential backoff between attempts: base · 2^attempt, capped, with ±20 % jitter. Defaults 500 ms, 8 s. */
  backoff?: { baseMs?: number; maxMs?: number };
  timeouts?: {
    /** Time to get the response headers of one request. Default 30 s. */
    responseMs?: number;
    /** Longest wait for the next byte of a body before the read counts as stalled. Default 30 s. */
    stallMs?: number;
    /** Whole request for JSON calls (info, sign, remove) and uploads' response. Default 60 s. */
    requestMs?: number;
  };
  /** Folder for the temp files of readToFile / readTransformed. Default the OS temp folder. */
  tempDir?: string;
  /** Concurrent requests of statMany. Default 16. */
  concurrency?: number;
  /** Paths per remove call (the API takes at most 1000). Default 1000. */
  removeBatch?: number;
  /** Attempts after the first for a transform before falling back. Default 0: the original is right there. */
  transformRetries?: number;
  /**
   * When transforms stop working for this process: a refused feature (route 404, 403 FeatureNotEnabled) at
   * once, a failing renderer (5xx, no answer) after `failures` transforms in a row (default 3). The originals
   * are read instead until `retryAfterMs` has passed (default 5 min); then one transform is tried again.
   */
  transformBreaker?: { failures?: number; retryAfterMs?: number };
}

export { StorageRequestError };

/** The settings a configuration error points at. */
const SETTING = { url: 'SUPABASE_URL', key: 'SUPABASE_SERVICE_ROLE_KEY', bucket: 'STORAGE_BUCKET' } as const;

/**
 * Object keys the Storage API refuses (InvalidKey): non-ASCII characters and `%`. Such a name can never be
 * stored, so it is refused before any request.
 */
export function storageKeyProblem(path: string): string | null {
  if (/[^\x20-\x7e]/.test(path)) return 'Supabase Storage only accepts object names of ASCII characters';
  if (path.includes('%')) return 'Supabase Storage does not accept "%" in object names';
  return null;
}

/**
 * Remembers, for this process, whether storage-side transforms work: a circuit breaker. Open, every
 * transform is skipped (the original is read) until it is time to try one again.
 */
export class TransformBreaker {
  private failures = 0;
  private openUntil = 0;
  private lastSuccess = -Infinity;
  /** Why transforms are off, while they are. */
  reason: string | null = null;
  constructor(
    private readonly threshold = 3,
    readonly retryAfterMs = 5 * 60_000,
  ) {}

  /** Whether a transform may be tried now. */
  allows(now = Date.now()): boolean {
    return now >= this.openUntil;
  }

  /** A transform worked within the retry period: no need to probe again. */
  recentlyWorked(now = Date.now()): boolean {
    return now - this.lastSuccess < this.retryAfterMs;
  }

  succeeded(now = Date.now()): void {
    this.lastSuccess = now;
    this.failures = 0;
    this.openUntil = 0;
    this.reason = null;
  }

  /** A failure of the feature itself: `refused` (not there at all) opens at once, others count up. */
  failed(reason: string, refused: boolean, now = Date.now()): void {
    this.lastSuccess = -Infinity;
    this.failures = refused ? this.threshold : this.failures + 1;
    if (this.failures < this.threshold) return;
    // Half-open after the wait: one more failure opens it again at once.
    this.failures = this.threshold - 1;
    this.openUntil = now + this.retryAfterMs;
    this.reason = reason;
  }
}

/** Limits of Supabase image transformation. */
export const TRANSFORM_LIMITS = {
  minSide: 1,
  maxSide: 2500,
  maxSourceBytes: 25 * 1024 * 1024,
  maxSourcePixels: 50_000_000,
};

export function clampSide(n: number): number {
  if (!Number.isFinite(n)) throw new RangeError(`transform size must be a number, got ${n}`);
  return Math.min(TRANSFORM_LIMITS.maxSide, Math.max(TRANSFORM_LIMITS.minSide, Math.round(n)));
}

/** What went wrong with one attempt, and whether another attempt may help. */
interface Failure {
  message: string;
  retryable: boolean;
  status?: number;
  code?: string;
  notFound?: boolean;
  kind: StorageErrorKind;
  setting?: string;
}

class StallError extends Error {
  override name = 'StallError';
  constructor(
    readonly phase: 'response' | 'body',
    ms: number,
  ) {
    super(phase === 'response' ? `no response within ${ms} ms` : `download stalled: no data for ${ms} ms`);
  }
}

class TruncatedError extends Error {
  override name = 'TruncatedError';
  constructor(received: number, expected: number | null, cause?: unknown) {
    super(
      `download truncated: connection closed after ${received}${expected === null ? '' : ` of ${expected}`} bytes` +
        (cause instanceof Error && cause.message ? ` (${cause.message})` : ''),
    );
  }
}

/** An error answer of the Storage API (status and parsed body). */
class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    /** As the body gave it: the router's own answers carry a number, the service's a string. */
    readonly statusCode: string | number | undefined,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The router's answer for a path it does not serve: the URL is not the Storage API's (or a feature is off). */
function isRouteNotFound(status: number, statusCode: unknown, message: string): boolean {
  if (status !== 404) return false;
  return (
    typeof statusCode === 'number' ||
    /^Route \S+:.* not found$/.test(message) ||
    /no Route matched/i.test(message) ||
    statusCode === undefined
  );
}

/**
 * What an error answer means. Only object-level answers (NoSuchKey, or a 400 whose body says 404 about an
 * object) make an object missing; a route 404, NoSuchBucket, 401/403 are configuration errors; 5xx, 408 and
 * 429 an outage; 413, 415 and InvalidKey a refusal of that object.
 */
function answerFailure(
  status: number,
  rawStatusCode: string | number | null | undefined,
  code: string | undefined,
  message: string,
): Failure {
  const statusCode = rawStatusCode === undefined || rawStatusCode === null ? undefined : String(rawStatusCode);
  const text = `storage answered HTTP ${status}${statusCode && statusCode !== String(status) ? ` (${statusCode})` : ''}${code ? ` ${code}` : ''}: ${message}`;
  const base = { status, ...(code !== undefined && { code }) };
  if (code === 'NoSuchKey') return { ...base, message: text, retryable: false, notFound: true, kind: 'failed' };
  if (code === 'NoSuchBucket') {
    return {
      ...base,
      message: `${text} (check ${SETTING.bucket}, and that ${SETTING.key} is the service key)`,
      retryable: false,
      kind: 'config',
      setting: SETTING.bucket,
    };
  }
  if (isRouteNotFound(status, rawStatusCode, message)) {
    return {
      ...base,
      message: `${text} (check ${SETTING.url}: it must be the project's URL, whose gateway serves the Storage API at /storage/v1)`,
      retryable: false,
      kind: 'config',
      setting: SETTING.url,
    };
  }
  const denied =
    [401, 403].includes(status) ||
    statusCode === '401' ||
    statusCode === '403' ||
    code === 'AccessDenied' ||
    code === 'InvalidJWT';
  if (denied && code !== 'FeatureNotEnabled') {
    return {
      ...base,
      message: `${text} (check ${SETTING.key}: it must be the project's service-role key)`,
      retryable: false,
      kind: 'config',
      setting: SETTING.key,
    };
  }
  if (retryableStatus(status) || (statusCode !== undefined && retryableStatus(Number(statusCode))))
    return { ...base, message: text, retryable: true, kind: 'unavailable' };
  if (status === 400 && statusCode === '404')
    return { ...base, message: text, retryable: false, notFound: true, kind: 'failed' };
  const refused =
    [413, 415].includes(status) ||
    ['413', '415'].includes(statusCode ?? '') ||
    code === 'InvalidKey' ||
    code === 'InvalidMimeType' ||
    code === 'EntityTooLarge';
  return { ...base, message: text, retryable: false, kind: refused ? 'refused' : 'failed' };
}

/**
 * A key as storage-js must be given it: storage-js puts keys into URLs as they are, so `?`, `#` and `%`
 * would end the path, start a fragment or decode into another name.
 */
function encodeKey(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The destination exists: HTTP 409, or (older servers) HTTP 400 with `statusCode: "409"`. */
function isDuplicate(status: number | undefined, statusCode: string | undefined, code: string | undefined): boolean {
  return status === 409 || statusCode === '409' || code === 'Duplicate' || code === 'KeyAlreadyExists';
}

function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Describes a network-level error without anything from the request (never the key). */
function networkMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `connection error: ${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}

export class SupabaseStorage implements StorageDriver {
  readonly name = 'supabase';
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly retries: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly responseMs: number;
  private readonly stallMs: number;
  private readonly requestMs: number;
  private readonly tempDir: string;
  private readonly concurrency: number;
  private readonly removeBatch: number;
  private readonly transformRetries: number;
  /** Whether transforms work in this process (shared by readTransformed, signed URLs and probes). */
  readonly breaker: TransformBreaker;
  /** Buckets this process has seen it may write, read and delete in (check()). */
  private readonly verified = new Set<string>();
  /** Kept off the enumerable surface so that logging the driver never prints it. */
  #headers: Record<string, string>;

  constructor(options: SupabaseStorageOptions) {
    if (!options.url) throw new Error('SUPABASE_URL is required for the supabase storage driver');
    if (!options.serviceRoleKey)
      throw new Error('SUPABASE_SERVICE_ROLE_KEY is required for the supabase storage driver');
    const url = new URL(options.url);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '').replace(/\/storage\/v1$/, '')}/storage/v1`;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.retries = Math.max(0, options.retries ?? 3);
    this.baseMs = options.backoff?.baseMs ?? 500;
    this.maxMs = options.backoff?.maxMs ?? 8_000;
    this.responseMs = options.timeouts?.responseMs ?? 30_000;
    this.stallMs = options.timeouts?.stallMs ?? 30_000;
    this.requestMs = options.timeouts?.requestMs ?? 60_000;
    this.tempDir = options.tempDir ?? tmpdir();
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.removeBatch = Math.min(1000, Math.max(1, options.removeBatch ?? 1000));
    this.transformRetries = Math.max(0, options.transformRetries ?? 0);
    this.breaker = new TransformBreaker(
      Math.max(1, options.transformBreaker?.failures ?? 3),
      options.transformBreaker?.retryAfterMs ?? 5 * 60_000,
    );
    this.#headers = { apikey: options.serviceRoleKey, authorization: `Bearer ${options.serviceRoleKey}` };
  }

  /** The Storage API base URL (`…/storage/v1`). */
  get storageUrl(): string {
    return this.base;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, storageUrl: this.base };
  }

  // ---------------------------------------------------------------- reads

  async readToFile(bucket: string, path: string, options: ReadOptions = {}): Promise<LocalFile> {
    this.checkPath(bucket, path);
    const ext = extname(path)
      .toLowerCase()
      .replace(/[^.a-z0-9]/g, '')
      .slice(0, 8);
    return this.download(
      `read ${bucket}/${path}`,
      bucket,
      path,
      `/object/authenticated/${this.objectPath(bucket, path)}`,
      ext,
      {},
      this.retries,
      options.signal,
    );
  }

  async readTransformed(
    bucket: string,
    path: string,
    transform: ImageTransform,
    options: ReadOptions = {},
  ): Promise<LocalFile> {
    this.checkPath(bucket, path);
    const query = new URLSearchParams({
      width: String(clampSide(transform.width)),
      height: String(clampSide(transform.height)),
      resize: transform.resize ?? 'cover',
    });
    if (transform.quality !== undefined)
      query.set('quality', String(Math.min(100, Math.max(20, Math.round(transform.quality)))));
    // No `format`: the service then answers WebP when the client accepts it (readable by sharp, and HEIC
    // sources come back decodable); JPEG otherwise.
    if (!this.breaker.allows())
      throw new TransformRefusedError(bucket, path, `transforms are off for now: ${this.breaker.reason}`);
    const url = `/render/image/authenticated/${this.objectPath(bucket, path)}?${query.toString()}`;
    try {
      const file = await this.download(
        `transform ${bucket}/${path}`,
        bucket,
        path,
        url,
        '.img',
        { accept: 'image/webp,image/jpeg;q=0.9' },
        this.transformRetries,
        options.signal,
      );
      this.breaker.succeeded();
      return file;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      if (err instanceof ObjectNotFoundError) throw err;
      const e = err as StorageRequestError;
      this.noteTransformFailure(e);
      throw new TransformRefusedError(bucket, path, e.reason ?? (err as Error).message, e.details?.status);
    }
  }

  /** A transform that failed for the feature's sake (not this object's) counts against transforms. */
  private noteTransformFailure(e: StorageRequestError): void {
    if (!(e instanceof StorageRequestError)) return;
    // Transforms not served at all: the router has no render route, or the plan lacks the feature.
    const refused = e.details.setting === SETTING.url || e.details.code === 'FeatureNotEnabled';
    if (refused || e.kind === 'unavailable') this.breaker.failed(e.reason, refused);
  }

  async transformsUsable(bucket: string, samplePath: string): Promise<boolean> {
    if (!this.breaker.allows()) return false;
    if (this.breaker.recentlyWorked()) return true;
    try {
      const file = await this.readTransformed(bucket, samplePath, { width: 16, height: 16, resize: 'cover' });
      await file.release();
      return true;
    } catch (err) {
      // A refusal about this object (too large, unreadable) says nothing against the feature.
      return (
        err instanceof TransformRefusedError && this.breaker.allows() && err.status !== undefined && err.status < 500
      );
    }
  }

  async readStream(bucket: string, path: string, options: ReadOptions = {}): Promise<Readable> {
    this.checkPath(bucket, path);
    const url = `/object/authenticated/${this.objectPath(bucket, path)}`;
    // Retried until the body starts; a failure mid-stream errors the stream (the caller decides).
    return this.withRetries(`read ${bucket}/${path}`, bucket, path, this.retries, options.signal, async () => {
      const { body } = await this.open(url, {}, options.signal);
      return body;
    });
  }

  async readRange(
    bucket: string,
    path: string,
    start: number,
    end: number,
    options: ReadOptions = {},
  ): Promise<Buffer> {
    this.checkPath(bucket, path);
    checkByteRange(start, end);
    if (end === start) return Buffer.alloc(0);
    const url = `/object/authenticated/${this.objectPath(bucket, path)}`;
    return this.withRetries(
      `read ${bucket}/${path} bytes ${start}-${end - 1}`,
      bucket,
      path,
      this.retries,
      options.signal,
      async () => {
        let opened;
        try {
          opened = await this.open(url, { range: `bytes=${start}-${end - 1}` }, options.signal);
        } catch (err) {
          // Range past the end of the object: nothing there.
          if (err instanceof ApiError && (err.status === 416 || err.statusCode === '416')) return Buffer.alloc(0);
          throw err;
        }
        const { res, body, controller } = opened;
        // A server that ignores Range answers 200 with the whole object: skip to `start`, stop at `end`.
        const skip = res.status === 206 ? 0 : start;
        const want = end - start;
        const chunks: Buffer[] = [];
        let seen = 0;
        let kept = 0;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            const from = Math.max(0, skip - seen);
            seen += chunk.length;
            if (from >= chunk.length) continue;
            const part = chunk.subarray(from, from + (want - kept));
            chunks.push(part);
            kept += part.length;
            if (kept >= want) break;
          }
        } finally {
          if (kept >= want || res.status !== 206) {
            body.destroy();
            controller.abort();
          }
        }
        return Buffer.concat(chunks, kept);
      },
    );
  }

  // ---------------------------------------------------------------- metadata

  async stat(bucket: string, path: string, options: ReadOptions = {}): Promise<ObjectInfo | null> {
    this.checkPath(bucket, path);
    try {
      return await this.withRetries(`stat ${bucket}/${path}`, bucket, path, this.retries, options.signal, async () => {
        const { data, error } = await this.client(options.signal).from(bucket).info(encodeKey(path));
        if (error) throw error;
        const info = data as unknown as {
          size?: number | null;
          contentType?: string | null;
          lastModified?: string | null;
        };
        return {
          size: typeof info.size === 'number' ? info.size : 0,
          ...(info.contentType && { contentType: info.contentType }),
          ...(info.lastModified && { modifiedAt: new Date(info.lastModified) }),
        };
      });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
  }

  async statMany(bucket: string, paths: readonly string[], options: ReadOptions = {}): Promise<(ObjectInfo | null)[]> {
    return mapBounded(paths, this.concurrency, (path) => this.stat(bucket, path, options), options.signal);
  }

  async signedUrl(bucket: string, path: string, expiresIn: number, options: SignedUrlOptions = {}): Promise<string> {
    this.checkPath(bucket, path);
    // With transforms off for now, the thumbnail is the original: a render URL would fail in the browser.
    const t = this.breaker.allows() ? options.transform : undefined;
    const transform: TransformOptions | undefined = t && {
      width: clampSide(t.width),
      height: clampSide(t.height),
      resize: t.resize ?? 'cover',
    };
    return this.withRetries(`sign ${bucket}/${path}`, bucket, path, this.retries, undefined, async () => {
      const { data, error } = await this.client()
        .from(bucket)
        .createSignedUrl(encodeKey(path), Math.max(1, Math.floor(expiresIn)), transform ? { transform } : undefined);
      if (error) throw error;
      return this.signedLink(data.signedUrl, bucket, path);
    });
  }

  async signedUrls(bucket: string, paths: readonly string[], expiresIn: number): Promise<(string | null)[]> {
    checkBucket(bucket);
    paths.forEach(checkObjectPath);
    const out: (string | null)[] = [];
    const signRequest = async (batch: string[]) => {
      const { data, error } = await this.client()
        .from(bucket)
        .createSignedUrls([...batch], Math.max(1, Math.floor(expiresIn)));
      if (error) throw error;
      return data;
    };
    const what = (n: number) => `sign ${n} objects in ${bucket}`;
    for await (const [batch, data] of this.inBatches(bucket, paths, what, signRequest)) {
      const byPath = new Map(
        data.map((d) => [d.path, d.error || !d.signedUrl ? null : this.signedLink(d.signedUrl, bucket, d.path ?? '')]),
      );
      out.push(...batch.map((p) => byPath.get(p) ?? null));
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  async write(bucket: string, path: string, body: Buffer | Readable, options: { contentType: string }): Promise<void> {
    this.checkPath(bucket, path);
    if (!options?.contentType) throw new Error('write needs a content type');
    const upload = async () => {
      const { error } = await this.client(undefined, Buffer.isBuffer(body) ? this.requestMs : 0)
        .from(bucket)
        .upload(encodeKey(path), body, {
          contentType: options.contentType,
          upsert: true,
          duplex: 'half',
          cacheControl: '3600',
        });
      if (error) throw error;
    };
    // A buffer can be sent again; a stream cannot (its bytes are gone), so it gets one attempt.
    await this.withRetries(
      `write ${bucket}/${path}`,
      bucket,
      path,
      Buffer.isBuffer(body) ? this.retries : 0,
      undefined,
      upload,
    );
  }

  async copy(bucket: string, from: string, to: string): Promise<void> {
    checkBucket(bucket);
    this.checkPath(bucket, from);
    this.checkPath(bucket, to);
    // Keys travel in the JSON body here, not in the URL: given as they are.
    await this.withRetries(`copy ${bucket}/${from} to ${to}`, bucket, from, this.retries, undefined, async () => {
      const { error } = await this.client().from(bucket).copy(from, to);
      if (error && !(error instanceof StorageApiError && isDuplicate(error.status, error.statusCode, error.code)))
        throw error;
    });
  }

  async remove(bucket: string, paths: readonly string[]): Promise<void> {
    checkBucket(bucket);
    paths.forEach((p) => this.checkPath(bucket, p));
    const removeRequest = async (batch: string[]) => {
      const { data, error } = await this.client()
        .from(bucket)
        .remove([...batch]);
      if (error) throw error;
      return new Set((data ?? []).map((o) => o.name));
    };
    const what = (n: number) => `remove ${n} objects from ${bucket}`;
    for await (const [batch, deleted] of this.inBatches(bucket, paths, what, removeRequest)) {
      const left = batch.filter((p) => !deleted.has(p));
      if (left.length > 0) await this.confirmGone(bucket, left, batch.length);
    }
  }

  /**
   * Yields each batch of at most `removeBatch` paths (the API takes at most 1000 a call) with the answer to
   * `request` on it; batches go one after another, each retried as one request named by `what`.
   */
  private async *inBatches<T>(
    bucket: string,
    paths: readonly string[],
    what: (count: number) => string,
    request: (batch: string[]) => Promise<T>,
  ): AsyncGenerator<[string[], T]> {
    for (let i = 0; i < paths.length; i += this.removeBatch) {
      const batch = paths.slice(i, i + this.removeBatch);
      yield [
        batch,
        await this.withRetries(what(batch.length), bucket, '', this.retries, undefined, () => request(batch)),
      ];
    }
  }

  /**
   * The API lists the objects it deleted and answers 200 whatever it did, even when the key may delete
   * nothing. Paths it did not list must be shown absent by a key that is known to see objects.
   */
  private async confirmGone(bucket: string, left: readonly string[], asked: number): Promise<void> {
    const still = (await this.statMany(bucket, left)).filter((info) => info !== null).length;
    const removedFewer = `storage removed ${asked - left.length} of ${asked} objects from ${bucket}`;
    if (still > 0) {
      throw new StorageRequestError(`${removedFewer}: ${still} are still there`, {
        attempts: 1,
        retryable: false,
        kind: 'failed',
      });
    }
    try {
      if (!this.verified.has(bucket)) await this.check(bucket);
    } catch (err) {
      const reason = err instanceof StorageRequestError ? err.reason : (err as Error).message;
      throw new StorageRequestError(`${removedFewer}, and cannot tell whether the rest are gone: ${reason}`, {
        attempts: 1,
        retryable: false,
        kind: 'config',
        setting: (err as StorageRequestError).details?.setting ?? SETTING.key,
      });
    }
  }

  // ---------------------------------------------------------------- configuration

  checkKey(path: string): void {
    const problem = storageKeyProblem(path);
    if (problem) throw new InvalidPathError(`${problem}: ${JSON.stringify(path)}`);
  }

  /**
   * The start-up check: the URL leads to the Storage API, the bucket exists, and the key may write, read and
   * delete in it (a probe object under `.triage-check/`). Each failure names the setting to fix.
   */
  async check(bucket: string): Promise<void> {
    checkBucket(bucket);
    await this.withRetries(`check bucket ${bucket}`, bucket, '', this.retries, undefined, async () => {
      const { error } = await this.client().getBucket(bucket);
      if (error) throw error;
    });
    const probe = `.triage-check/${randomUUID()}.jpg`;
    const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
    const denied = (what: string, detail: string) =>
      new StorageRequestError(
        `${SETTING.key} cannot ${what} in bucket ${bucket}: ${detail} (is it the anon key instead of the service-role key?)`,
        {
          attempts: 1,
          retryable: false,
          kind: 'config',
          setting: SETTING.key,
        },
      );
    try {
      await this.write(bucket, probe, bytes, { contentType: 'image/jpeg' });
    } catch (err) {
      if (err instanceof StorageRequestError && err.kind === 'refused') {
        throw new StorageRequestError(
          `bucket ${bucket} refuses a JPEG: ${err.reason} (check ${SETTING.bucket} and the bucket's allowed MIME types)`,
          {
            attempts: 1,
            retryable: false,
            kind: 'config',
            setting: SETTING.bucket,
          },
        );
      }
      // An outage is an outage, not a wrong key: said as it is, so a restart during a storage blip is not misread.
      if (err instanceof StorageRequestError && err.kind !== 'config' && err.kind !== 'unavailable')
        throw denied('write', err.reason);
      throw err;
    }
    const back = await this.readRange(bucket, probe, 0, bytes.length).catch((err: unknown) => {
      throw err instanceof ObjectNotFoundError ? denied('read', 'an object it had just written was not found') : err;
    });
    if (!back.equals(bytes)) throw denied('read', 'an object it had just written came back different');
    const removed = await this.withRetries(`remove ${probe}`, bucket, probe, this.retries, undefined, async () => {
      const { data, error } = await this.client().from(bucket).remove([probe]);
      if (error) throw error;
      return data?.length ?? 0;
    });
    if (removed !== 1) throw denied('delete', 'the removal answered success but removed nothing');
    this.verified.add(bucket);
  }

  async reachable(bucket: string, options: ReadOptions = {}): Promise<boolean> {
    checkBucket(bucket);
    try {
      await this.withRetries(`reach ${bucket}`, bucket, '', 0, options.signal, async () => {
        const { error } = await this.client(options.signal).getBucket(bucket);
        if (error) throw error;
      });
      return true;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      return !(err instanceof StorageRequestError && err.kind === 'unavailable');
    }
  }

  // ---------------------------------------------------------------- plumbing

  /** `bucket/a/b c.jpg` with each segment percent-encoded. */
  private objectPath(bucket: string, path: string): string {
    return `${encodeURIComponent(bucket)}/${encodeKey(path)}`;
  }

  private checkPath(bucket: string, path: string): void {
    checkBucket(bucket);
    checkObjectPath(path);
    this.checkKey(path);
  }

  /**
   * A signed URL for the object, from the token the service signed. storage-js joins the service's answer
   * to the base and runs encodeURI over it, which leaves `?` and `#` in a key as they are (the URL then
   * points elsewhere); the path is rebuilt here with every segment encoded.
   */
  private signedLink(signed: string, bucket: string, path: string): string {
    const token = /[?&]token=([^&#]*)/.exec(signed)?.[1];
    if (!token) return signed;
    const kind = signed.includes('/render/image/sign/') ? 'render/image/sign' : 'object/sign';
    return `${this.base}/${kind}/${this.objectPath(bucket, path)}?token=${encodeURIComponent(decodeURIComponent(token))}`;
  }

  /** A storage-js client whose every request carries the caller's signal and a timeout (0: none). */
  private client(signal?: AbortSignal, timeoutMs = this.requestMs): StorageClient {
    const fetchFn = this.fetchFn;
    const wrapped: typeof fetch = (input, init = {}) => {
      const signals = [init.signal, signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
        (s): s is AbortSignal => !!s,
      );
      return fetchFn(input, { ...init, ...(signals.length > 0 && { signal: AbortSignal.any(signals) }) });
    };
    return new StorageClient(this.base, { ...this.#headers }, wrapped);
  }

  /**
   * Sends a GET and returns the response with its body as a watched Node stream: a stall (no byte for
   * stallMs while the reader wants more) aborts the request; fewer bytes than Content-Length, or a
   * connection closed mid-body, errors the stream with a TruncatedError.
   */
  private async open(
    url: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<{ res: Response; body: Readable; controller: AbortController; length: number | null }> {
    const controller = new AbortController();
    const combined = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const timer = setTimeout(() => controller.abort(new StallError('response', this.responseMs)), this.responseMs);
    let res: Response;
    try {
      res = await this.fetchFn(`${this.base}${url}`, {
        method: 'GET',
        headers: { ...this.#headers, ...headers },
        signal: combined,
      });
    } catch (err) {
      if (controller.signal.reason instanceof StallError) throw controller.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      // The error body is small JSON; read it under the same watch.
      const text = await res.text().catch(() => '');
      let parsed: { statusCode?: unknown; code?: unknown; error?: unknown; message?: unknown } = {};
      try {
        // A body of `null`, a number or a string is valid JSON too, and holds no fields.
        const json: unknown = JSON.parse(text);
        if (json !== null && typeof json === 'object') parsed = json;
      } catch {
        // not JSON
      }
      const statusCode =
        typeof parsed.statusCode === 'string' || typeof parsed.statusCode === 'number' ? parsed.statusCode : undefined;
      const code =
        typeof parsed.code === 'string' ? parsed.code : typeof parsed.error === 'string' ? parsed.error : undefined;
      const message = typeof parsed.message === 'string' ? parsed.message : res.statusText || `HTTP ${res.status}`;
      throw new ApiError(res.status, statusCode, code, message);
    }
    const header = res.headers.get('content-length');
    const length =
      header !== null && /^\d+$/.test(header) && !res.headers.get('content-encoding') ? Number(header) : null;
    if (!res.body) return { res, body: Readable.from([]), controller, length };
    return { res, body: this.watch(res.body, controller, length), controller, length };
  }

  private watch(web: WebReadableStream, controller: AbortController, expected: number | null): Readable {
    const src = Readable.fromWeb(web);
    let received = 0;
    let timer: NodeJS.Timeout | undefined;
    const out = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        arm();
        cb(null, chunk);
      },
      flush(cb) {
        clearTimeout(timer);
        if (expected !== null && received !== expected) cb(new TruncatedError(received, expected));
        else cb();
      },
    });
    const stallMs = this.stallMs;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // The reader is not keeping up (backpressure): that is not the server stalling.
        if (out.readableLength >= out.readableHighWaterMark || out.writableNeedDrain) return arm();
        controller.abort(new StallError('body', stallMs));
      }, stallMs);
    };
    arm();
    src.on('error', (err) => {
      clearTimeout(timer);
      const reason: unknown = controller.signal.reason;
      out.destroy(
        reason instanceof StallError
          ? reason
          : controller.signal.aborted
            ? (reason as Error)
            : new TruncatedError(received, expected, err),
      );
    });
    out.on('close', () => {
      clearTimeout(timer);
      if (!src.destroyed) src.destroy();
    });
    src.pipe(out);
    return out;
  }

  /** GET `url` into a new temp file, retrying; the file is removed on error and by `release()`. */
  private async download(
    what: string,
    bucket: string,
    path: string,
    url: string,
    ext: string,
    headers: Record<string, string>,
    retries: number,
    signal: AbortSignal | undefined,
  ): Promise<LocalFile> {
    return this.withRetries(what, bucket, path, retries, signal, async () => {
      const file = join(this.tempDir, `triage-${randomUUID()}${ext}`);
      try {
        const { body } = await this.open(url, headers, signal);
        await pipeline(body, createWriteStream(file, { flags: 'wx' }));
        const { size } = await stat(file);
        let released = false;
        return {
          path: file,
          size,
          release: async () => {
            if (released) return;
            released = true;
            await rm(file, { force: true });
          },
        };
      } catch (err) {
        await rm(file, { force: true });
        throw err;
      }
    });
  }

  private classify(err: unknown): Failure {
    if (err instanceof ApiError) return answerFailure(err.status, err.statusCode, err.code, err.message);
    if (err instanceof StorageApiError) return answerFailure(err.status, err.statusCode, err.code, err.message);
    if (err instanceof StallError || err instanceof TruncatedError)
      return { message: err.message, retryable: true, kind: 'unavailable' };
    if (isStorageError(err)) {
      // StorageUnknownError: the request never got an answer (network, timeout).
      const original = (err as { originalError?: unknown }).originalError;
      if ((original as Error)?.name === 'TimeoutError')
        return { message: `no answer within ${this.requestMs} ms`, retryable: true, kind: 'unavailable' };
      return { message: networkMessage(original ?? err), retryable: true, kind: 'unavailable' };
    }
    if ((err as Error)?.name === 'TimeoutError')
      return { message: `no answer within ${this.requestMs} ms`, retryable: true, kind: 'unavailable' };
    if (err instanceof TypeError || (err as NodeJS.ErrnoException)?.code)
      return { message: networkMessage(err), retryable: true, kind: 'unavailable' };
    return { message: (err as Error)?.message ?? String(err), retryable: false, kind: 'failed' };
  }

  private async withRetries<T>(
    what: string,
    bucket: string,
    path: string,
    retries: number,
    signal: AbortSignal | undefined,
    attempt: () => Promise<T>,
  ): Promise<T> {
    for (let n = 0; ; n++) {
      signal?.throwIfAborted();
      try {
        return await attempt();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof ObjectNotFoundError) throw err;
        const f = this.classify(err);
        if (f.notFound) throw new ObjectNotFoundError(bucket, path);
        if (!f.retryable || n >= retries) {
          const attempts = n + 1;
          const reason = f.retryable
            ? `${what} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${f.message}`
            : `${what} failed: ${f.message}`;
          throw new StorageRequestError(reason, {
            attempts,
            retryable: f.retryable,
            kind: f.kind,
            ...(f.setting !== undefined && { setting: f.setting }),
            ...(f.status !== undefined && { status: f.status }),
            ...(f.code !== undefined && { code: f.code }),
          });
        }
        const delay = Math.min(this.maxMs, this.baseMs * 2 ** n) * (0.8 + Math.random() * 0.4);
        await sleep(delay, undefined, signal ? { signal } : {});
      }
    }
  }
}
