/**
 * The Anthropic vision provider (production): each grid goes to each configured Claude model in one Messages
 * API request, and a photo survives when any model picks it (union vote).
 *
 * One request: `system` = SYSTEM_PROMPT (identical for every grid); one user turn whose content is the grid
 * image (base64 JPEG, with `transformations.oversized_image: 'error'` so the API never silently shrinks it)
 * FIRST, then the per-grid text (buildPrompt, plus the labels of unreadable cells); structured output
 * (`output_config.format` json_schema from answerSchema: the picks can only be labels present and readable in
 * this grid); `max_tokens` sized to the grid; no temperature / top_p / top_k (rejected by the API).
 *
 * The answer: `stop_reason` is checked first (refusal → that model failed; max_tokens → once more with twice
 * the budget, then failed), then the text is parsed defensively (parseAnswer: JSON, or labels in free text;
 * labels not in the grid are dropped and reported as `ignored`).
 *
 * Failures: the SDK retries 408/409/429/5xx/529 and connection errors `maxRetries` times, honouring
 * `retry-after`; on top, an overloaded service (529 overloaded_error) gets a longer backoff loop. A model whose
 * calls all fail gives a ModelAnswer with `error`; when every model fails the grid is `reviewed: false` with
 * the reasons — judge() does not throw for that. It throws only when aborted (the job's signal) and for a grid
 * image outside the model's profile (a bug in the caller: grids must be built to `provider.profile`).
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { ClientOptions } from '@anthropic-ai/sdk';
import type {
  Message,
  MessageCreateParamsNonStreaming,
  Usage as ApiUsage,
} from '@anthropic-ai/sdk/resources/messages/messages';
import { answerSchema, buildPrompt, parseAnswer, SYSTEM_PROMPT, visualTokens, type VisionProfile } from '@triage/core';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodedImageInfo } from '@triage/core';
import { combinedProfile, DEFAULT_MODEL, profileFor, type ProfileOverrides } from '@triage/core';
import {
  addUsage,
  NO_USAGE,
  unionAnswers,
  type GridAnswer,
  type GridRequest,
  type ModelAnswer,
  type Usage,
  type VisionProvider,
} from './provider.js';

export interface AnthropicProviderOptions {
  /** ANTHROPIC_API_KEY; sent as `Authorization: Bearer`. Never logged. */
  apiKey: string;
  /** ANTHROPIC_BASE_URL (without `/v1`); the SDK's default otherwise. */
  baseURL?: string;
  /** Models that vote on every grid (union). Default: claude-haiku-4-5. */
  models?: readonly string[];
  /** The SDK's own retries per request (429 with retry-after, 5xx, 529, timeouts, connection errors). Default 2. */
  maxRetries?: number;
  /** Time limit of one HTTP attempt, ms. Default 60 s. */
  timeoutMs?: number;
  /** Profile fields overriding the catalog for every model (e.g. prices from settings). */
  profileOverrides?: ProfileOverrides;
  /** Per-model overrides, applied after `profileOverrides`. */
  modelProfiles?: Record<string, ProfileOverrides>;
  /** After the SDK gives up on an overloaded service: this many more rounds... Default 3. */
  overloadedRetries?: number;
  /** ...waiting this long before the first, doubling each time. Default 15 s. */
  overloadedBackoffMs?: number;
  /** Output tokens budgeted per selectable label (a label in JSON is about 3–4 tokens). Default 8. */
  tokensPerLabel?: number;
  /** A fetch implementation for the SDK (tests, proxies). */
  fetch?: typeof fetch;
}

/** The grid image does not fit what the model sees: the grid was built for another profile. */
export class ImageOutsideProfileError extends Error {
  override name = 'ImageOutsideProfileError';
}

/** Largest base64 image the API takes. */
export const MAX_IMAGE_BASE64_BYTES = 10 * 1024 * 1024;

export function maxTokensFor(selectable: number, tokensPerLabel = 8): number {
  return Math.max(64, tokensPerLabel * selectable + 48);
}

/** The text after the image: the rules for this grid, and which cells could not be read. */
export function gridPrompt(
  request: Pick<GridRequest, 'pass' | 'geometry' | 'labels' | 'pick' | 'criteria' | 'unreadable' | 'sameScene'>,
): string {
  const text = buildPrompt({
    pass: request.pass,
    rows: request.geometry.rows,
    cols: request.geometry.cols,
    labels: request.labels,
    pick: request.pick,
    criteria: request.criteria,
    ...(request.sameScene && { sameScene: request.sameScene }),
  });
  const unreadable = request.unreadable ?? [];
  if (unreadable.length === 0) return text;
  return `${text}\nCells that could not be read (crossed out): ${unreadable.join(', ')}.`;
}

