/**
 * A local Supabase Storage server for tests: a node:http server on 127.0.0.1 speaking the wire protocol the
 * real Storage API speaks to storage-js and to the SupabaseStorage driver, with the answers the real server
 * gives (observed against the open-source storage API on PostgreSQL behind a Supabase gateway):
 *   - base path: the server itself serves at `/`; a gateway exposes it at `/storage/v1` (`gateway: true`, the
 *     default; then anything else is the gateway's own 404);
 *   - no Authorization: 400 InvalidRequest; a key that is neither the service nor the anon key: 403
 *     AccessDenied, except GET /object/info which answers as anonymous (404 NoSuchBucket); the anon key sees
 *     no object (NoSuchKey on reads) and removes nothing (`200 []`), as row-level security does;
 *   - a missing bucket: 404 NoSuchBucket; a missing object: HTTP 400 with `{statusCode: "404", code:
 *     "NoSuchKey"}` (HEAD: a bare 400 with JSON headers); an unknown route: 404 with a numeric statusCode and
 *     `Route GET:… not found`; a range wholly past the end: 416 InvalidRange without Content-Range;
 *   - a duplicate upload: KeyAlreadyExists; a key with non-ASCII characters or `%`: InvalidKey; a bucket's
 *     MIME types always enforced, its size limit only when the length is known in advance;
 *   - signed URLs: expired InvalidJWT, for another object InvalidSignature, tampered "signature verification
 *     failed"; signing with a transform while transforms are off gives a plain /object/sign URL;
 *   - render with transforms off: route 404 (self-hosted) or 403 FeatureNotEnabled (hosted); an undecodable
 *     file 400 InvalidRequest; a renderer that is down 500 InternalError after a delay.
 * Objects live in memory.
 *
 * Faults are injected per operation and path: an HTTP status with the service's error body, a stall (headers
 * and maybe some bytes, then nothing), a truncated body (full Content-Length, then the socket is cut), a
 * connection reset, extra latency, a refused transform. Every request is logged (key redacted).
 *
 *   const fake = await FakeSupabase.start({ serviceRoleKey: 'test-key' });
 *   fake.put('photos', 'triage/u/j/a.jpg', jpegBytes);
 *   fake.inject({ op: 'download', path: 'triage/u/j/a.jpg', times: 2, fault: { kind: 'status', status: 500 } });
 *   new SupabaseStorage({ url: fake.url, serviceRoleKey: 'test-key', ... });
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { encodedImageInfo } from '@triage/core';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type StorageOp =
  | 'download' // GET /object/{authenticated/}{bucket}/{path}
  | 'head' // HEAD /object/{authenticated/}{bucket}/{path}
  | 'info' // GET /object/info/{authenticated/}{bucket}/{path}
  | 'upload' // POST|PUT /object/{bucket}/{path}
  | 'remove' // DELETE /object/{bucket}
  | 'copy' // POST /object/copy {bucketId, sourceKey, destinationKey, destinationBucket?}
  | 'sign' // POST /object/sign/{bucket}/{path}
  | 'signMany' // POST /object/sign/{bucket}
  | 'signedGet' // GET /object/sign/{bucket}/{path}?token=
  | 'render' // GET /render/image/authenticated/{bucket}/{path}
  | 'signedRender' // GET /render/image/sign/{bucket}/{path}?token=
  | 'bucket' // GET /bucket/{bucket}
  | 'unknown';

export type StorageFault =
  /** Answer with this status and the service's error body (or `body`). */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Send the headers and `afterBytes` bytes of the body (none by default), then nothing until the client gives up. With `beforeHeaders`, not even the headers. */
  | { kind: 'stall'; afterBytes?: number; beforeHeaders?: boolean }
  /** Announce the full Content-Length, send `afterBytes` bytes, then cut the connection. */
  | { kind: 'truncate'; afterBytes: number }
  /** Cut the connection before answering. */
  | { kind: 'reset' }
  /** Wait, then answer normally. */
  | { kind: 'latency'; ms: number }
  /** A transform the service will not make (only meaningful for render ops). */
  | { kind: 'refuse'; status?: number; message?: string };

