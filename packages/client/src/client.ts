/**
 * The typed client of `/api/triage`. Browser-safe: global `fetch`, `URL`, `TextDecoder`, `AbortController` and
 * timers only; no Node-only API.
 */
import { parseServerSentEvents } from './sse.js';
import {
  isTerminal,
  type ActiveJobs,
  type ApiError,
  type HealthResponse,
  type MessageResponse,
  type ProceedResponse,
  type Results,
  type StartFromStorageRequest,
  type StartResponse,
  type TriageStatus,
} from './types.js';

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface TriageClientOptions {
  /** Where the API lives, e.g. `https://triage.example.com`; `''` for same-origin requests. */
  baseUrl: string;
  /** A fixed access token… */
  token?: string | null;
  /** …or a function asked before every request (e.g. `async () => (await supabase.auth.getSession()).data.session?.access_token`). */
  getToken?: TokenSource;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface WaitForJobOptions {
  /** Called with every status received (each event, or each poll). */
  onProgress?: (status: TriageStatus) => void;
  signal?: AbortSignal;
  /** Interval of the polling fallback; default 2000 ms, as the webapp always did. */
  pollIntervalMs?: number;
  /** Skip the event stream and poll from the start. */
  polling?: boolean;
  /** How many failed polls in a row (network errors, 5xx, 429) are tolerated before giving up; default 5. */
  maxConsecutiveErrors?: number;
}

/** A non-2xx reply (or no reply: `status` 0 for a network failure). `detail` is the server's message. */
export class TriageApiError extends Error {
  readonly status: number;
  readonly detail: string;
  /** The parsed error body, when it was JSON. */
  readonly body: unknown;
  constructor(status: number, detail: string, body?: unknown, options?: { cause?: unknown }) {
    super(status ? `${status}: ${detail}` : detail, options);
    this.name = 'TriageApiError';
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

const PREFIX = '/api/triage';
const DEFAULT_POLL_MS = 2000;

export class TriageClient {
  readonly baseUrl: string;
  private readonly getToken: TokenSource;
  private readonly fetchImpl: typeof fetch;

  constructor(options: TriageClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    const fixed = options.token;
    this.getToken = options.getToken ?? (() => fixed);
    // Never call a detached `window.fetch` with another `this` (browsers throw "Illegal invocation").
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** `GET /health` (no auth). */
  health(options: RequestOptions = {}): Promise<HealthResponse> {
    return this.json('GET', '/health', { ...options, auth: false });
  }

  /** The caller's pending or processing jobs, newest first. */
  active(options: RequestOptions = {}): Promise<ActiveJobs> {
    return this.json('GET', '/active', options);
  }

  /** Starts a job over files the browser already uploaded to storage. */
  startFromStorage(request: StartFromStorageRequest, options: RequestOptions = {}): Promise<StartResponse> {
    return this.json('POST', '/start-from-storage', { ...options, body: request });
  }

  status(jobId: string, options: RequestOptions = {}): Promise<TriageStatus> {
    return this.json('GET', `/${enc(jobId)}/status`, options);
  }

  /** The picks, best first; with `includeAll`, also every photo's fate. 400 unless completed or failed. */
  results(jobId: string, options: RequestOptions & { includeAll?: boolean } = {}): Promise<Results> {
    const query = options.includeAll ? '?include=all' : '';
    return this.json('GET', `/${enc(jobId)}/results${query}`, options);
  }

  /** The ZIP's URL. It needs the Authorization header: use {@link download} to fetch it with the token. */
  downloadUrl(jobId: string): string {
    return this.url(`/${enc(jobId)}/download`);
  }

  /** Fetches the ZIP of the picks with the token; the body is left unread (stream it or call `.blob()`). */
  async download(jobId: string, options: RequestOptions = {}): Promise<Response> {
    const response = await this.send('GET', `/${enc(jobId)}/download`, options);
    if (!response.ok) throw await toApiError(response);
    return response;
  }

  /** Hands the picks (or the given subset) to the next stage. */
  proceed(jobId: string, photoIds?: readonly string[], options: RequestOptions = {}): Promise<ProceedResponse> {
    const body = photoIds ? { photo_ids: [...photoIds] } : {};
    return this.json('POST', `/${enc(jobId)}/proceed`, { ...options, body });
  }

  /** Cancels the job, removes its photos, forgets it. */
  cancel(jobId: string, options: RequestOptions = {}): Promise<MessageResponse> {
    return this.json('DELETE', `/${enc(jobId)}`, options);
  }

  /**
   * The job's status whenever it changes, from `GET /{id}/events` (server-sent events). Ends after a terminal
   * status or when the server closes the stream. Throws a {@link TriageApiError} when the server does not
   * answer with an event stream (e.g. 404 from a server without the route) or sends an `error` event.
   */
  async *events(jobId: string, options: RequestOptions = {}): AsyncGenerator<TriageStatus, void, undefined> {
    // Our own controller, so that leaving the loop early also ends the request.
    const controller = new AbortController();
    const outer = options.signal;
    const onAbort = () => controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      const response = await this.send('GET', `/${enc(jobId)}/events`, {
        signal: controller.signal,
        headers: { accept: 'text/event-stream' },
      });
      if (!response.ok) throw await toApiError(response);
      const type = response.headers.get('content-type') ?? '';
      if (!type.toLowerCase().startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel().catch(() => undefined);
        throw new TriageApiError(response.status, 'The server did not answer with an event stream');
      }
      for await (const event of parseServerSentEvents(response.body)) {
        if (event.event === 'error') {
          const body = tryParse(event.data);
          throw new TriageApiError(0, detailOf(body) ?? (event.data || 'Event stream error'), body);
        }
        if (event.event !== 'message' && event.event !== 'status' && event.event !== 'progress') continue;
        const status = tryParse(event.data) as TriageStatus | undefined;
        if (!status || typeof status !== 'object' || typeof status.status !== 'string') continue;
        yield status;
        if (isTerminal(status.status)) return;
      }
    } catch (err) {
      throw outer?.aborted ? abortReason(outer) : err;
    } finally {
      outer?.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  /**
   * Resolves with the job's final status (completed, failed or cancelled). Follows the event stream; when the
   * stream is unavailable (a 404 on `/events` from an older server, no streaming support, a proxy cutting it)
   * it polls `/status` every `pollIntervalMs`. Rejects on 401/403/404 from `/status`, on too many failures in
   * a row, or when `signal` aborts.
   */
  async waitForJob(jobId: string, options: WaitForJobOptions = {}): Promise<TriageStatus> {
    const { onProgress, signal } = options;
    const interval = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    const maxErrors = options.maxConsecutiveErrors ?? 5;
    throwIfAborted(signal);

    if (!options.polling) {
      // Reconnect while streams keep delivering; the first one that delivers nothing sends us to polling.
      for (;;) {
        let received = 0;
        let last: TriageStatus | undefined;
        try {
          for await (const status of this.events(jobId, { signal })) {
            received++;
            last = status;
            onProgress?.(status);
          }
        } catch (err) {
          if (signal?.aborted) throw abortReason(signal);
          if (err instanceof TriageApiError && (err.status === 401 || err.status === 403)) throw err;
          break; // the stream failed or is unsupported: poll
        }
        if (last && isTerminal(last.status)) return last;
        if (received === 0) break;
        await sleep(Math.min(interval, 1000), signal);
      }
    }

    let errors = 0;
    for (;;) {
      try {
        const status = await this.status(jobId, { signal });
        errors = 0;
        onProgress?.(status);
        if (isTerminal(status.status)) return status;
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        const retriable =
          err instanceof TriageApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
        if (!retriable || ++errors >= maxErrors) throw err;
      }
      await sleep(interval, signal);
    }
  }

  // ------------------------------------------------------------------ plumbing

  private url(path: string): string {
    return `${this.baseUrl}${PREFIX}${path}`;
  }

  private async send(
    method: string,
    path: string,
    options: RequestOptions & { body?: unknown; auth?: boolean; headers?: Record<string, string> },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (options.auth !== false) {
      const token = await this.getToken();
      if (token) headers.authorization = `Bearer ${token}`;
    }
    const init: RequestInit = { method, headers };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    if (options.signal) init.signal = options.signal;
    try {
      return await this.fetchImpl(this.url(path), init);
    } catch (err) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      const reason = err instanceof Error ? err.message : String(err);
      throw new TriageApiError(0, `Network error: ${reason}`, undefined, { cause: err });
    }
  }

  private async json<T>(
    method: string,
    path: string,
    options: RequestOptions & { body?: unknown; auth?: boolean },
  ): Promise<T> {
    const response = await this.send(method, path, options);
    if (!response.ok) throw await toApiError(response);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TriageApiError(response.status, 'The server sent a reply that is not JSON');
    }
  }
}

const enc = (id: string) => encodeURIComponent(id);

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `detail` as a string; FastAPI's validation errors (`detail: [{msg}]`) joined. */
function detailOf(body: unknown): string | undefined {
  const detail = (body as Partial<ApiError> | undefined)?.detail as unknown;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    const messages = (detail as unknown[]).map((d) =>
      d && typeof d === 'object' && 'msg' in d ? String(d.msg) : String(d),
    );
    return messages.join('; ');
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

async function toApiError(response: Response): Promise<TriageApiError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // the body broke off: the status still says enough
  }
  const body = tryParse(text);
  const detail = detailOf(body) ?? (response.statusText || `HTTP ${response.status}`);
  return new TriageApiError(response.status, detail, body ?? (text || undefined));
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** Waits `ms`; rejects with the signal's reason as soon as it aborts. */
async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  const aborted = await new Promise<boolean>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  if (aborted) throw abortReason(signal!);
}