export class AnthropicProvider implements VisionProvider {
  readonly name = 'anthropic';
  readonly profile: VisionProfile;
  readonly models: readonly string[];
  readonly modelProfiles: ReadonlyMap<string, VisionProfile>;
  private client: Promise<Anthropic> | undefined;
  private readonly clientOptions: ClientOptions;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly overloadedRetries: number;
  private readonly overloadedBackoffMs: number;
  private readonly tokensPerLabel: number;

  constructor(options: AnthropicProviderOptions) {
    if (!options.apiKey) throw new Error('ANTHROPIC_API_KEY is required for the anthropic vision provider');
    const models = [...new Set((options.models ?? [DEFAULT_MODEL]).map((m) => m.trim()).filter(Boolean))];
    if (models.length === 0) throw new Error('VISION_MODELS names no model');
    this.models = models;
    this.modelProfiles = new Map(
      models.map((m) => [m, profileFor(m, { ...options.profileOverrides, ...options.modelProfiles?.[m] })] as const),
    );
    this.profile = combinedProfile([...this.modelProfiles.values()]);
    this.maxRetries = options.maxRetries ?? 2;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.overloadedRetries = options.overloadedRetries ?? 3;
    this.overloadedBackoffMs = options.overloadedBackoffMs ?? 15_000;
    this.tokensPerLabel = options.tokensPerLabel ?? 8;
    this.clientOptions = {
      apiKey: options.apiKey,
      ...(options.baseURL && { baseURL: options.baseURL }),
      maxRetries: this.maxRetries,
      timeout: this.timeoutMs,
      ...(options.fetch && { fetch: options.fetch }),
      logLevel: 'off',
    };
  }

  /** The SDK is loaded on first use: a worker on the offline provider never pays its ~12 MB. */
  private sdkClient(): Promise<Anthropic> {
    this.client ??= loadSdk().then((m) => new m.default(this.clientOptions));
    return this.client;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, models: this.models, profile: this.profile };
  }

  /** Checks that the grid image is one the models see as it is; returns its size. */
  checkImage(image: Buffer): {
    width: number;
    height: number;
    mediaType: 'image/jpeg' | 'image/png' | 'image/webp' | 'image/gif';
  } {
    const info = encodedImageInfo(image);
    if (!info) throw new ImageOutsideProfileError('the grid image is not a JPEG, PNG, WebP or GIF');
    if (Math.ceil(image.length / 3) * 4 > MAX_IMAGE_BASE64_BYTES) {
      throw new ImageOutsideProfileError(`the grid image is ${image.length} bytes: over the API's 10 MB base64 limit`);
    }
    for (const p of this.modelProfiles.values()) {
      const tokens = visualTokens(info.width, info.height, p.patch);
      if (info.width > p.maxEdge || info.height > p.maxEdge || tokens > p.maxTokens) {
        throw new ImageOutsideProfileError(
          `the grid image is ${info.width}×${info.height} px (${tokens} visual tokens) but ${p.id} sees at most ` +
            `${p.maxEdge} px per side and ${p.maxTokens} tokens: build grids to provider.profile`,
        );
      }
    }
    return info;
  }

  async judge(request: GridRequest): Promise<GridAnswer> {
    const signal = request.signal;
    signal?.throwIfAborted();
    const info = this.checkImage(request.image);
    const unreadable = new Set(request.unreadable ?? []);
    const selectable = request.labels.filter((l) => !unreadable.has(l));
    if (selectable.length === 0)
      return unionAnswers(
        request.labels,
        this.models.map((model) => ({ model, picks: [], usage: NO_USAGE })),
      );

    const params = (model: string, maxTokens: number): MessageCreateParamsNonStreaming => ({
      model,
      max_tokens: maxTokens,
      system: SYSTEM_PROMPT,
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'image',
              source: { type: 'base64', media_type: info.mediaType, data: request.image.toString('base64') },
              transformations: { oversized_image: 'error' },
            },
            { type: 'text', text: gridPrompt(request) },
          ],
        },
      ],
      output_config: { format: { type: 'json_schema', schema: answerSchema(selectable) } },
    });

    const answers = await Promise.all(this.models.map((model) => this.ask(model, selectable, params, signal)));
    if (signal?.aborted) throw signal.reason;
    const answer = unionAnswers(request.labels, answers);
    if (!answer.reviewed) {
      answer.error = `no model answered: ${answers.map((a) => `${a.model}: ${a.error}`).join('; ')}`;
    }
    return answer;
  }

  private async ask(
    model: string,
    selectable: readonly string[],
    params: (model: string, maxTokens: number) => MessageCreateParamsNonStreaming,
    signal: AbortSignal | undefined,
  ): Promise<ModelAnswer> {
    const profile = this.modelProfiles.get(model)!;
    let usage: Usage = NO_USAGE;
    let maxTokens = maxTokensFor(selectable.length, this.tokensPerLabel);
    let overloadedRounds = 0;
    let cutOff = false;
    for (;;) {
      try {
        const message = await (
          await this.sdkClient()
        ).messages.create(params(model, maxTokens), {
          ...(signal && { signal }),
          maxRetries: this.maxRetries,
          timeout: this.timeoutMs,
        });
        usage = addUsage(usage, usageOf(profile, message.usage));
        if (message.stop_reason === 'max_tokens' && !cutOff) {
          cutOff = true;
          maxTokens *= 2;
          continue;
        }
        return answerOf(model, message, selectable, usage, maxTokens);
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        if (isOverloaded(err) && overloadedRounds < this.overloadedRetries) {
          const wait = this.overloadedBackoffMs * 2 ** overloadedRounds * (0.8 + Math.random() * 0.4);
          overloadedRounds++;
          try {
            await sleep(wait, undefined, signal ? { signal } : {});
          } catch {
            throw signal?.reason ?? err;
          }
          continue;
        }
        const error = describeError(err, this.maxRetries, overloadedRounds, this.timeoutMs);
        return { model, picks: [], error, usage };
      }
    }
  }
}