export interface FaultRule {
  op?: StorageOp | readonly StorageOp[];
  /** Object path (without bucket), exact or pattern. */
  path?: string | RegExp;
  /** How many matching requests this rule hits; unlimited by default. */
  times?: number;
  fault: StorageFault;
}

export interface StoredObject {
  body: Buffer;
  contentType: string;
  /** Pixel size, when the body is an image (read from its header at put time, or given). */
  width?: number;
  height?: number;
  id: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface LoggedStorageRequest {
  method: string;
  op: StorageOp;
  /** Raw URL path and query as received (after /storage/v1). */
  url: string;
  bucket?: string;
  path?: string;
  query: Record<string, string>;
  /** Request headers, the key redacted. */
  headers: Record<string, string>;
  /** Whether `apikey` and `Authorization: Bearer` carried the service key. */
  authorized: boolean;
  status?: number;
  fault?: StorageFault['kind'];
  /** Bytes of the request body (uploads, JSON). */
  requestBytes: number;
  /** Parsed JSON request body, when there was one. */
  json?: unknown;
  at: number;
}

export interface RenderInput {
  width?: number;
  height?: number;
  resize: 'cover' | 'contain' | 'fill';
  quality?: number;
  format?: string;
  accept?: string;
}

/** Whether the server renders images, and how it says it does not. */
export type TransformMode = 'on' | 'off-self-hosted' | 'off-hosted';

export interface BucketSettings {
  /** MIME types uploads may have (`image/*` patterns allowed); any when absent. */
  allowedMimeTypes?: string[];
  /** Largest upload in bytes, enforced when the request announces its length. */
  fileSizeLimit?: number;
}

export interface FakeSupabaseOptions {
  serviceRoleKey?: string;
  /** The anon key: accepted, but it sees no object (row-level security). */
  anonKey?: string;
  /** Served under `/storage/v1` as behind a Supabase gateway (default), or at `/` as the server itself. */
  gateway?: boolean;
  /** Buckets that exist from the start (default `photos`); `put` creates its bucket too. */
  buckets?: string[];
  /** Image transformation (default on). Can be changed while running (`fake.transforms`). */
  transforms?: TransformMode;
  /** Makes the transformed image; by default the original bytes come back unchanged. */
  render?: (
    object: StoredObject,
    transform: RenderInput,
  ) => Promise<{ body: Buffer; contentType: string }> | { body: Buffer; contentType: string };
  /** Largest source the transform accepts (default 25 MB) and its pixel limit (default 50 MP). */
  maxTransformBytes?: number;
  maxTransformPixels?: number;
  /** Chunk size of streamed bodies (default 64 KiB). */
  chunkBytes?: number;
}

const TRANSFORM_TYPES = new Set([
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/avif',
  'image/gif',
  'image/heic',
  'image/heif',
  'image/tiff',
]);

function errorBody(statusCode: string, error: string, message: string, code?: string) {
  return { statusCode, ...(code && { code }), error, message };
}

const NOT_FOUND = errorBody('404', 'not_found', 'Object not found', 'NoSuchKey');
const NO_BUCKET = errorBody('404', 'Bucket not found', 'Bucket not found', 'NoSuchBucket');
/** What the server's router answers for a path it has no route for. */
function routeNotFound(method: string, pathname: string) {
  return { statusCode: 404, error: 'Not Found', message: `Route ${method}:${pathname} not found` };
}

type Role = 'service' | 'anon' | 'bad' | 'none';

export class FakeSupabase {
  readonly objects = new Map<string, StoredObject>();
  readonly requests: LoggedStorageRequest[] = [];
  readonly rules: (FaultRule & { hits: number })[] = [];
  readonly serviceRoleKey: string;
  readonly anonKey: string;
  readonly buckets = new Map<string, BucketSettings>();
  transforms: TransformMode;
  /** The image renderer behind the server is down: each render answers 500 InternalError after `delayMs`. */
  rendererDown: { delayMs: number } | null = null;
  /** Every request answers this status (an outage) until set back to null. */
  outage: number | null = null;
  /** Requests being handled now, and the most ever handled at once. */
  inFlight = 0;
  maxInFlight = 0;
  private readonly sockets = new Set<Socket>();
  private readonly signingSecret = randomUUID();

