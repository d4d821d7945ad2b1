/**
 * A local Anthropic Messages API for tests: a node:http server on 127.0.0.1 that the real @anthropic-ai/sdk
 * talks to (`baseURL: fake.url`). It validates requests the way the API does (Bearer key, anthropic-version,
 * no temperature / top_p / top_k, image count, size, base64, media type, the model's image budget with
 * `oversized_image`, a structured-output schema whose objects all say `additionalProperties: false` and
 * that uses no `maxItems`), answers with structured picks chosen by a pluggable judge, and injects faults:
 * 429 with retry-after, 529 overloaded, 500, stalls (no answer: the client's timeout), latency, a refusal,
 * max_tokens, malformed JSON, labels that are not in the grid, a connection reset. Error bodies are the
 * API's: `{type: "error", error: {type, message}, request_id}`. Every request is logged with the decoded
 * pixel size of each image (the key redacted).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { encodedImageInfo } from '@triage/core';
import { catalogEntry } from '@triage/core';

export type AnthropicFault =
  /** An error answer; `retryAfter` (seconds) sets the `retry-after` header. */
  | {
      kind: 'status';
      status: number;
      type?: string;
      message?: string;
      retryAfter?: number;
      headers?: Record<string, string>;
    }
  /** Never answer (the client's timeout fires). */
  | { kind: 'stall' }
  /** Answer normally after a delay. */
  | { kind: 'latency'; ms: number }
  /** Cut the connection. */
  | { kind: 'reset' }
  /** stop_reason "refusal". */
  | {
      kind: 'refusal';
      category?: 'cyber' | 'bio' | 'frontier_llm' | 'reasoning_extraction' | 'general_harms' | null;
      explanation?: string;
    }
  /** stop_reason "max_tokens", the JSON cut off. */
  | { kind: 'max_tokens' }
  /** This text as the answer instead of the JSON (malformed JSON, prose…). */
  | { kind: 'text'; text: string }
  /** These picks as the answer, whatever the grid holds (labels not in the grid…). */
  | { kind: 'picks'; picks: string[] };

export interface AnthropicFaultRule {
  model?: string;
  times?: number;
  fault: AnthropicFault;
}

export interface LoggedImage {
  mediaType: string;
  width: number;
  height: number;
  bytes: number;
  base64Bytes: number;
  /** Visual tokens the model is billed for this image. */
  tokens: number;
  oversizedImage?: string;
  /** The image was larger than the model sees and the API would have shrunk it. */
  downsized: boolean;
}

export interface LoggedMessageRequest {
  model: string;
  maxTokens: number;
  /** Top-level keys of the body (to check e.g. that there is no temperature). */
  keys: string[];
  system: unknown;
  /** Types of the user content blocks in order (the image must come first). */
  contentOrder: string[];
  images: LoggedImage[];
  /** The text blocks, joined. */
  text: string;
  /** The structured-output schema, when one was given. */
  schema?: Record<string, unknown>;
  /** Labels allowed by the schema (its enum). */
  labels: string[];
  headers: Record<string, string>;
  authorized: boolean;
  /** The SDK's retry counter header. */
  retryCount: number;
  status?: number;
  fault?: AnthropicFault['kind'];
  /** The error type answered, if any. */
  errorType?: string;
  at: number;
}

export interface JudgeInput {
  model: string;
  labels: string[];
  /** "Pick about N" from the prompt, or undefined. */
  pick: number | undefined;
  text: string;
  images: LoggedImage[];
  imageData: Buffer[];
}

/** Chooses the picks of a well-formed request. Default: the first `pick` labels. */
export type Judge = (input: JudgeInput) => string[] | Promise<string[]>;

export interface FakeAnthropicOptions {
  apiKey?: string;
  judge?: Judge;
  /** Adds `retry-after-ms` to retryable error answers without their own retry-after, so the SDK's retries are quick in tests. */
  retryAfterMs?: number;
}

const DEFAULT_ERROR_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const DEFAULT_ERROR_MESSAGE: Record<string, string> = {
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit',
  overloaded_error: 'Overloaded',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
};

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