/**
 * A model's answer from its response: a refusal or a second cut-off fails the model; otherwise the picks parsed
 * from its text (JSON, or labels in free text), failing only when the text holds neither.
 */
function answerOf(
  model: string,
  message: Message,
  selectable: readonly string[],
  usage: Usage,
  maxTokens: number,
): ModelAnswer {
  const failed = (error: string): ModelAnswer => ({ model, picks: [], error, usage });
  if (message.stop_reason === 'refusal') {
    const details = message.stop_details;
    return failed(
      `refused${details?.category ? ` (${details.category})` : ''}${details?.explanation ? `: ${details.explanation}` : ''}`,
    );
  }
  if (message.stop_reason === 'max_tokens') return failed(`answer cut off at max_tokens (${maxTokens}) twice`);
  const text = message.content
    .filter((b): b is Extract<typeof b, { type: 'text' }> => b.type === 'text')
    .map((b) => b.text)
    .join('');
  let parsed: unknown = text;
  let malformed = false;
  try {
    parsed = JSON.parse(text);
  } catch {
    malformed = true; // free text or broken JSON: parseAnswer still finds labels in it
  }
  const { picks, unknown } = parseAnswer(parsed, selectable);
  if (malformed && picks.length === 0 && unknown.length === 0) {
    return failed(`unreadable answer (not JSON, no labels): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return {
    model,
    picks,
    usage,
    ...(unknown.length > 0 && { ignored: unknown }),
    ...(message.stop_reason && { stopReason: message.stop_reason }),
    ...(malformed && { malformed: true }),
  };
}

type Sdk = typeof import('@anthropic-ai/sdk');
let sdk: Sdk | undefined;
async function loadSdk(): Promise<Sdk> {
  sdk ??= await import('@anthropic-ai/sdk');
  return sdk;
}

function isOverloaded(err: unknown): boolean {
  const APIError = sdk?.APIError;
  return APIError !== undefined && err instanceof APIError && (err.status === 529 || err.type === 'overloaded_error');
}

/** Tokens and cost of one response; cache writes cost 1.25× input, cache reads 0.1×. */
export function usageOf(profile: VisionProfile, usage: Partial<ApiUsage> | null | undefined): Usage {
  const input = usage?.input_tokens ?? 0;
  const cacheWrite = usage?.cache_creation_input_tokens ?? 0;
  const cacheRead = usage?.cache_read_input_tokens ?? 0;
  const output = usage?.output_tokens ?? 0;
  return {
    inputTokens: input + cacheWrite + cacheRead,
    outputTokens: output,
    costUsd:
      ((input + cacheWrite * 1.25 + cacheRead * 0.1) * profile.inputPerMTok + output * profile.outputPerMTok) /
      1_000_000,
  };
}

function describeError(err: unknown, maxRetries: number, overloadedRounds: number, timeoutMs: number): string {
  const attempts = `after ${maxRetries + 1} attempt${maxRetries === 0 ? '' : 's'}${overloadedRounds > 0 ? ` × ${overloadedRounds + 1} overloaded rounds` : ''}`;
  if (!sdk) return (err as Error)?.message ?? String(err);
  const { APIConnectionError, APIConnectionTimeoutError, APIError } = sdk;
  if (err instanceof APIConnectionTimeoutError) return `timed out (${timeoutMs} ms) ${attempts}`;
  if (err instanceof APIConnectionError) return `connection error ${attempts}: ${err.message}`;
  if (err instanceof APIError) {
    const body = err.error as { error?: { message?: unknown } } | undefined;
    const message = typeof body?.error?.message === 'string' ? body.error.message : err.message;
    const retried =
      err.status !== undefined && (err.status >= 500 || err.status === 429 || err.status === 408 || err.status === 409);
    return `HTTP ${err.status ?? '?'} ${err.type ?? 'error'}${retried ? ` ${attempts}` : ''}: ${message}`;
  }
  return (err as Error)?.message ?? String(err);
}