  private constructor(
    private readonly server: Server,
    private readonly options: FakeSupabaseOptions,
  ) {
    this.serviceRoleKey = options.serviceRoleKey ?? 'fake-service-role-key';
    this.anonKey = options.anonKey ?? 'fake-anon-key';
    this.transforms = options.transforms ?? 'on';
    for (const name of options.buckets ?? ['photos']) this.buckets.set(name, {});
  }

  static async start(options: FakeSupabaseOptions = {}): Promise<FakeSupabase> {
    const server = createServer();
    const fake = new FakeSupabase(server, options);
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((err) => {
        if (!res.headersSent) fake.json(res, 500, errorBody('500', 'internal', String((err as Error)?.message ?? err)));
        else res.destroy();
      });
    });
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** The project URL to give the client (`SUPABASE_URL`): behind the gateway, the API lives under `/storage/v1`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The base path of the Storage API on this server. */
  get basePath(): string {
    return this.options.gateway === false ? '' : '/storage/v1';
  }

  createBucket(name: string, settings: BucketSettings = {}): void {
    this.buckets.set(name, settings);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ------------------------------------------------------------ objects

  put(
    bucket: string,
    path: string,
    body: Buffer,
    options: { contentType?: string; width?: number; height?: number } = {},
  ): StoredObject {
    const size = encodedImageInfo(body);
    const now = new Date();
    const object: StoredObject = {
      body,
      contentType: options.contentType ?? size?.mediaType ?? 'application/octet-stream',
      id: randomUUID(),
      createdAt: now,
      updatedAt: now,
      ...((options.width ?? size?.width) !== undefined && { width: options.width ?? size!.width }),
      ...((options.height ?? size?.height) !== undefined && { height: options.height ?? size!.height }),
    };
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, {});
    this.objects.set(`${bucket}/${path}`, object);
    return object;
  }

  get(bucket: string, path: string): StoredObject | undefined {
    return this.objects.get(`${bucket}/${path}`);
  }

  has(bucket: string, path: string): boolean {
    return this.objects.has(`${bucket}/${path}`);
  }

  // ------------------------------------------------------------ faults and log

  inject(rule: FaultRule): FaultRule {
    const stored = { ...rule, hits: 0 };
    this.rules.push(stored);
    return stored;
  }

  clearFaults(): void {
    this.rules.length = 0;
  }

  /** Logged requests, optionally of one operation and/or one object path. */
  log(op?: StorageOp, path?: string): LoggedStorageRequest[] {
    return this.requests.filter((r) => (op === undefined || r.op === op) && (path === undefined || r.path === path));
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  private takeFault(op: StorageOp, path: string | undefined): StorageFault | undefined {
    for (const rule of this.rules) {
      const ops = rule.op === undefined ? undefined : Array.isArray(rule.op) ? rule.op : [rule.op];
      if (ops && !ops.includes(op)) continue;
      if (rule.path !== undefined) {
        if (path === undefined) continue;
        if (typeof rule.path === 'string' ? rule.path !== path : !rule.path.test(path)) continue;
      }
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      rule.hits++;
      return rule.fault;
    }
    return undefined;
  }

  // ------------------------------------------------------------ HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const base = this.basePath;
    const role = this.role(req);
    const entry: LoggedStorageRequest = {
      method: req.method ?? 'GET',
      op: 'unknown',
      url: (base && url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : url.pathname) + url.search,
      query: Object.fromEntries(url.searchParams),
      headers: this.redact(req.headers),
      authorized: role === 'service',
      requestBytes: 0,
      at: Date.now(),
    };
    this.requests.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.inFlight--;
      entry.status = res.statusCode;
    };
    res.on('finish', finish);
    res.on('close', finish);
    if (base && !url.pathname.startsWith(`${base}/`))
      return this.json(res, 404, { message: 'no Route matched with those values' });
    const method = req.method ?? 'GET';
    const pathname = url.pathname.slice(base.length);
    const route = this.route(method, pathname);
    entry.op = route.op;
    if (route.bucket !== undefined) entry.bucket = route.bucket;
    if (route.path !== undefined) entry.path = route.path;