class RequestInvalid extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export class FakeAnthropic {
  readonly requests: LoggedMessageRequest[] = [];
  readonly rules: (AnthropicFaultRule & { hits: number })[] = [];
  readonly apiKey: string;
  judge: Judge;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly options: FakeAnthropicOptions,
  ) {
    this.apiKey = options.apiKey ?? 'fake-anthropic-key';
    this.judge = options.judge ?? ((input) => input.labels.slice(0, input.pick ?? Math.ceil(input.labels.length / 4)));
  }

  static async start(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
    const server = createServer();
    const fake = new FakeAnthropic(server, options);
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((err) => {
        if (!res.headersSent) fake.error(res, 500, 'api_error', String((err as Error)?.message ?? err));
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

  /** The base URL to give the SDK (`ANTHROPIC_BASE_URL`), without `/v1`. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  inject(rule: AnthropicFaultRule): AnthropicFaultRule {
    const stored = { ...rule, hits: 0 };
    this.rules.push(stored);
    return stored;
  }

  clearFaults(): void {
    this.rules.length = 0;
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  /** Tokens and cost billed so far, from the usage this server reported (answered requests only). */
  billed = { inputTokens: 0, outputTokens: 0 };

  private takeFault(model: string): AnthropicFault | undefined {
    for (const rule of this.rules) {
      if (rule.model !== undefined && rule.model !== model) continue;
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      rule.hits++;
      return rule.fault;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method !== 'POST' || url.pathname !== '/v1/messages') {
      return this.error(res, 404, 'not_found_error', `${req.method} ${url.pathname} not found`);
    }
    const entry: LoggedMessageRequest = {
      model: '',
      maxTokens: 0,
      keys: [],
      system: undefined,
      contentOrder: [],
      images: [],
      text: '',
      labels: [],
      headers: redact(req.headers),
      authorized: req.headers.authorization === `Bearer ${this.apiKey}` || req.headers['x-api-key'] === this.apiKey,
      retryCount: Number(req.headers['x-stainless-retry-count'] ?? 0),
      at: Date.now(),
    };
    this.requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));

    let imageData: Buffer[] = [];
    let body: Record<string, unknown>;
    try {
      if (!entry.authorized) throw new RequestInvalid(401, 'authentication_error', 'invalid x-api-key');
      if (!req.headers['anthropic-version'])
        throw new RequestInvalid(400, 'invalid_request_error', 'anthropic-version: header is required');
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new RequestInvalid(
          400,
          'invalid_request_error',
          'There was an issue with your request body: invalid JSON',
        );
      }
      imageData = this.validate(body, entry);
    } catch (err) {
      if (err instanceof RequestInvalid) {
        entry.errorType = err.type;
        return this.error(res, err.status, err.type, err.message, {}, err.details);
      }
      throw err;
    }

    const fault = this.takeFault(entry.model);
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'stall') return; // no answer at all
    if (fault?.kind === 'latency') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'status') {
      const type = fault.type ?? DEFAULT_ERROR_TYPE[fault.status] ?? 'api_error';
      entry.errorType = type;
      const headers: Record<string, string> = { ...fault.headers };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      else if (this.options.retryAfterMs !== undefined && (fault.status >= 500 || fault.status === 429))
        headers['retry-after-ms'] = String(this.options.retryAfterMs);
      return this.error(res, fault.status, type, fault.message ?? DEFAULT_ERROR_MESSAGE[type] ?? 'Error', headers);
    }

    let text: string;
    let stopReason = 'end_turn';
    let stopDetails: Record<string, unknown> | null = null;
    if (fault?.kind === 'refusal') {
      text = '';
      stopReason = 'refusal';
      stopDetails = { type: 'refusal', category: fault.category ?? null, explanation: fault.explanation ?? null };
    } else if (fault?.kind === 'text') {
      text = fault.text;
    } else {
      const picks =
        fault?.kind === 'picks'
          ? fault.picks
          : await this.judge({
              model: entry.model,
              labels: entry.labels,
              pick: Number(/Pick about (\d+)/.exec(entry.text)?.[1]) || undefined,
              text: entry.text,
              images: entry.images,
              imageData,
            });
      text = JSON.stringify({ picks });
    }
    let outputTokens = Math.max(1, Math.ceil(text.length / 3));
    if (fault?.kind === 'max_tokens' || outputTokens > entry.maxTokens) {
      stopReason = 'max_tokens';
      outputTokens = entry.maxTokens;
      text = text.slice(0, Math.max(1, Math.min(text.length - 2, entry.maxTokens * 3)));
    }
    const systemText = typeof body.system === 'string' ? body.system : JSON.stringify(body.system ?? '');
    const inputTokens =
      entry.images.reduce((s, i) => s + i.tokens, 0) + Math.ceil((systemText.length + entry.text.length) / 4) + 8;
    this.billed.inputTokens += inputTokens;
    this.billed.outputTokens += outputTokens;
    const requestId = `req_fake${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const message = {
      id: `msg_fake${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      type: 'message',
      role: 'assistant',
      model: entry.model,
      content: stopReason === 'refusal' ? [] : [{ type: 'text', text, citations: null }],
      container: null,
      diagnostics: null,
      stop_reason: stopReason,
      stop_sequence: null,
      stop_details: stopDetails,
      usage: {
        input_tokens: inputTokens,
        output_tokens: outputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation: null,
        inference_geo: null,
        output_tokens_details: null,
        server_tool_use: null,
        service_tier: 'standard',
      },
    };
    const json = JSON.stringify(message);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(json)),
      'request-id': requestId,
    });
    res.end(json);
  }

  /** Checks a Messages request like the API; fills the log entry; returns the decoded images. */
  private validate(body: Record<string, unknown>, entry: LoggedMessageRequest): Buffer[] {
    const bad = (message: string, details?: Record<string, unknown>) =>
      new RequestInvalid(400, 'invalid_request_error', message, details);
    entry.keys = Object.keys(body);
    for (const gone of ['temperature', 'top_p', 'top_k']) {
      if (gone in body) throw bad(`${gone}: Extra inputs are not permitted`);
    }
    if (typeof body.model !== 'string' || body.model === '') throw bad('model: Field required');
    entry.model = body.model;
    const known = catalogEntry(body.model);
    if (!known) throw new RequestInvalid(404, 'not_found_error', `model: ${body.model}`);
    if (!(Number.isInteger(body.max_tokens) && (body.max_tokens as number) >= 1))
      throw bad('max_tokens: Input should be a positive integer');
    entry.maxTokens = body.max_tokens as number;
    entry.system = body.system;
    if ('tool_choice' in body && (body.tool_choice as { type?: string })?.type === 'tool') {
      throw bad('tool_choice: forcing a tool is not supported with this model');
    }
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw bad('messages: at least one message is required');
    const images: Buffer[] = [];
    const texts: string[] = [];
    messages.forEach((m: { role?: unknown; content?: unknown }, mi) => {
      if (m.role !== 'user' && m.role !== 'assistant')
        throw bad(`messages.${mi}.role: Input should be 'user' or 'assistant'`);
      const content = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
      if (!Array.isArray(content)) throw bad(`messages.${mi}.content: Input should be a valid list`);
      content.forEach((block: Record<string, unknown>, bi) => {
        const where = `messages.${mi}.content.${bi}`;
        if (mi === 0) entry.contentOrder.push(String(block.type));
        if (block.type === 'text') {
          if (typeof block.text !== 'string' || block.text === '')
            throw bad(`${where}.text: text content blocks must be non-empty`);
          texts.push(block.text);
        } else if (block.type === 'image') {
          const source = block.source as { type?: string; media_type?: string; data?: unknown } | undefined;
          if (source?.type !== 'base64') throw bad(`${where}.source: only base64 images are accepted by this fake`);
          if (!IMAGE_TYPES.has(String(source.media_type)))
            throw bad(
              `${where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`,
            );
          if (typeof source.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(source.data))
            throw bad(`${where}.source.data: invalid base64 data`);
          if (source.data.length > 10 * 1024 * 1024)
            throw bad(
              `${where}.source.base64: image exceeds 10 MB maximum: ${source.data.length} bytes > 10485760 bytes`,
            );
          const data = Buffer.from(source.data, 'base64');
          const info = encodedImageInfo(data);
          if (!info) throw bad(`${where}.source.base64.data: Could not process image`);
          if (info.mediaType !== source.media_type)
            throw bad(`${where}.source.base64.data: Image does not match the provided media type ${source.media_type}`);
          if (info.width > 8000 || info.height > 8000)
            throw bad(`${where}.source.base64.data: image dimensions exceed max allowed size: 8000 pixels`);
          const p = known.profile;
          const tokensAsSent = Math.ceil(info.width / p.patch) * Math.ceil(info.height / p.patch);
          const over = info.width > p.maxEdge || info.height > p.maxEdge || tokensAsSent > p.maxTokens;
          const oversized = (block.transformations as { oversized_image?: string } | undefined)?.oversized_image;
          if (over && oversized === 'error') {
            const side = Math.floor(
              Math.min(
                p.maxEdge,
                p.patch *
                  Math.sqrt(p.maxTokens) *
                  Math.sqrt(Math.max(info.width, info.height) / Math.min(info.width, info.height)),
              ),
            );
            throw bad(
              `The image at ${where} is ${info.width}×${info.height} px, larger than ${String(body.model)} accepts; scale it so that it fits`,
              {
                error_code: 'image_dimensions_too_large',
                max_side_length_pixels: side,
                paths: [where],
              },
            );
          }
          let tokens = tokensAsSent;
          if (over) {
            // The API shrinks it to fit (aspect kept): within the edge and the token budget.
            const scale = Math.min(
              p.maxEdge / Math.max(info.width, info.height),
              Math.sqrt(p.maxTokens / tokensAsSent),
            );
            tokens = Math.min(
              p.maxTokens,
              Math.ceil((info.width * scale) / p.patch) * Math.ceil((info.height * scale) / p.patch),
            );
          }
          entry.images.push({
            mediaType: info.mediaType,
            width: info.width,
            height: info.height,
            bytes: data.length,
            base64Bytes: source.data.length,
            tokens,
            ...(oversized !== undefined && { oversizedImage: oversized }),
            downsized: over,
          });
          images.push(data);
        } else {
          throw bad(`${where}.type: this fake accepts text and image blocks only`);
        }
      });
    });
    if (images.length > 100) throw bad(`messages: too many images: ${images.length} > 100`);
    entry.text = texts.join('\n');
    const output = body.output_config as { format?: { type?: string; schema?: unknown } | null } | undefined;
    if (output?.format) {
      if (
        output.format.type !== 'json_schema' ||
        typeof output.format.schema !== 'object' ||
        output.format.schema === null
      ) {
        throw bad('output_config.format: expected {type: "json_schema", schema: {...}}');
      }
      checkSchema(output.format.schema as Record<string, unknown>, 'output_config.format.schema', bad);
      entry.schema = output.format.schema as Record<string, unknown>;
      entry.labels = enumOf(entry.schema);
    }
    return images;
  }

  private error(
    res: ServerResponse,
    status: number,
    type: string,
    message: string,
    headers: Record<string, string> = {},
    details?: Record<string, unknown>,
  ): void {
    const requestId = `req_fake${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const json = JSON.stringify({
      type: 'error',
      error: { type, message, ...(details && { details }) },
      request_id: requestId,
    });
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(json)),
      'request-id': requestId,
    });
    res.end(json);
  }
}

function checkSchema(schema: Record<string, unknown>, where: string, bad: (m: string) => Error): void {
  if ('maxItems' in schema) throw bad(`${where}: property 'maxItems' is not supported`);
  if (schema.type === 'object' && schema.additionalProperties !== false) {
    throw bad(`${where}: For 'object' type, 'additionalProperties' must be explicitly set to false`);
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && value && typeof value === 'object') {
      for (const [name, sub] of Object.entries(value))
        checkSchema(sub as Record<string, unknown>, `${where}.properties.${name}`, bad);
    } else if ((key === 'items' || key === 'additionalProperties') && value && typeof value === 'object') {
      checkSchema(value as Record<string, unknown>, `${where}.${key}`, bad);
    } else if ((key === 'anyOf' || key === 'allOf' || key === 'oneOf') && Array.isArray(value)) {
      value.forEach((sub, i) => checkSchema(sub as Record<string, unknown>, `${where}.${key}.${i}`, bad));
    }
  }
}

/** The enum of the picks' items (the labels allowed), searched anywhere in the schema. */
function enumOf(schema: unknown): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.enum)) return s.enum.filter((x): x is string => typeof x === 'string');
  for (const value of Object.values(s)) {
    const found = enumOf(value);
    if (found.length > 0) return found;
  }
  return [];
}

function redact(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k] = k === 'authorization' || k === 'x-api-key' ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
