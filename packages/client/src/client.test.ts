import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TriageApiError, TriageClient, type JobStatus, type TriageStatus } from './index.js';

// ---------------------------------------------------------------- a small server speaking the contract
const JOB = '3b0f6a36-8a61-4a4b-9c0e-2f3f7f7b7e01';
const TOKEN = 'token-of-user-a';

type EventsMode = 'sse' | '404' | 'drop' | 'html' | '401' | 'empty';

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
  accept: string | undefined;
  body: string;
}

let server: Server;
let baseUrl: string;
let requests: Recorded[] = [];
let eventsMode: EventsMode = 'sse';
let steps: TriageStatus[] = [];
let cursor = 0;
let statusFailures = 0;
let openStreams = 0;
let closedStreams = 0;

function statusAt(status: JobStatus, step: number, total = 4): TriageStatus {
  const done = status !== 'processing';
  return {
    job_id: JOB,
    status,
    progress: done
      ? null
      : {
          phase: 'coarse_pass',
          current_step: step,
          total_steps: total,
          percentage: (step / total) * 100,
          message: `Coarse selection: grid ${step}/${total}`,
        },
    total_input: 12,
    pass1_survivors: done ? 4 : 0,
    final_selected: status === 'completed' ? 2 : 0,
    error_message: status === 'failed' ? 'Vision provider unavailable' : null,
    created_at: '2026-11-29T10:00:00.000Z',
    completed_at: done ? '2026-11-29T10:01:00.000Z' : null,
    photos_failed: 0,
    grids_done: step,
    grids_total: total,
    tokens: { input: 100 * step, output: 10 * step },
    cost_usd: 0.001 * step,
  };
}

function script(final: JobStatus = 'completed'): TriageStatus[] {
  return [statusAt('processing', 0), statusAt('processing', 1), statusAt('processing', 2), statusAt(final, 4)];
}

const nextStep = () => steps[Math.min(cursor++, steps.length - 1)]!;