    const body = await readBody(req);
    entry.requestBytes = body.length;
    let json: unknown;
    if (body.length > 0 && (req.headers['content-type'] ?? '').includes('application/json')) {
      try {
        json = JSON.parse(body.toString('utf8'));
        entry.json = json;
      } catch {
        return this.json(res, 400, errorBody('400', 'Bad Request', 'Body is not valid JSON', 'InvalidRequest'));
      }
    }
    if (this.outage !== null)
      return this.json(
        res,
        this.outage,
        errorBody(String(this.outage), 'Service Unavailable', 'storage is unavailable'),
      );
    if (route.op === 'unknown') return this.json(res, 404, routeNotFound(method, url.pathname));
    const render = route.op === 'render' || route.op === 'signedRender';
    if (render && this.transforms === 'off-self-hosted') {
      // The render routes are not registered at all: the router's own 404, as the real server words it.
      return this.json(res, 404, { ...routeNotFound(method, url.pathname), statusCode: '404', code: 'InvalidRequest' });
    }

    const signed = route.op === 'signedGet' || route.op === 'signedRender';
    if (!signed) {
      const refused = this.refuseCaller(role, route.op);
      if (refused) return this.json(res, refused.status, refused.body);
    }
    if (render && this.transforms === 'off-hosted') {
      return this.json(
        res,
        403,
        errorBody('403', 'FeatureNotEnabled', 'feature not enabled for this tenant', 'FeatureNotEnabled'),
      );
    }
    if (route.bucket !== undefined && !this.buckets.has(route.bucket)) return this.json(res, 404, NO_BUCKET);
    if (route.path !== undefined && (/[^\x20-\x7e]/.test(route.path) || route.path.includes('%'))) {
      return this.json(res, 400, errorBody('400', 'InvalidKey', `Invalid key: ${route.path}`, 'InvalidKey'));
    }

