/**
 * A local Supabase Storage server for tests: a node:http server on 127.0.0.1 speaking the wire protocol the
 * real Storage API speaks to storage-js and to the SupabaseStorage driver (paths under /storage/v1, headers,
 * JSON bodies, and its error convention: HTTP 400 with `{statusCode: "404", code: "NoSuchKey", error:
 * "not_found", message: "Object not found"}` for a missing object). Objects live in memory.
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

export interface FakeSupabaseOptions {
  serviceRoleKey?: string;
  /** Makes the transformed image; by default the original bytes come back unchanged. */
  render?: (object: StoredObject, transform: RenderInput) => Promise<{ body: Buffer; contentType: string }> | { body: Buffer; contentType: string };
  /** Largest source the transform accepts (default 25 MB) and its pixel limit (default 50 MP). */
  maxTransformBytes?: number;
  maxTransformPixels?: number;
  /** Chunk size of streamed bodies (default 64 KiB). */
  chunkBytes?: number;
}

const TRANSFORM_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/avif', 'image/gif', 'image/heic', 'image/heif', 'image/tiff']);

function errorBody(statusCode: string, error: string, message: string, code?: string) {
  return { statusCode, ...(code && { code }), error, message };
}

const NOT_FOUND = errorBody('404', 'not_found', 'Object not found', 'NoSuchKey');