function send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(code, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

const authorized = (req: IncomingMessage) => req.headers.authorization === `Bearer ${TOKEN}`;

async function handle(req: IncomingMessage, res: ServerResponse, body: string) {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  if (path === '/api/triage/health') return send(res, 200, { status: 'ok', version: '1.0.0' });
  if (!authorized(req)) return send(res, 401, { detail: 'Not authenticated' }, { 'www-authenticate': 'Bearer' });

  const m = /^\/api\/triage\/([^/]+)(?:\/(status|results|download|proceed|events))?$/.exec(path);
  if (path === '/api/triage/active' && req.method === 'GET') {
    return send(res, 200, {
      jobs: [
        {
          job_id: JOB,
          status: 'processing',
          total_input: 12,
          progress_percentage: 50,
          phase: 'coarse_pass',
          created_at: '2026-11-29T10:00:00.000Z',
        },
      ],
    });
  }
  if (path === '/api/triage/start-from-storage' && req.method === 'POST') {
    const request = JSON.parse(body) as { job_id: string; files: { storage_path: string }[] };
    if (request.files.some((f) => !f.storage_path.startsWith(`triage/user-a/${request.job_id}/`))) {
      return send(res, 403, { detail: 'Invalid storage path - must be in user/job folder' });
    }
    return send(res, 200, {
      job_id: request.job_id,
      status: 'processing',
      photo_count: request.files.length,
      credits_deducted: 0,
      credits_required: 1,
      estimated_grids: 2,
    });
  }
  if (path === '/api/triage/fastapi-style' && req.method === 'GET') {
    return send(res, 422, {
      detail: [{ loc: ['body', 'passes'], msg: 'Passes must be 1 or 2' }, { msg: 'field required' }],
    });
  }
  if (path === '/api/triage/bad-gateway') {
    res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' }).end('<html>oops</html>');
    return;
  }
  if (!m || decodeURIComponent(m[1]!) !== JOB) return send(res, 404, { detail: 'Triage job not found' });

  const action = m[2];
  if (action === 'status' && req.method === 'GET') {
    if (statusFailures > 0) {
      statusFailures--;
      return send(res, 503, {
        detail: 'Service unavailable: the job store (Redis) is not answering; try again shortly',
      });
    }
    return send(res, 200, nextStep());
  }
  if (action === 'results' && req.method === 'GET') {
    const current = steps[Math.min(cursor, steps.length - 1)]!;
    if (current.status !== 'completed' && current.status !== 'failed') {
      return send(res, 400, { detail: `Triage not complete. Status: ${current.status}` });
    }
    const photo = {
      id: '0',
      original_filename: 'a.jpg',
      storage_path: `triage/user-a/${JOB}/a.jpg`,
      thumbnail_url: 'https://signed/thumb',
      rank: 1,
    };
    return send(res, 200, {
      job_id: JOB,
      status: current.status,
      selected_photos: [photo],
      total_input: 12,
      pass1_survivors: 4,
      final_selected: 1,
      target: '10%',
      criteria: 'standout',
      ...(url.searchParams.get('include') === 'all'
        ? { photos: [{ ...photo, fate: 'selected', reason: 'picked', rank: 1 }] }
        : {}),
    });
  }
  if (action === 'download' && req.method === 'GET') {
    res.writeHead(200, {
      'content-type': 'application/zip',
      'content-disposition': `attachment; filename=triage_${JOB.slice(0, 8)}_selected.zip`,
    });
    res.end(Buffer.from('PK\u0005\u0006' + '\u0000'.repeat(18), 'latin1'));
    return;
  }
  if (action === 'proceed' && req.method === 'POST') {
    const parsed = JSON.parse(body) as { photo_ids?: string[] };
    return send(res, 200, { queued_count: parsed.photo_ids?.length ?? 1, credits_deducted: 0 });
  }
  if (action === undefined && req.method === 'DELETE')
    return send(res, 200, { message: 'Triage job cancelled and deleted' });
  if (action === 'events' && req.method === 'GET') return events(req, res);
  return send(res, 405, { detail: 'Method not allowed' });
}

async function events(_req: IncomingMessage, res: ServerResponse) {
  switch (eventsMode) {
    case '404':
      return send(res, 404, { detail: 'Not Found' });
    case '401':
      return send(res, 401, { detail: 'Token expired' }, { 'www-authenticate': 'Bearer' });
    case 'html':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy page</html>');
      return;
    default:
  }
  openStreams++;
  res.on('close', () => closedStreams++);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.flushHeaders();
  if (eventsMode === 'empty') return void res.end(': nothing\n\n');
  res.write(': connected\n\n');
  if (eventsMode === 'drop') {
    // A proxy that cuts every stream after one event.
    res.end(`data: ${JSON.stringify(nextStep())}\n\n`);
    return;
  }
  for (;;) {
    const status = nextStep();
    const json = JSON.stringify(status);
    // Split each event over two writes, with CRLF line ends, to exercise the parser.
    res.write(`event: status\r\ndata: ${json.slice(0, 10)}`);
    await new Promise((r) => setTimeout(r, 5));
    if (res.destroyed) return;
    res.write(`${json.slice(10)}\r\n\r\n`);
    if (status.status !== 'processing') break;
    await new Promise((r) => setTimeout(r, 10));
    if (res.destroyed) return;
  }
  res.end();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        accept: req.headers.accept,
        body,
      });
      handle(req, res, body).catch((err: unknown) => {
        res.destroy(err as Error);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  requests = [];
  eventsMode = 'sse';
  steps = script();
  cursor = 0;
  statusFailures = 0;
  openStreams = 0;
  closedStreams = 0;
});

const client = (extra: Partial<ConstructorParameters<typeof TriageClient>[0]> = {}) =>
  new TriageClient({ baseUrl: `${baseUrl}/`, token: TOKEN, ...extra });