    const fault = this.takeFault(route.op, route.path);
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'latency') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      for (const [k, v] of Object.entries(fault.headers ?? {})) res.setHeader(k, v);
      return this.json(
        res,
        fault.status,
        // `body: null` is sent as the JSON `null` (a proxy's answer), only a missing body takes the default.
        fault.body !== undefined
          ? fault.body
          : errorBody(
              String(fault.status),
              fault.status >= 500 ? 'internal' : 'error',
              fault.status >= 500 ? 'Internal Server Error' : 'Error',
            ),
      );
    }
    if (fault?.kind === 'stall' && fault.beforeHeaders) return; // never answer
    // The anon key sees no object: row-level security hides every row from it.
    const hidden = role === 'anon';

    switch (route.op) {
      case 'bucket':
        return hidden
          ? this.json(res, 400, NO_BUCKET)
          : this.json(res, 200, {
              id: route.bucket,
              name: route.bucket,
              public: false,
              ...this.bucketJson(route.bucket!),
            });
      case 'download':
      case 'head':
        return this.serveObject(req, res, route.bucket!, route.path!, fault, route.op === 'head', hidden);
      case 'info':
        return this.info(res, route.bucket!, route.path!, hidden);
      case 'upload':
        if (hidden)
          return this.json(
            res,
            400,
            errorBody('403', 'Unauthorized', 'new row violates row-level security policy', 'AccessDenied'),
          );
        return this.upload(req, res, route.bucket!, route.path!, body);
      case 'remove':
        return this.remove(res, route.bucket!, json, hidden);
      case 'copy':
        return this.copy(req, res, json, entry);
      case 'sign':
        return this.sign(res, route.bucket!, route.path!, json, hidden);
      case 'signMany':
        return this.signMany(res, route.bucket!, json, hidden);
      case 'signedGet':
      case 'signedRender': {
        const claims = this.verify(url.searchParams.get('token'), route.bucket!, route.path!);
        if ('refused' in claims) return this.json(res, 400, claims.refused);
        if (route.op === 'signedGet')
          return this.serveObject(req, res, route.bucket!, route.path!, fault, false, false);
        return this.render(req, res, route.bucket!, route.path!, claims.transform ?? {}, fault, false);
      }
      case 'render':
        return this.render(req, res, route.bucket!, route.path!, Object.fromEntries(url.searchParams), fault, hidden);
    }
  }

  /** Why a caller is refused before the route runs, or null. */
  private refuseCaller(role: Role, op: StorageOp): { status: number; body: unknown } | null {
    if (role === 'none') {
      return {
        status: 400,
        body: errorBody('400', 'Bad Request', "headers must have required property 'authorization'", 'InvalidRequest'),
      };
    }
    if (role !== 'bad') return null;
    // The info route authenticates optionally: a bad key is simply no one, who sees no bucket.
    if (op === 'info') return { status: 404, body: NO_BUCKET };
    return { status: 403, body: errorBody('403', 'Unauthorized', 'invalid signature', 'AccessDenied') };
  }

  private bucketJson(bucket: string): Record<string, unknown> {
    const settings = this.buckets.get(bucket) ?? {};
    return { allowed_mime_types: settings.allowedMimeTypes ?? null, file_size_limit: settings.fileSizeLimit ?? null };
  }

  private route(method: string, pathname: string): { op: StorageOp; bucket?: string; path?: string } {
    let parts: string[];
    try {
      parts = pathname
        .split('/')
        .filter(Boolean)
        .map((p) => decodeURIComponent(p));
    } catch {
      return { op: 'unknown' };
    }
    const split = (from: number) => ({ bucket: parts[from], path: parts.slice(from + 1).join('/') || undefined });
    if (parts[0] === 'bucket' && parts.length === 2 && method === 'GET') return { op: 'bucket', bucket: parts[1] };
    if (parts[0] === 'object') {
      if (parts[1] === 'info')
        return method === 'GET' ? { op: 'info', ...split(parts[2] === 'authenticated' ? 3 : 2) } : { op: 'unknown' };
      if (parts[1] === 'sign') {
        if (method === 'POST' && parts.length === 3) return { op: 'signMany', bucket: parts[2] };
        if (method === 'POST') return { op: 'sign', ...split(2) };
        if (method === 'GET') return { op: 'signedGet', ...split(2) };
      }
      if (method === 'DELETE' && parts.length === 2) return { op: 'remove', bucket: parts[1] };
      // Matched before uploads, as the service does: /object/copy is never an upload to a bucket named "copy".
      if (method === 'POST' && parts[1] === 'copy' && parts.length === 2) return { op: 'copy' };
      if ((method === 'POST' || method === 'PUT') && parts.length >= 3) return { op: 'upload', ...split(1) };
      const at = parts[1] === 'authenticated' || parts[1] === 'public' ? 2 : 1;
      if (parts.length < at + 2) return { op: 'unknown' };
      if (method === 'GET') return { op: 'download', ...split(at) };
      if (method === 'HEAD') return { op: 'head', ...split(at) };
    }
    if (parts[0] === 'render' && parts[1] === 'image' && method === 'GET' && parts.length >= 5) {
      if (parts[2] === 'sign') return { op: 'signedRender', ...split(3) };
      if (parts[2] === 'authenticated' || parts[2] === 'public') return { op: 'render', ...split(3) };
    }
    return { op: 'unknown' };
  }

  private serveObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    path: string,
    fault: StorageFault | undefined,
    head: boolean,
    hidden: boolean,
  ): void {
    const object = hidden ? undefined : this.get(bucket, path);
    // Like the real service: HTTP 400, the "404" inside the body (a HEAD has the JSON headers but no body).
    if (!object)
      return head
        ? void res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end()
        : this.json(res, 400, NOT_FOUND);
    let body = object.body;
    let status = 200;
    const headers: Record<string, string> = {
      'content-type': object.contentType,
      'cache-control': 'max-age=3600',
      etag: `"${object.id}"`,
      'last-modified': object.updatedAt.toUTCString(),
      'accept-ranges': 'bytes',
    };
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (range && req.headers.range) {
      const size = body.length;
      let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
      let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(size - 1, Number(range[2]));
      start = Math.max(0, start);
      if (start >= size || end < start) {
        return this.json(
          res,
          416,
          errorBody('400', 'invalid_range', 'The requested range is not satisfiable', 'InvalidRange'),
        );
      }
      end = Math.max(end, start);
      body = body.subarray(start, end + 1);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    this.sendBody(res, status, headers, body, fault, head);
  }

  private sendBody(
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: Buffer,
    fault: StorageFault | undefined,
    head = false,
  ): void {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    if (head) return void res.end();
    if (fault?.kind === 'stall') {
      const n = Math.min(fault.afterBytes ?? 0, body.length);
      if (n > 0) res.write(body.subarray(0, n));
      else res.flushHeaders();
      return; // and nothing more
    }
    if (fault?.kind === 'truncate') {
      const n = Math.min(fault.afterBytes, Math.max(0, body.length - 1));
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 5));
      return;
    }
    const chunk = this.options.chunkBytes ?? 64 * 1024;
    let offset = 0;
    const pump = () => {
      while (offset < body.length) {
        const part = body.subarray(offset, offset + chunk);
        offset += part.length;
        if (!res.write(part)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }

  private info(res: ServerResponse, bucket: string, path: string, hidden: boolean): void {
    const object = hidden ? undefined : this.get(bucket, path);
    if (!object) return this.json(res, 400, NOT_FOUND);
    this.json(res, 200, {
      id: object.id,
      name: path,
      version: object.id,
      bucket_id: bucket,
      size: object.body.length,
      content_type: object.contentType,
      cache_control: 'max-age=3600',
      etag: `"${object.id}"`,
      metadata: {},
      last_modified: object.updatedAt.toISOString(),
      created_at: object.createdAt.toISOString(),
    });
  }

  private upload(req: IncomingMessage, res: ServerResponse, bucket: string, path: string, body: Buffer): void {
    const upsert = req.method === 'PUT' || req.headers['x-upsert'] === 'true';
    if (this.has(bucket, path) && !upsert) {
      return this.json(res, 400, errorBody('409', 'Duplicate', 'The resource already exists', 'KeyAlreadyExists'));
    }
    const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
    const limits = this.buckets.get(bucket) ?? {};
    const allowed = limits.allowedMimeTypes;
    const mime = contentType.split(';')[0]!.trim().toLowerCase();
    if (allowed && !allowed.some((a) => a === mime || (a.endsWith('/*') && mime.startsWith(a.slice(0, -1))))) {
      return this.json(
        res,
        415,
        errorBody('415', 'invalid_mime_type', `mime type ${mime} is not supported`, 'InvalidMimeType'),
      );
    }
    // The size limit is checked against the announced length: a chunked upload is not measured.
    const announced = req.headers['content-length'];
    if (limits.fileSizeLimit !== undefined && announced !== undefined && Number(announced) > limits.fileSizeLimit) {
      return this.json(
        res,
        413,
        errorBody('413', 'Payload too large', 'The object exceeded the maximum allowed size', 'EntityTooLarge'),
      );
    }
    const object = this.put(bucket, path, body, { contentType });
    this.json(res, 200, { Id: object.id, Key: `${bucket}/${path}` });
  }

  /** Like the service: the source must exist; an existing destination is a 409 Duplicate unless x-upsert. */
  private copy(req: IncomingMessage, res: ServerResponse, json: unknown, entry: LoggedStorageRequest): void {
    const body = (json ?? {}) as {
      bucketId?: unknown;
      sourceKey?: unknown;
      destinationKey?: unknown;
      destinationBucket?: unknown;
    };
    for (const field of ['bucketId', 'sourceKey', 'destinationKey'] as const) {
      if (typeof body[field] !== 'string' || body[field] === '') {
        return this.json(res, 400, errorBody('400', 'Bad Request', `body must have required property '${field}'`));
      }
    }
    const bucket = body.bucketId as string;
    const to = typeof body.destinationBucket === 'string' && body.destinationBucket ? body.destinationBucket : bucket;
    entry.bucket = bucket;
    entry.path = body.sourceKey as string;
    const source = this.get(bucket, body.sourceKey as string);
    if (!source) return this.json(res, 400, NOT_FOUND);
    if (this.has(to, body.destinationKey as string) && req.headers['x-upsert'] !== 'true') {
      return this.json(res, 400, errorBody('409', 'Duplicate', 'The resource already exists', 'KeyAlreadyExists'));
    }
    const copied = this.put(to, body.destinationKey as string, Buffer.from(source.body), {
      contentType: source.contentType,
    });
    this.json(res, 200, { Id: copied.id, Key: `${to}/${body.destinationKey as string}` });
  }

  private remove(res: ServerResponse, bucket: string, json: unknown, hidden: boolean): void {
    const prefixes = (json as { prefixes?: unknown })?.prefixes;
    if (!Array.isArray(prefixes) || prefixes.length === 0) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body/prefixes must NOT have fewer than 1 items'));
    }
    if (prefixes.length > 1000)
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body/prefixes must NOT have more than 1000 items'));
    const deleted = [];
    for (const p of hidden ? [] : (prefixes as unknown[])) {
      const object = this.get(bucket, String(p));
      if (!object) continue;
      this.objects.delete(`${bucket}/${String(p)}`);
      deleted.push({
        name: p,
        bucket_id: bucket,
        id: object.id,
        updated_at: object.updatedAt.toISOString(),
        created_at: object.createdAt.toISOString(),
        metadata: { size: object.body.length, mimetype: object.contentType },
      });
    }
    this.json(res, 200, deleted);
  }

  private sign(res: ServerResponse, bucket: string, path: string, json: unknown, hidden: boolean): void {
    const { expiresIn, transform } = (json ?? {}) as { expiresIn?: unknown; transform?: Record<string, unknown> };
    if (!(typeof expiresIn === 'number' && Number.isInteger(expiresIn) && expiresIn >= 1)) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body/expiresIn must be >= 1'));
    }
    if (hidden || !this.get(bucket, path)) return this.json(res, 400, NOT_FOUND);
    // With transforms off the server ignores the transform and signs the object itself.
    const rendered = this.transforms === 'on' && transform !== undefined && Object.keys(transform).length > 0;
    const token = this.token(bucket, path, expiresIn, rendered ? transform : undefined);
    // The real server answers the key as it is stored, not percent-encoded.
    this.json(res, 200, {
      signedURL: `${rendered ? '/render/image/sign' : '/object/sign'}/${bucket}/${path}?token=${token}`,
    });
  }

  private signMany(res: ServerResponse, bucket: string, json: unknown, hidden: boolean): void {
    const { expiresIn, paths } = (json ?? {}) as { expiresIn?: unknown; paths?: unknown };
    if (!(typeof expiresIn === 'number' && expiresIn >= 1) || !Array.isArray(paths) || paths.length === 0) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body must have expiresIn ≥ 1 and at least one path'));
    }
    this.json(
      res,
      200,
      (paths as unknown[]).map((p) =>
        !hidden && this.get(bucket, String(p))
          ? {
              error: null,
              path: p,
              signedURL: `/object/sign/${bucket}/${String(p)}?token=${this.token(bucket, String(p), expiresIn)}`,
            }
          : { error: 'Either the object does not exist or you do not have access to it', path: p, signedURL: null },
      ),
    );
  }

  private async render(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    path: string,
    query: Record<string, unknown>,
    fault: StorageFault | undefined,
    hidden: boolean,
  ): Promise<void> {
    const object = hidden ? undefined : this.get(bucket, path);
    if (!object) return this.json(res, 400, NOT_FOUND);
    if (this.rendererDown) {
      await new Promise((r) => setTimeout(r, this.rendererDown!.delayMs));
      return this.json(res, 500, errorBody('500', 'InternalError', 'fetch failed', 'InternalError'));
    }
    if (fault?.kind === 'refuse') {
      const status = fault.status ?? 422;
      return this.json(
        res,
        status,
        errorBody(String(status), 'ImageProcessingError', fault.message ?? 'Transformation refused'),
      );
    }
    const maxBytes = this.options.maxTransformBytes ?? 25 * 1024 * 1024;
    const maxPixels = this.options.maxTransformPixels ?? 50_000_000;
    if (object.body.length > maxBytes) {
      return this.json(
        res,
        413,
        errorBody(
          '413',
          'EntityTooLarge',
          `The object exceeded the maximum allowed size for transformation (${maxBytes} bytes)`,
        ),
      );
    }
    if (!TRANSFORM_TYPES.has(object.contentType)) {
      return this.json(
        res,
        400,
        errorBody('400', 'InvalidRequest', 'Source image type not supported', 'InvalidRequest'),
      );
    }
    if (object.width !== undefined && object.height !== undefined && object.width * object.height > maxPixels) {
      return this.json(res, 422, errorBody('422', 'ImageProcessingError', 'Source image resolution is too big'));
    }
    const num = (v: unknown) =>
      v === undefined || v === null || v === '' ? undefined : Math.min(2500, Math.max(1, Math.round(Number(v))));
    const width = num(query.width);
    const height = num(query.height);
    const quality = query.quality === undefined ? undefined : Number(query.quality);
    const resize = (
      ['cover', 'contain', 'fill'].includes(String(query.resize)) ? query.resize : 'cover'
    ) as RenderInput['resize'];
    const input: RenderInput = {
      resize,
      ...(width !== undefined && { width }),
      ...(height !== undefined && { height }),
      ...(quality !== undefined && { quality }),
      ...(typeof query.format === 'string' && { format: query.format }),
      ...(req.headers.accept && { accept: req.headers.accept }),
    };
    let out: { body: Buffer; contentType: string };
    try {
      out = this.options.render
        ? await this.options.render(object, input)
        : { body: object.body, contentType: object.contentType };
    } catch {
      // The renderer could not decode the file.
      return this.json(
        res,
        400,
        errorBody('400', 'InvalidRequest', 'The source image could not be processed', 'InvalidRequest'),
      );
    }
    const transformations = [
      height && `height:${height}`,
      width && `width:${width}`,
      `resizing_type:${resize === 'contain' ? 'fit' : resize === 'fill' ? 'force' : 'fill'}`,
    ].filter(Boolean);
    this.sendBody(
      res,
      200,
      {
        'content-type': out.contentType,
        'x-transformations': transformations.join(','),
        'cache-control': 'max-age=3600',
      },
      out.body,
      fault,
    );
  }

  // ------------------------------------------------------------ helpers

  /** Signs a URL token as the server would, expiring `expiresIn` seconds from now (negative: already expired). */
  token(bucket: string, path: string, expiresIn: number, transform?: Record<string, unknown>): string {
    const payload = Buffer.from(
      JSON.stringify({
        url: `${bucket}/${path}`,
        exp: Math.floor(Date.now() / 1000) + expiresIn,
        ...(transform && { transform }),
      }),
    ).toString('base64url');
    return `${payload}.${createHmac('sha256', this.signingSecret).update(payload).digest('base64url')}`;
  }

  private verify(
    token: string | null,
    bucket: string,
    path: string,
  ): { transform?: Record<string, unknown> } | { refused: unknown } {
    const jwt = (message: string) => ({ refused: errorBody('400', 'InvalidJWT', message, 'InvalidJWT') });
    if (!token) return jwt('jwt must be provided');
    const [payload, signature] = token.split('.');
    if (!payload || !signature) return jwt('jwt malformed');
    const expected = Buffer.from(createHmac('sha256', this.signingSecret).update(payload).digest('base64url'));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      return jwt('signature verification failed');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      url: string;
      exp: number;
      transform?: Record<string, unknown>;
    };
    if (claims.exp * 1000 < Date.now()) return jwt('"exp" claim timestamp check failed');
    if (claims.url !== `${bucket}/${path}`)
      return {
        refused: errorBody('400', 'InvalidSignature', 'The url do not match the signature', 'InvalidSignature'),
      };
    return claims;
  }

  /** Who the request's key makes the caller. */
  private role(req: IncomingMessage): Role {
    const auth = req.headers.authorization;
    if (auth === undefined) return 'none';
    if (
      auth === `Bearer ${this.serviceRoleKey}` &&
      (req.headers.apikey === undefined || req.headers.apikey === this.serviceRoleKey)
    )
      return 'service';
    if (auth === `Bearer ${this.anonKey}` && (req.headers.apikey === undefined || req.headers.apikey === this.anonKey))
      return 'anon';
    return 'bad';
  }

  private redact(headers: IncomingMessage['headers']): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      out[k] = k === 'authorization' || k === 'apikey' ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
    }
    return out;
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    });
    res.end(text);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