export class FakeSupabase {
  readonly objects = new Map<string, StoredObject>();
  readonly requests: LoggedStorageRequest[] = [];
  readonly rules: (FaultRule & { hits: number })[] = [];
  readonly serviceRoleKey: string;
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
  }

  static async start(options: FakeSupabaseOptions = {}): Promise<FakeSupabase> {
    let fake!: FakeSupabase;
    const server = createServer((req, res) => {
      fake.handle(req, res).catch((err) => {
        if (!res.headersSent) fake.json(res, 500, errorBody('500', 'internal', String((err as Error)?.message ?? err)));
        else res.destroy();
      });
    });
    fake = new FakeSupabase(server, options);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** The project URL to give the client (`SUPABASE_URL`): the API lives under `/storage/v1`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ------------------------------------------------------------ objects

  put(bucket: string, path: string, body: Buffer, options: { contentType?: string; width?: number; height?: number } = {}): StoredObject {
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
    const entry: LoggedStorageRequest = {
      method: req.method ?? 'GET',
      op: 'unknown',
      url: url.pathname.replace(/^\/storage\/v1/, '') + url.search,
      query: Object.fromEntries(url.searchParams),
      headers: this.redact(req.headers),
      authorized: this.authorized(req),
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
    if (!url.pathname.startsWith('/storage/v1/')) return this.json(res, 404, { message: 'no Route matched with those values' });
    const route = this.route(req.method ?? 'GET', url.pathname.slice('/storage/v1'.length));
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
        return this.json(res, 400, errorBody('400', 'Bad Request', 'Body is not valid JSON'));
      }
    }

    const signed = route.op === 'signedGet' || route.op === 'signedRender';
    if (!signed && !entry.authorized) {
      return this.json(res, 400, errorBody('403', 'Unauthorized', req.headers.authorization ? 'invalid signature' : 'headers must have required property \'authorization\''));
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
      return this.json(res, fault.status, fault.body ?? errorBody(String(fault.status), fault.status >= 500 ? 'internal' : 'error', fault.status >= 500 ? 'Internal Server Error' : 'Error'));
    }
    if (fault?.kind === 'stall' && fault.beforeHeaders) return; // never answer

    switch (route.op) {
      case 'download':
      case 'head':
        return this.serveObject(req, res, route.bucket!, route.path!, fault, route.op === 'head');
      case 'info':
        return this.info(res, route.bucket!, route.path!);
      case 'upload':
        return this.upload(req, res, route.bucket!, route.path!, body);
      case 'remove':
        return this.remove(res, route.bucket!, json);
      case 'copy':
        return this.copy(req, res, json, entry);
      case 'sign':
        return this.sign(res, route.bucket!, route.path!, json);
      case 'signMany':
        return this.signMany(res, route.bucket!, json);
      case 'signedGet':
      case 'signedRender': {
        const claims = this.verify(url.searchParams.get('token'), route.bucket!, route.path!);
        if (typeof claims === 'string') return this.json(res, 400, errorBody('400', 'InvalidJWT', claims));
        if (route.op === 'signedGet') return this.serveObject(req, res, route.bucket!, route.path!, fault, false);
        return this.render(req, res, route.bucket!, route.path!, claims.transform ?? {}, fault);
      }
      case 'render':
        return this.render(req, res, route.bucket!, route.path!, Object.fromEntries(url.searchParams), fault);
      default:
        return this.json(res, 404, { statusCode: '404', error: 'Not Found', message: `Route ${req.method}:${url.pathname} not found` });
    }
  }

  private route(method: string, pathname: string): { op: StorageOp; bucket?: string; path?: string } {
    const parts = pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
    const split = (from: number) => ({ bucket: parts[from], path: parts.slice(from + 1).join('/') || undefined });
    if (parts[0] === 'object') {
      if (parts[1] === 'info') return { op: method === 'GET' ? 'info' : 'unknown', ...split(parts[2] === 'authenticated' ? 3 : 2) };
      if (parts[1] === 'sign') {
        if (method === 'POST' && parts.length === 3) return { op: 'signMany', bucket: parts[2] };
        if (method === 'POST') return { op: 'sign', ...split(2) };
        if (method === 'GET') return { op: 'signedGet', ...split(2) };
      }
      if (method === 'DELETE' && parts.length === 2) return { op: 'remove', bucket: parts[1] };
      // Matched before uploads, as the service does: /object/copy is never an upload to a bucket named "copy".
      if (method === 'POST' && parts[1] === 'copy' && parts.length === 2) return { op: 'copy' };
      if (method === 'POST' || method === 'PUT') return { op: 'upload', ...split(1) };
      const at = parts[1] === 'authenticated' || parts[1] === 'public' ? 2 : 1;
      if (method === 'GET') return { op: 'download', ...split(at) };
      if (method === 'HEAD') return { op: 'head', ...split(at) };
    }
    if (parts[0] === 'render' && parts[1] === 'image') {
      if (parts[2] === 'sign' && method === 'GET') return { op: 'signedRender', ...split(3) };
      if ((parts[2] === 'authenticated' || parts[2] === 'public') && method === 'GET') return { op: 'render', ...split(3) };
    }
    return { op: 'unknown' };
  }

  private serveObject(req: IncomingMessage, res: ServerResponse, bucket: string, path: string, fault: StorageFault | undefined, head: boolean): void {
    const object = this.get(bucket, path);
    // Like the real service: HTTP 400, the "404" inside the body (a HEAD has no body at all).
    if (!object) return head ? void res.writeHead(400).end() : this.json(res, 400, NOT_FOUND);
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
        res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-type': 'application/json' });
        res.end(JSON.stringify(errorBody('416', 'InvalidRange', 'The requested range is not satisfiable')));
        return;
      }
      end = Math.max(end, start);
      body = body.subarray(start, end + 1);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    this.sendBody(res, status, headers, body, fault, head);
  }

  private sendBody(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer, fault: StorageFault | undefined, head = false): void {
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

  private info(res: ServerResponse, bucket: string, path: string): void {
    const object = this.get(bucket, path);
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
      return this.json(res, 400, errorBody('409', 'Duplicate', 'The resource already exists', 'Duplicate'));
    }
    const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
    const object = this.put(bucket, path, body, { contentType });
    this.json(res, 200, { Id: object.id, Key: `${bucket}/${path}` });
  }

  /** Like the service: the source must exist; an existing destination is a 409 Duplicate unless x-upsert. */
  private copy(req: IncomingMessage, res: ServerResponse, json: unknown, entry: LoggedStorageRequest): void {
    const body = (json ?? {}) as { bucketId?: unknown; sourceKey?: unknown; destinationKey?: unknown; destinationBucket?: unknown };
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
      return this.json(res, 400, errorBody('409', 'Duplicate', 'The resource already exists', 'Duplicate'));
    }
    const copied = this.put(to, body.destinationKey as string, Buffer.from(source.body), { contentType: source.contentType });
    this.json(res, 200, { Id: copied.id, Key: `${to}/${body.destinationKey as string}` });
  }

  private remove(res: ServerResponse, bucket: string, json: unknown): void {
    const prefixes = (json as { prefixes?: unknown })?.prefixes;
    if (!Array.isArray(prefixes) || prefixes.length === 0) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body/prefixes must NOT have fewer than 1 items'));
    }
    if (prefixes.length > 1000) return this.json(res, 400, errorBody('400', 'Bad Request', 'body/prefixes must NOT have more than 1000 items'));
    const deleted = [];
    for (const p of prefixes) {
      const object = this.get(bucket, String(p));
      if (!object) continue;
      this.objects.delete(`${bucket}/${p}`);
      deleted.push({ name: p, bucket_id: bucket, id: object.id, updated_at: object.updatedAt.toISOString(), created_at: object.createdAt.toISOString(), metadata: { size: object.body.length, mimetype: object.contentType } });
    }
    this.json(res, 200, deleted);
  }

  private sign(res: ServerResponse, bucket: string, path: string, json: unknown): void {
    const { expiresIn, transform } = (json ?? {}) as { expiresIn?: unknown; transform?: Record<string, unknown> };
    if (!(typeof expiresIn === 'number' && Number.isInteger(expiresIn) && expiresIn >= 1)) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body/expiresIn must be >= 1'));
    }
    if (!this.get(bucket, path)) return this.json(res, 400, NOT_FOUND);
    const token = this.token(bucket, path, expiresIn, transform);
    const base = transform && Object.keys(transform).length > 0 ? '/render/image/sign' : '/object/sign';
    this.json(res, 200, { signedURL: `${base}/${encodePath(bucket, path)}?token=${token}` });
  }

  private signMany(res: ServerResponse, bucket: string, json: unknown): void {
    const { expiresIn, paths } = (json ?? {}) as { expiresIn?: unknown; paths?: unknown };
    if (!(typeof expiresIn === 'number' && expiresIn >= 1) || !Array.isArray(paths) || paths.length === 0) {
      return this.json(res, 400, errorBody('400', 'Bad Request', 'body must have expiresIn ≥ 1 and at least one path'));
    }
    this.json(
      res,
      200,
      paths.map((p) =>
        this.get(bucket, String(p))
          ? { error: null, path: p, signedURL: `/object/sign/${encodePath(bucket, String(p))}?token=${this.token(bucket, String(p), expiresIn)}` }
          : { error: 'Either the object does not exist or you do not have access to it', path: p, signedURL: null },
      ),
    );
  }

  private async render(req: IncomingMessage, res: ServerResponse, bucket: string, path: string, query: Record<string, unknown>, fault: StorageFault | undefined): Promise<void> {
    const object = this.get(bucket, path);
    if (!object) return this.json(res, 400, NOT_FOUND);
    if (fault?.kind === 'refuse') {
      const status = fault.status ?? 422;
      return this.json(res, status, errorBody(String(status), 'ImageProcessingError', fault.message ?? 'Transformation refused'));
    }
    const maxBytes = this.options.maxTransformBytes ?? 25 * 1024 * 1024;
    const maxPixels = this.options.maxTransformPixels ?? 50_000_000;
    if (object.body.length > maxBytes) {
      return this.json(res, 413, errorBody('413', 'EntityTooLarge', `The object exceeded the maximum allowed size for transformation (${maxBytes} bytes)`));
    }
    if (!TRANSFORM_TYPES.has(object.contentType)) {
      return this.json(res, 422, errorBody('422', 'ImageProcessingError', 'Source image type not supported'));
    }
    if (object.width !== undefined && object.height !== undefined && object.width * object.height > maxPixels) {
      return this.json(res, 422, errorBody('422', 'ImageProcessingError', 'Source image resolution is too big'));
    }
    const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Math.min(2500, Math.max(1, Math.round(Number(v)))));
    const width = num(query.width);
    const height = num(query.height);
    const quality = query.quality === undefined ? undefined : Number(query.quality);
    const resize = (['cover', 'contain', 'fill'].includes(String(query.resize)) ? query.resize : 'cover') as RenderInput['resize'];
    const input: RenderInput = {
      resize,
      ...(width !== undefined && { width }),
      ...(height !== undefined && { height }),
      ...(quality !== undefined && { quality }),
      ...(query.format !== undefined && { format: String(query.format) }),
      ...(req.headers.accept && { accept: req.headers.accept }),
    };
    const out = this.options.render ? await this.options.render(object, input) : { body: object.body, contentType: object.contentType };
    const transformations = [height && `height:${height}`, width && `width:${width}`, `resizing_type:${resize === 'contain' ? 'fit' : resize === 'fill' ? 'force' : 'fill'}`].filter(Boolean);
    this.sendBody(res, 200, { 'content-type': out.contentType, 'x-transformations': transformations.join(','), 'cache-control': 'max-age=3600' }, out.body, fault);
  }

  // ------------------------------------------------------------ helpers

  private token(bucket: string, path: string, expiresIn: number, transform?: Record<string, unknown>): string {
    const payload = Buffer.from(JSON.stringify({ url: `${bucket}/${path}`, exp: Math.floor(Date.now() / 1000) + expiresIn, ...(transform && { transform }) })).toString('base64url');
    return `${payload}.${createHmac('sha256', this.signingSecret).update(payload).digest('base64url')}`;
  }

  private verify(token: string | null, bucket: string, path: string): { transform?: Record<string, unknown> } | string {
    if (!token) return 'jwt must be provided';
    const [payload, signature] = token.split('.');
    if (!payload || !signature) return 'jwt malformed';
    const expected = Buffer.from(createHmac('sha256', this.signingSecret).update(payload).digest('base64url'));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid signature';
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { url: string; exp: number; transform?: Record<string, unknown> };
    if (claims.url !== `${bucket}/${path}`) return 'Invalid JWT';
    if (claims.exp * 1000 < Date.now()) return 'jwt expired';
    return claims;
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.serviceRoleKey}` && (req.headers.apikey === undefined || req.headers.apikey === this.serviceRoleKey);
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
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }
}

function encodePath(bucket: string, path: string): string {
  return [bucket, ...path.split('/')].map(encodeURIComponent).join('/');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