async function rejection(promise: Promise<unknown>): Promise<TriageApiError> {
  const err = await promise.then(
    () => new Error('resolved'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TriageApiError);
  return err as TriageApiError;
}

const pathsOf = (method?: string) =>
  requests.filter((r) => !method || r.method === method).map((r) => r.url.replace(`/api/triage`, ''));

// ---------------------------------------------------------------- plain routes
describe('TriageClient routes', () => {
  it('sends the bearer token on every authenticated call, none on health', async () => {
    const c = client();
    await expect(c.health()).resolves.toMatchObject({ status: 'ok' });
    await c.active();
    await c.status(JOB);
    expect(requests.map((r) => [r.url, r.authorization])).toEqual([
      ['/api/triage/health', undefined],
      ['/api/triage/active', `Bearer ${TOKEN}`],
      [`/api/triage/${JOB}/status`, `Bearer ${TOKEN}`],
    ]);
  });

  it('asks getToken before each request (tokens refresh)', async () => {
    let calls = 0;
    const c = new TriageClient({ baseUrl, getToken: async () => (++calls, TOKEN) });
    await c.active();
    await c.active();
    expect(calls).toBe(2);
    expect(requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('sends no header without a token, and maps the 401', async () => {
    const err = await rejection(new TriageClient({ baseUrl }).active());
    expect(requests[0]!.authorization).toBeUndefined();
    expect(err.status).toBe(401);
    expect(err.detail).toBe('Not authenticated');
  });

  it('starts from storage with a JSON body and returns the reply', async () => {
    const c = client();
    const files = [{ original_name: 'a.jpg', storage_path: `triage/user-a/${JOB}/1.jpg`, size: 10 }];
    await expect(c.startFromStorage({ job_id: JOB, files, target: '10%', passes: 2 })).resolves.toEqual({
      job_id: JOB,
      status: 'processing',
      photo_count: 1,
      credits_deducted: 0,
      credits_required: 1,
      estimated_grids: 2,
    });
    expect(JSON.parse(requests[0]!.body)).toEqual({ job_id: JOB, files, target: '10%', passes: 2 });
  });

  it("maps error replies to TriageApiError with the server's detail", async () => {
    const c = client();
    const files = [{ original_name: 'a.jpg', storage_path: 'triage/user-b/x/1.jpg', size: 10 }];
    const forbidden = await rejection(c.startFromStorage({ job_id: JOB, files }));
    expect([forbidden.status, forbidden.detail]).toEqual([403, 'Invalid storage path - must be in user/job folder']);
    expect(forbidden.body).toEqual({ detail: 'Invalid storage path - must be in user/job folder' });

    const missing = await rejection(c.status('another-job'));
    expect([missing.status, missing.detail]).toEqual([404, 'Triage job not found']);

    const early = await rejection(c.results(JOB));
    expect([early.status, early.detail]).toEqual([400, 'Triage not complete. Status: processing']);
  });

  it('maps FastAPI-style validation arrays, non-JSON errors and network failures', async () => {
    const c = client();
    const fastapi = await rejection(
      (c as unknown as { json: (m: string, p: string, o: object) => Promise<unknown> }).json(
        'GET',
        '/fastapi-style',
        {},
      ),
    );
    expect([fastapi.status, fastapi.detail]).toEqual([422, 'Passes must be 1 or 2; field required']);

    const html = await rejection(
      (c as unknown as { json: (m: string, p: string, o: object) => Promise<unknown> }).json('GET', '/bad-gateway', {}),
    );
    expect([html.status, html.detail, html.body]).toEqual([502, 'Bad Gateway', '<html>oops</html>']);

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const offline = await rejection(new TriageClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN }).active());
    expect(offline.status).toBe(0);
    expect(offline.detail).toMatch(/^Network error/);
  });

  it('reads results (and every fate with includeAll), proceeds, cancels, downloads', async () => {
    const c = client();
    cursor = steps.length - 1;
    const results = await c.results(JOB);
    expect(results.selected_photos[0]).toMatchObject({ id: '0', rank: 1, thumbnail_url: 'https://signed/thumb' });
    expect(results.photos).toBeUndefined();
    const all = await c.results(JOB, { includeAll: true });
    expect(all.photos?.[0]?.fate).toBe('selected');
    expect(pathsOf('GET')).toEqual([`/${JOB}/results`, `/${JOB}/results?include=all`]);

    await expect(c.proceed(JOB)).resolves.toEqual({ queued_count: 1, credits_deducted: 0 });
    await expect(c.proceed(JOB, ['0', '3'])).resolves.toEqual({ queued_count: 2, credits_deducted: 0 });
    expect(requests.filter((r) => r.method === 'POST').map((r) => JSON.parse(r.body) as unknown)).toEqual([
      {},
      { photo_ids: ['0', '3'] },
    ]);

    await expect(c.cancel(JOB)).resolves.toEqual({ message: 'Triage job cancelled and deleted' });
    expect(requests.at(-1)).toMatchObject({ method: 'DELETE', url: `/api/triage/${JOB}` });

    expect(c.downloadUrl(JOB)).toBe(`${baseUrl}/api/triage/${JOB}/download`);
    const zip = await c.download(JOB);
    expect(zip.headers.get('content-disposition')).toContain(`triage_${JOB.slice(0, 8)}_selected.zip`);
    expect(new Uint8Array(await zip.arrayBuffer()).slice(0, 2)).toEqual(new Uint8Array([0x50, 0x4b]));
    expect(requests.at(-1)!.authorization).toBe(`Bearer ${TOKEN}`);
    await expect(c.download('another-job')).rejects.toMatchObject({ status: 404, detail: 'Triage job not found' });
  });

  it('escapes the job id in paths', async () => {
    await rejection(client().status('../active'));
    expect(requests[0]!.url).toBe('/api/triage/..%2Factive/status');
  });
});

// ---------------------------------------------------------------- events and waitForJob
describe('TriageClient.events', () => {
  it('yields each status from the stream and ends with the job', async () => {
    const seen: TriageStatus[] = [];
    for await (const status of client().events(JOB)) seen.push(status);
    expect(seen.map((s) => [s.status, s.grids_done])).toEqual([
      ['processing', 0],
      ['processing', 1],
      ['processing', 2],
      ['completed', 4],
    ]);
    expect(requests[0]).toMatchObject({
      url: `/api/triage/${JOB}/events`,
      authorization: `Bearer ${TOKEN}`,
      accept: 'text/event-stream',
    });
  });

  it('closes the connection when the consumer stops early', async () => {
    steps = Array.from({ length: 500 }, (_, i) => statusAt('processing', i, 500));
    for await (const status of client().events(JOB)) {
      expect(status.status).toBe('processing');
      break;
    }
    await expect.poll(() => closedStreams, { timeout: 30_000 }).toBe(1);
  });

  it('throws a TriageApiError when the route is missing', async () => {
    eventsMode = '404';
    const err = await rejection(
      (async () => {
        for await (const _ of client().events(JOB)) void _;
      })(),
    );
    expect(err.status).toBe(404);
  });
});

describe('TriageClient.waitForJob', () => {
  it('follows the event stream, reporting progress, without polling', async () => {
    const seen: string[] = [];
    const final = await client().waitForJob(JOB, { onProgress: (s) => seen.push(s.progress?.message ?? s.status) });
    expect(final.status).toBe('completed');
    expect(final.final_selected).toBe(2);
    expect(seen).toEqual([
      'Coarse selection: grid 0/4',
      'Coarse selection: grid 1/4',
      'Coarse selection: grid 2/4',
      'completed',
    ]);
    expect(pathsOf()).toEqual([`/${JOB}/events`]);
  });

  it('resolves on failed and cancelled too', async () => {
    steps = script('failed');
    await expect(client().waitForJob(JOB)).resolves.toMatchObject({
      status: 'failed',
      error_message: 'Vision provider unavailable',
    });
    steps = script('cancelled');
    cursor = 0;
    await expect(client().waitForJob(JOB, { pollIntervalMs: 5, polling: true })).resolves.toMatchObject({
      status: 'cancelled',
    });
  });

  it('falls back to polling /status when /events is 404 (an older server)', async () => {
    eventsMode = '404';
    const seen: JobStatus[] = [];
    const final = await client().waitForJob(JOB, { pollIntervalMs: 10, onProgress: (s) => seen.push(s.status) });
    expect(final.status).toBe('completed');
    expect(seen).toEqual(['processing', 'processing', 'processing', 'completed']);
    expect(pathsOf()).toEqual([`/${JOB}/events`, ...Array<string>(4).fill(`/${JOB}/status`)]);
  });

  it('falls back to polling when the reply is not an event stream, or a stream says nothing', async () => {
    for (const mode of ['html', 'empty'] as const) {
      requests = [];
      cursor = 0;
      eventsMode = mode;
      await expect(client().waitForJob(JOB, { pollIntervalMs: 10 })).resolves.toMatchObject({ status: 'completed' });
      expect(pathsOf().filter((p) => p.endsWith('/status'))).toHaveLength(4);
    }
  });

  it('reconnects when a proxy cuts the stream after each event', async () => {
    eventsMode = 'drop';
    const final = await client().waitForJob(JOB, { pollIntervalMs: 10 });
    expect(final.status).toBe('completed');
    expect(pathsOf()).toEqual(Array<string>(4).fill(`/${JOB}/events`));
  });

  it('polls every 2 s by default', async () => {
    eventsMode = '404';
    steps = [statusAt('processing', 1), statusAt('completed', 4)];
    const started = Date.now();
    await expect(client().waitForJob(JOB)).resolves.toMatchObject({ status: 'completed' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1950);
  });

  it('rides out transient 5xx while polling, then gives up after too many', async () => {
    eventsMode = '404';
    statusFailures = 2;
    await expect(client().waitForJob(JOB, { pollIntervalMs: 5 })).resolves.toMatchObject({ status: 'completed' });
    statusFailures = 10;
    cursor = 0;
    const err = await rejection(client().waitForJob(JOB, { pollIntervalMs: 5, maxConsecutiveErrors: 3 }));
    expect(err.status).toBe(503);
  });

  it('rejects on 401 from the stream, and on an unknown job', async () => {
    eventsMode = '401';
    const expired = await rejection(client().waitForJob(JOB, { pollIntervalMs: 5 }));
    expect([expired.status, expired.detail]).toEqual([401, 'Token expired']);
    expect(pathsOf()).toEqual([`/${JOB}/events`]);

    eventsMode = '404';
    const missing = await rejection(client().waitForJob('another-job', { pollIntervalMs: 5 }));
    expect([missing.status, missing.detail]).toEqual([404, 'Triage job not found']);
  });

  it('stops when the signal aborts, streaming or polling', async () => {
    steps = Array.from({ length: 10_000 }, (_, i) => statusAt('processing', i, 10_000));
    const streaming = new AbortController();
    const waitStream = client().waitForJob(JOB, { signal: streaming.signal, onProgress: () => streaming.abort() });
    await expect(waitStream).rejects.toMatchObject({ name: 'AbortError' });
    await expect.poll(() => closedStreams, { timeout: 30_000 }).toBe(openStreams);

    eventsMode = '404';
    const polling = new AbortController();
    // Aborted once the first poll has answered, so while the client waits a minute for the next one.
    const waitPoll = client().waitForJob(JOB, {
      signal: polling.signal,
      pollIntervalMs: 60_000,
      onProgress: () => polling.abort(),
    });
    await expect(waitPoll).rejects.toMatchObject({ name: 'AbortError' });
    expect(requests.filter((r) => r.url.endsWith('/status'))).toHaveLength(1);
  });
});
