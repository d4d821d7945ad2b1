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
 *     temp file; any refusal becomes a TransformRefusedError the worker catches to read the original.
 *   - stat / statMany: storage-js `info()` (GET /object/info/{bucket}/{path}); statMany with bounded concurrency.
 *   - signedUrl / signedUrls: storage-js `createSignedUrl` (with an optional transform, clamped to 1–2500)
 *     and `createSignedUrls`.
 *   - copy: storage-js `copy()` (POST /object/copy), on the server: no byte passes through this process; the
 *     service's "already exists" answer means an earlier copy got there, and is no error.
 *   - remove: storage-js `remove()` (DELETE /object/{bucket}), at most `removeBatch` (≤ 1000) paths per call.
 *   - write: storage-js `upload()` with the content type always set, `upsert`, and `duplex: 'half'` for streams.
 * The real API answers a missing object with HTTP 400 and `{statusCode: "404", code: "NoSuchKey"}`: that is
 * an ObjectNotFoundError (permanent). 5xx, 408, 429, connection errors, stalls and truncated bodies are
 * retried with exponential backoff; after the last attempt the call fails with a StorageRequestError whose
 * `reason` says what happened (the worker records it as the photo's failure reason).
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
  checkObjectPath,
  ObjectNotFoundError,
  TransformRefusedError,
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
  /** Attempts after the first for a transform before falling back. Default 1 (a refusal is never retried). */
  transformRetries?: number;
}

/** A request to storage failed for good; `reason` is short and meant for the user and the logs. */
export class StorageRequestError extends Error {
  override name = 'StorageRequestError';
  constructor(
    readonly reason: string,
    readonly details: { status?: number; code?: string; attempts: number; retryable: boolean },
  ) {
    super(reason);
  }
}

/** Limits of Supabase image transformation. */
export const TRANSFORM_LIMITS = { minSide: 1, maxSide: 2500, maxSourceBytes: 25 * 1024 * 1024, maxSourcePixels: 50_000_000 };

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
}

class StallError extends Error {
  override name = 'StallError';
  constructor(readonly phase: 'response' | 'body', ms: number) {
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
    readonly statusCode: string | undefined,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

function isNotFound(status: number | undefined, statusCode: string | undefined, code: string | undefined): boolean {
  return code === 'NoSuchKey' || statusCode === '404' || (status === 404 && code === undefined);
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
  /** Kept off the enumerable surface so that logging the driver never prints it. */
  #headers: Record<string, string>;

  constructor(options: SupabaseStorageOptions) {
    if (!options.url) throw new Error('SUPABASE_URL is required for the supabase storage driver');
    if (!options.serviceRoleKey) throw new Error('SUPABASE_SERVICE_ROLE_KEY is required for the supabase storage driver');
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
    this.transformRetries = Math.max(0, options.transformRetries ?? 1);
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
    checkBucket(bucket);
    checkObjectPath(path);
    const ext = extname(path).toLowerCase().replace(/[^.a-z0-9]/g, '').slice(0, 8);
    return this.download(`read ${bucket}/${path}`, bucket, path, `/object/authenticated/${this.objectPath(bucket, path)}`, ext, {}, this.retries, options.signal);
  }

  async readTransformed(bucket: string, path: string, transform: ImageTransform, options: ReadOptions = {}): Promise<LocalFile> {
    checkBucket(bucket);
    checkObjectPath(path);
    const query = new URLSearchParams({
      width: String(clampSide(transform.width)),
      height: String(clampSide(transform.height)),
      resize: transform.resize ?? 'cover',
    });
    if (transform.quality !== undefined) query.set('quality', String(Math.min(100, Math.max(20, Math.round(transform.quality)))));
    // No `format`: the service then answers WebP when the client accepts it (readable by sharp, and HEIC
    // sources come back decodable); JPEG otherwise.
    const url = `/render/image/authenticated/${this.objectPath(bucket, path)}?${query}`;
    try {
      return await this.download(`transform ${bucket}/${path}`, bucket, path, url, '.img', { accept: 'image/webp,image/jpeg;q=0.9' }, this.transformRetries, options.signal);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      if (err instanceof ObjectNotFoundError) throw err;
      const e = err as StorageRequestError;
      throw new TransformRefusedError(bucket, path, e.reason ?? (err as Error).message, e.details?.status);
    }
  }

  async readStream(bucket: string, path: string, options: ReadOptions = {}): Promise<Readable> {
    checkBucket(bucket);
    checkObjectPath(path);
    const url = `/object/authenticated/${this.objectPath(bucket, path)}`;
    // Retried until the body starts; a failure mid-stream errors the stream (the caller decides).
    return this.withRetries(`read ${bucket}/${path}`, bucket, path, this.retries, options.signal, async () => {
      const { body } = await this.open(url, {}, options.signal);
      return body;
    });
  }

  async readRange(bucket: string, path: string, start: number, end: number, options: ReadOptions = {}): Promise<Buffer> {
    checkBucket(bucket);
    checkObjectPath(path);
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end >= start)) {
      throw new RangeError(`invalid byte range [${start}, ${end})`);
    }
    if (end === start) return Buffer.alloc(0);
    const url = `/object/authenticated/${this.objectPath(bucket, path)}`;
    return this.withRetries(`read ${bucket}/${path} bytes ${start}-${end - 1}`, bucket, path, this.retries, options.signal, async () => {
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
    });
  }

  // ---------------------------------------------------------------- metadata

  async stat(bucket: string, path: string, options: ReadOptions = {}): Promise<ObjectInfo | null> {
    checkBucket(bucket);
    checkObjectPath(path);
    try {
      return await this.withRetries(`stat ${bucket}/${path}`, bucket, path, this.retries, options.signal, async () => {
        const { data, error } = await this.client(options.signal).from(bucket).info(path);
        if (error) throw error;
        const info = data as unknown as { size?: number | null; contentType?: string | null; lastModified?: string | null };
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
    checkBucket(bucket);
    checkObjectPath(path);
    const t = options.transform;
    const transform: TransformOptions | undefined = t && {
      width: clampSide(t.width),
      height: clampSide(t.height),
      resize: t.resize ?? 'cover',
    };
    return this.withRetries(`sign ${bucket}/${path}`, bucket, path, this.retries, undefined, async () => {
      const { data, error } = await this.client().from(bucket).createSignedUrl(path, Math.max(1, Math.floor(expiresIn)), transform ? { transform } : undefined);
      if (error) throw error;
      return data.signedUrl;
    });
  }

  async signedUrls(bucket: string, paths: readonly string[], expiresIn: number): Promise<(string | null)[]> {
    checkBucket(bucket);
    paths.forEach(checkObjectPath);
    const out: (string | null)[] = [];
    for (let i = 0; i < paths.length; i += this.removeBatch) {
      const batch = paths.slice(i, i + this.removeBatch);
      const data = await this.withRetries(`sign ${batch.length} objects in ${bucket}`, bucket, '', this.retries, undefined, async () => {
        const { data, error } = await this.client().from(bucket).createSignedUrls([...batch], Math.max(1, Math.floor(expiresIn)));
        if (error) throw error;
        return data;
      });
      const byPath = new Map(data.map((d) => [d.path, d.error ? null : d.signedUrl]));
      out.push(...batch.map((p) => byPath.get(p) ?? null));
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  async write(bucket: string, path: string, body: Buffer | Readable, options: { contentType: string }): Promise<void> {
    checkBucket(bucket);
    checkObjectPath(path);
    if (!options?.contentType) throw new Error('write needs a content type');
    const upload = async () => {
      const { error } = await this.client(undefined, Buffer.isBuffer(body) ? this.requestMs : 0)
        .from(bucket)
        .upload(path, body as Buffer, { contentType: options.contentType, upsert: true, duplex: 'half', cacheControl: '3600' });
      if (error) throw error;
    };
    // A buffer can be sent again; a stream cannot (its bytes are gone), so it gets one attempt.
    await this.withRetries(`write ${bucket}/${path}`, bucket, path, Buffer.isBuffer(body) ? this.retries : 0, undefined, upload);
  }

  async copy(bucket: string, from: string, to: string): Promise<void> {
    checkBucket(bucket);
    checkObjectPath(from);
    checkObjectPath(to);
    await this.withRetries(`copy ${bucket}/${from} to ${to}`, bucket, from, this.retries, undefined, async () => {
      const { error } = await this.client().from(bucket).copy(from, to);
      if (error && !(error instanceof StorageApiError && isDuplicate(error.status, error.statusCode, error.code))) throw error;
    });
  }

  async remove(bucket: string, paths: readonly string[]): Promise<void> {
    checkBucket(bucket);
    paths.forEach(checkObjectPath);
    for (let i = 0; i < paths.length; i += this.removeBatch) {
      const batch = paths.slice(i, i + this.removeBatch);
      await this.withRetries(`remove ${batch.length} objects from ${bucket}`, bucket, '', this.retries, undefined, async () => {
        const { error } = await this.client().from(bucket).remove([...batch]);
        // Removing what is already gone is not an error (the API simply lists fewer deleted objects).
        if (error && !(error instanceof StorageApiError && isNotFound(error.status, error.statusCode, error.code))) throw error;
      });
    }
  }

  // ---------------------------------------------------------------- plumbing

  /** `bucket/a/b c.jpg` with each segment percent-encoded. */
  private objectPath(bucket: string, path: string): string {
    return [bucket, ...path.split('/')].map(encodeURIComponent).join('/');
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
      res = await this.fetchFn(`${this.base}${url}`, { method: 'GET', headers: { ...this.#headers, ...headers }, signal: combined });
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
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      const statusCode = typeof parsed.statusCode === 'string' || typeof parsed.statusCode === 'number' ? String(parsed.statusCode) : undefined;
      const code = typeof parsed.code === 'string' ? parsed.code : typeof parsed.error === 'string' ? parsed.error : undefined;
      const message = typeof parsed.message === 'string' ? parsed.message : res.statusText || `HTTP ${res.status}`;
      throw new ApiError(res.status, statusCode, code, message);
    }
    const header = res.headers.get('content-length');
    const length = header !== null && /^\d+$/.test(header) && !res.headers.get('content-encoding') ? Number(header) : null;
    if (!res.body) return { res, body: Readable.from([]), controller, length };
    return { res, body: this.watch(res.body as unknown as WebReadableStream, controller, length), controller, length };
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
      const reason = controller.signal.reason;
      out.destroy(reason instanceof StallError ? reason : controller.signal.aborted ? (reason as Error) : new TruncatedError(received, expected, err));
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
    if (err instanceof ApiError) {
      return {
        message: `storage answered HTTP ${err.status}${err.statusCode && err.statusCode !== String(err.status) ? ` (${err.statusCode})` : ''}: ${err.message}`,
        retryable: retryableStatus(err.status) || (err.statusCode !== undefined && retryableStatus(Number(err.statusCode))),
        status: err.status,
        ...(err.code !== undefined && { code: err.code }),
        notFound: isNotFound(err.status, err.statusCode, err.code),
      };
    }
    if (err instanceof StorageApiError) {
      return {
        message: `storage answered HTTP ${err.status}${err.statusCode && err.statusCode !== String(err.status) ? ` (${err.statusCode})` : ''}: ${err.message}`,
        retryable: retryableStatus(err.status) || retryableStatus(Number(err.statusCode)),
        status: err.status,
        ...(err.code !== undefined && { code: err.code }),
        notFound: isNotFound(err.status, err.statusCode, err.code),
      };
    }
    if (err instanceof StallError || err instanceof TruncatedError) return { message: err.message, retryable: true };
    if (isStorageError(err)) {
      // StorageUnknownError: the request never got an answer (network, timeout).
      const original = (err as { originalError?: unknown }).originalError;
      if ((original as Error)?.name === 'TimeoutError') return { message: `no answer within ${this.requestMs} ms`, retryable: true };
      return { message: networkMessage(original ?? err), retryable: true };
    }
    if ((err as Error)?.name === 'TimeoutError') return { message: `no answer within ${this.requestMs} ms`, retryable: true };
    if (err instanceof TypeError || (err as NodeJS.ErrnoException)?.code) return { message: networkMessage(err), retryable: true };
    return { message: (err as Error)?.message ?? String(err), retryable: false };
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
          const reason = f.retryable ? `${what} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${f.message}` : `${what} failed: ${f.message}`;
          throw new StorageRequestError(reason, {
            attempts,
            retryable: f.retryable,
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
