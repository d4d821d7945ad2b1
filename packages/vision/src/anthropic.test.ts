/**
 * The Anthropic provider with the real @anthropic-ai/sdk, pointed at a local server speaking the Messages API
 * (src/testing/fake-anthropic.ts) — never a mocked module. Grid images are real JPEGs composed by
 * @triage/images at exactly the geometry the model's profile gives.
 */
import {
  capacity,
  coarsePercent,
  DEFAULT_LAYOUTS,
  estimateGrids,
  finePercent,
  fitGeometry,
  labelsFor,
  picksForGrid,
  planGeometry,
  planTriage,
  SYSTEM_PROMPT,
  type GridGeometry,
  type Pass,
  type VisionProfile,
} from '@triage/core';
import { composeGrid } from '@triage/images';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AnthropicProvider, ImageOutsideProfileError, type AnthropicProviderOptions } from './anthropic.js';
import { profileFor, combinedProfile } from '@triage/core';
import type { GridRequest } from './provider.js';
import { FakeAnthropic } from './testing/fake-anthropic.js';

const KEY = 'sk-ant-test-key-never-log-me';
let fake: FakeAnthropic;
const gridCache = new Map<string, Buffer>();

async function gridImage(
  geometry: GridGeometry,
  count: number,
  unreadable: ReadonlySet<number> = new Set(),
): Promise<Buffer> {
  const key = `${geometry.width}x${geometry.height}:${geometry.thumb}:${count}:${[...unreadable].join(',')}`;
  const cached = gridCache.get(key);
  if (cached) return cached;
  const cells = Array.from({ length: count }, (_, i) => {
    if (unreadable.has(i)) return { thumb: null, reason: 'missing from storage' };
    const thumb = Buffer.alloc(geometry.thumb * geometry.thumb * 3);
    for (let p = 0; p < thumb.length; p += 3) {
      thumb[p] = (i * 37 + p) & 255;
      thumb[p + 1] = (i * 91) & 255;
      thumb[p + 2] = (p >> 7) & 255;
    }
    return { thumb };
  });
  const image = await composeGrid(geometry, cells, labelsFor(count, geometry.cols));
  gridCache.set(key, image);
  return image;
}

async function request(
  profile: VisionProfile,
  pass: Pass,
  count: number,
  extra: Partial<GridRequest> = {},
): Promise<GridRequest> {
  const geometry = fitGeometry(planGeometry(profile, DEFAULT_LAYOUTS[pass]), count);
  const labels = labelsFor(count, geometry.cols);
  const unreadableIdx = new Set((extra.unreadable ?? []).map((l) => labels.indexOf(l)));
  return {
    image: await gridImage(geometry, count, unreadableIdx),
    geometry,
    labels,
    pass,
    criteria: 'standout',
    pick: picksForGrid(pass === 'coarse' ? coarsePercent(10) : 50, count),
    ...extra,
  };
}

function provider(options: Partial<AnthropicProviderOptions> = {}): AnthropicProvider {
  return new AnthropicProvider({
    apiKey: KEY,
    baseURL: fake.url,
    maxRetries: 2,
    timeoutMs: 5_000,
    overloadedRetries: 1,
    overloadedBackoffMs: 10,
    ...options,
  });
}

beforeAll(async () => {
  fake = await FakeAnthropic.start({ apiKey: KEY, retryAfterMs: 5 });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.clearFaults();
  fake.clearLog();
  fake.judge = (input) => input.labels.slice(0, input.pick ?? 1);
});

describe('requests', () => {
  it('sends one image first, within the model profile, then the text; structured output; no temperature', async () => {
    const p = provider();
    expect(p.profile).toMatchObject({ id: 'claude-haiku-4-5', maxEdge: 1568, maxTokens: 1568, patch: 28 });
    const req = await request(p.profile, 'coarse', 120);
    const answer = await p.judge(req);
    expect(answer.reviewed).toBe(true);
    expect(fake.requests).toHaveLength(1);
    const [logged] = fake.requests;
    expect(logged!.model).toBe('claude-haiku-4-5');
    expect(logged!.keys).not.toContain('temperature');
    expect(logged!.keys).not.toContain('top_p');
    expect(logged!.keys).not.toContain('top_k');
    expect(logged!.contentOrder).toEqual(['image', 'text']);
    expect(logged!.images).toHaveLength(1);
    const image = logged!.images[0]!;
    expect([image.width, image.height]).toEqual([req.geometry.width, req.geometry.height]);
    expect(image.width).toBeLessThanOrEqual(1092);
    expect(image.height).toBeLessThanOrEqual(1092);
    expect(image.tokens).toBeLessThanOrEqual(1568);
    expect(image.downsized).toBe(false);
    expect(image.oversizedImage).toBe('error');
    expect(image.mediaType).toBe('image/jpeg');
    expect(logged!.system).toBe(SYSTEM_PROMPT);
    expect(logged!.text).toContain(`${req.geometry.rows} rows × ${req.geometry.cols} columns`);
    expect(logged!.text).toContain(`Pick about ${req.pick}`);
    expect(logged!.labels).toEqual(req.labels);
    expect(logged!.schema).toMatchObject({ type: 'object', additionalProperties: false, required: ['picks'] });
    expect(JSON.stringify(logged!.schema)).not.toContain('maxItems');
    expect(logged!.maxTokens).toBe(8 * 120 + 48);
    expect(logged!.authorized).toBe(true);
    expect(logged!.headers.authorization).toBe('[redacted]');
    expect(logged!.headers['anthropic-version']).toBeTruthy();
  });

  it('keeps the system prompt identical across grids and passes', async () => {
    const p = provider();
    await p.judge(await request(p.profile, 'coarse', 120));
    await p.judge(await request(p.profile, 'coarse', 37));
    await p.judge(await request(p.profile, 'fine', 16));
    expect(new Set(fake.requests.map((r) => JSON.stringify(r.system))).size).toBe(1);
    expect(fake.requests[2]!.text).toContain('passed a first screening');
  });

  it('builds high-resolution grids for a high-res model and sends them unshrunk', async () => {
    const p = provider({ models: ['claude-opus-4-8'] });
    expect(p.profile).toMatchObject({ maxEdge: 2576, maxTokens: 4784 });
    const req = await request(p.profile, 'coarse', 200);
    expect(req.geometry.width).toBeGreaterThan(1092);
    await p.judge(req);
    const image = fake.requests[0]!.images[0]!;
    expect(image.width).toBe(req.geometry.width);
    expect(image.width).toBeLessThanOrEqual(1932);
    expect(image.tokens).toBeLessThanOrEqual(4784);
    expect(image.downsized).toBe(false);
  });

  it('refuses, before any call, a grid larger than the model sees', async () => {
    const big = await request(profileFor('claude-opus-4-8'), 'coarse', 200);
    const err = await provider()
      .judge(big)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ImageOutsideProfileError);
    expect(err.message).toMatch(/claude-haiku-4-5 sees at most 1568 px per side and 1568 tokens/);
    expect(fake.requests).toHaveLength(0);
  });

  it('the fake rejects what the real API rejects: temperature, an open schema, maxItems, an oversized image', async () => {
    const req = await request(profileFor('claude-haiku-4-5'), 'fine', 16);
    const send = (body: Record<string, unknown>) =>
      fetch(`${fake.url}/v1/messages`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${KEY}`,
          'anthropic-version': '2026-10-21',
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as {
          type: string;
          error: { type: string; message: string; details?: { error_code?: string } };
        },
      }));
    const image = {
      type: 'image',
      source: { type: 'base64', media_type: 'image/jpeg', data: req.image.toString('base64') },
    };
    const base = {
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: [image, { type: 'text', text: 'hi' }] }],
    };
    const t = await send({ ...base, temperature: 0 });
    expect(t.status).toBe(400);
    expect(t.body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(t.body.error.message).toMatch(/temperature/);
    const open = await send({
      ...base,
      output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: {} } } },
    });
    expect(open.body.error.message).toMatch(/additionalProperties/);
    const capped = await send({
      ...base,
      output_config: {
        format: {
          type: 'json_schema',
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: { picks: { type: 'array', maxItems: 3, items: { type: 'string' } } },
          },
        },
      },
    });
    expect(capped.body.error.message).toMatch(/maxItems/);
    const hi = await request(profileFor('claude-opus-4-8'), 'coarse', 200);
    const oversized = await send({
      ...base,
      messages: [
        {
          role: 'user',
          content: [
            {
              ...image,
              source: { ...image.source, data: hi.image.toString('base64') },
              transformations: { oversized_image: 'error' },
            },
          ],
        },
      ],
    });
    expect(oversized.status).toBe(400);
    expect(oversized.body.error.details?.error_code).toBe('image_dimensions_too_large');
    const png = await send({
      ...base,
      messages: [{ role: 'user', content: [{ ...image, source: { ...image.source, media_type: 'image/png' } }] }],
    });
    expect(png.body.error.message).toMatch(/does not match the provided media type/);
    const unauth = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong', 'anthropic-version': 'x' },
      body: '{}',
    });
    expect(unauth.status).toBe(401);
  });
});

describe('answers', () => {
  it('reads structured picks, with usage → tokens and cost from the profile prices', async () => {
    fake.judge = () => ['A1', 'B3', 'C2'];
    const p = provider();
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer).toMatchObject({ reviewed: true, picks: ['A1', 'B3', 'C2'], votes: { A1: 1, B3: 1, C2: 1 } });
    const logged = fake.requests[0]!;
    expect(answer.usage.inputTokens).toBeGreaterThan(logged.images[0]!.tokens);
    expect(answer.usage.outputTokens).toBeGreaterThan(0);
    expect(answer.usage.costUsd).toBeCloseTo((answer.usage.inputTokens * 1 + answer.usage.outputTokens * 5) / 1e6, 12);
    expect(answer.models[0]!.stopReason).toBe('end_turn');
  });

  it('drops labels not in the grid and reports them as ignored', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'picks', picks: ['A1', 'Z9', 'a2', 'D7', 'A1'] } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(true);
    expect(answer.picks).toEqual(['A1', 'A2']);
    expect(answer.models[0]!.ignored).toEqual(['Z9', 'D7']);
  });

  it('never lets an unreadable cell be picked: not in the schema, named in the prompt, dropped from answers', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'picks', picks: ['A1', 'A2', 'B1'] } });
    const answer = await p.judge(await request(p.profile, 'fine', 16, { unreadable: ['A2'] }));
    const logged = fake.requests[0]!;
    expect(logged.labels).not.toContain('A2');
    expect(logged.labels).toHaveLength(15);
    expect(logged.text).toMatch(/could not be read \(crossed out\): A2\./);
    expect(answer.picks).toEqual(['A1', 'B1']);
    expect(answer.models[0]!.ignored).toEqual(['A2']);
  });

  it('still reads a malformed (non-JSON) answer defensively', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'text', text: '{"picks": ["A1", "B2",' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(true);
    expect(answer.picks).toEqual(['A1', 'B2']);
    expect(answer.models[0]!.malformed).toBe(true);
  });

  it('treats an answer with neither JSON nor labels as a failed call: the grid is unreviewed', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'text', text: 'I am not able to help with that.' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.error).toMatch(/unreadable answer/);
  });

  it('checks stop_reason refusal before parsing: that model failed, the grid is unreviewed', async () => {
    const p = provider();
    fake.inject({ fault: { kind: 'refusal', category: 'general_harms', explanation: 'policy' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.picks).toEqual([]);
    expect(answer.error).toMatch(/claude-haiku-4-5: refused \(general_harms\): policy/);
    expect(fake.requests).toHaveLength(1); // a refusal is not retried
    expect(answer.usage.inputTokens).toBeGreaterThan(0); // but it was billed
  });

  it('on stop_reason max_tokens asks once more with twice the budget', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'max_tokens' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(true);
    expect(fake.requests.map((r) => r.maxTokens)).toEqual([176, 352]);
    expect(answer.usage.outputTokens).toBeGreaterThan(176);
  });

  it('fails the model when the answer is cut off twice', async () => {
    const p = provider();
    fake.inject({ fault: { kind: 'max_tokens' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.error).toMatch(/cut off at max_tokens/);
  });

  it('votes by union across models; one failing model leaves the grid reviewed', async () => {
    const p = provider({ models: ['claude-haiku-4-5', 'claude-sonnet-4-6'] });
    expect(p.profile).toMatchObject({
      id: 'claude-haiku-4-5+claude-sonnet-4-6',
      maxEdge: 1568,
      inputPerMTok: 4,
      outputPerMTok: 20,
    });
    fake.judge = ({ model }) => (model === 'claude-haiku-4-5' ? ['A1', 'A2'] : ['A2', 'B1']);
    const both = await p.judge(await request(p.profile, 'fine', 16));
    expect(both.picks).toEqual(['A1', 'A2', 'B1']);
    expect(both.votes).toEqual({ A1: 1, A2: 2, B1: 1 });
    fake.inject({ model: 'claude-sonnet-4-6', fault: { kind: 'status', status: 500 } });
    const one = await p.judge(await request(p.profile, 'fine', 16));
    expect(one.reviewed).toBe(true);
    expect(one.picks).toEqual(['A1', 'A2']);
    expect(one.models.find((m) => m.model === 'claude-sonnet-4-6')!.error).toMatch(
      /HTTP 500 api_error after 3 attempts/,
    );
  });
});

describe('failures and retries', () => {
  it('honours 429 retry-after and succeeds', async () => {
    const p = provider();
    fake.inject({ times: 2, fault: { kind: 'status', status: 429, retryAfter: 0.01 } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(true);
    expect(fake.requests.map((r) => r.status)).toEqual([429, 429, 200]);
    expect(fake.requests.map((r) => r.retryCount)).toEqual([0, 1, 2]);
  });

  it('leaves the grid unreviewed (no throw) when 429 outlasts the retries', async () => {
    const p = provider();
    fake.inject({ fault: { kind: 'status', status: 429, retryAfter: 0.01 } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer).toMatchObject({ reviewed: false, picks: [] });
    expect(answer.error).toMatch(/HTTP 429 rate_limit_error after 3 attempts/);
    expect(fake.requests).toHaveLength(3);
  });

  it('retries 529 overloaded in the SDK, then in the longer overloaded loop, then succeeds', async () => {
    const p = provider({ overloadedRetries: 2 });
    fake.inject({ times: 4, fault: { kind: 'status', status: 529 } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(true);
    // SDK: 3 attempts (2 retries) → overloaded round 1: 1 more 529, then success.
    expect(fake.requests.map((r) => r.status)).toEqual([529, 529, 529, 529, 200]);
  });

  it('gives up on a service that stays overloaded: unreviewed with the reason', async () => {
    const p = provider({ overloadedRetries: 1 });
    fake.inject({ fault: { kind: 'status', status: 529 } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.error).toMatch(/HTTP 529 overloaded_error after 3 attempts × 2 overloaded rounds: Overloaded/);
    expect(fake.requests).toHaveLength(6);
  });

  it('retries a 500 and succeeds; fails the grid when 500 persists', async () => {
    const p = provider();
    fake.inject({ times: 1, fault: { kind: 'status', status: 500 } });
    expect((await p.judge(await request(p.profile, 'fine', 16))).reviewed).toBe(true);
    fake.clearFaults();
    fake.inject({ fault: { kind: 'status', status: 500 } });
    const failed = await p.judge(await request(p.profile, 'fine', 16));
    expect(failed.reviewed).toBe(false);
    expect(failed.error).toMatch(/HTTP 500 api_error after 3 attempts/);
  });

  it('retries a timeout (a stalled server), and marks the grid unreviewed when every attempt times out', async () => {
    // Long enough that an answer on a busy machine is never mistaken for a stall.
    const p = provider({ timeoutMs: 1500, maxRetries: 1 });
    fake.inject({ times: 1, fault: { kind: 'stall' } });
    expect((await p.judge(await request(p.profile, 'fine', 16))).reviewed).toBe(true);
    expect(fake.requests).toHaveLength(2);
    fake.clearLog();
    fake.inject({ fault: { kind: 'stall' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.error).toMatch(/timed out \(1500 ms\) after 2 attempts/);
  });

  it('does not retry a 400 (a bad request stays bad)', async () => {
    const p = provider();
    fake.inject({ fault: { kind: 'status', status: 400, message: 'messages.0.content.0: bad image' } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(answer.reviewed).toBe(false);
    expect(answer.error).toMatch(/HTTP 400 invalid_request_error: messages.0.content.0: bad image/);
    expect(fake.requests).toHaveLength(1);
  });

  it('throws on abort (the job was cancelled), during a call and during the overloaded backoff', async () => {
    const p = provider({ timeoutMs: 10_000, overloadedBackoffMs: 10_000 });
    fake.inject({ times: 1, fault: { kind: 'stall' } });
    const controller = new AbortController();
    const pending = p.judge({ ...(await request(p.profile, 'fine', 16)), signal: controller.signal });
    // Aborted while the request is at the server (stalled there).
    await vi.waitUntil(() => fake.requests.length === 1, { timeout: 30_000 });
    controller.abort(new Error('job cancelled'));
    await expect(pending).rejects.toThrow('job cancelled');

    fake.clearFaults();
    fake.inject({ fault: { kind: 'status', status: 529 } });
    const c2 = new AbortController();
    // The SDK's fetch, noting when the overloaded answer has reached the client.
    let answered = 0;
    const counting: typeof fetch = async (...args) => {
      const res = await fetch(...args);
      answered++;
      return res;
    };
    // An hour's backoff: one that ignored the abort could not end within the test's time.
    const p2 = provider({ maxRetries: 0, overloadedBackoffMs: 3_600_000, fetch: counting }).judge({
      ...(await request(p.profile, 'fine', 16)),
      signal: c2.signal,
    });
    // Aborted once the 529 is in: during the backoff.
    await vi.waitUntil(() => answered === 1, { timeout: 30_000 });
    c2.abort(new Error('job cancelled again'));
    await expect(p2).rejects.toThrow('job cancelled again');
    expect(fake.requests).toHaveLength(2);
  });

  it('never puts the API key in an answer or error', async () => {
    const p = provider({ maxRetries: 0 });
    fake.inject({ fault: { kind: 'status', status: 500 } });
    const answer = await p.judge(await request(p.profile, 'fine', 16));
    expect(JSON.stringify(answer)).not.toContain(KEY);
    expect(JSON.stringify(p)).not.toContain(KEY);
    expect(JSON.stringify(fake.requests)).not.toContain(KEY);
  });
});

describe('profiles and cost', () => {
  it('knows the standard and high-res tiers and applies overrides', () => {
    for (const m of ['claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-6'])
      expect(profileFor(m)).toMatchObject({ maxEdge: 1568, maxTokens: 1568, patch: 28 });
    for (const m of ['claude-opus-4-7', 'claude-opus-4-8', 'claude-sonnet-5', 'claude-haiku-5-5'])
      expect(profileFor(m)).toMatchObject({ maxEdge: 2576, maxTokens: 4784, patch: 28 });
    expect(profileFor('claude-haiku-4-5')).toMatchObject({ inputPerMTok: 1, outputPerMTok: 5 });
    expect(profileFor('claude-haiku-4-5', { inputPerMTok: 0.5, maxTokens: 1000 })).toMatchObject({
      inputPerMTok: 0.5,
      maxTokens: 1000,
      maxEdge: 1568,
    });
    expect(profileFor('claude-opus-4-9')).toMatchObject({ maxEdge: 2576 });
    expect(() => profileFor('gpt-9')).toThrow(/no vision profile/);
    expect(
      profileFor('gpt-9', { maxEdge: 1000, maxTokens: 1000, patch: 32, inputPerMTok: 1, outputPerMTok: 2 }).id,
    ).toBe('gpt-9');
    expect(combinedProfile([profileFor('claude-haiku-4-5'), profileFor('claude-opus-4-8')])).toMatchObject({
      maxEdge: 1568,
      maxTokens: 1568,
    });
  });

  it('a 2,000-photo, two-pass job at 10 % against the fake reports tokens and cost', async () => {
    const p = provider();
    fake.billed = { inputTokens: 0, outputTokens: 0 };
    const total = 2000;
    const plan = planTriage(p.profile, total);
    let coarseSurvivors = 0;
    let usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
    let grids = 0;
    for (const n of plan.coarseSizes) {
      const req = await request(p.profile, 'coarse', n);
      req.pick = picksForGrid(coarsePercent(10), n);
      const a = await p.judge(req);
      expect(a.reviewed).toBe(true);
      coarseSurvivors += a.picks.length;
      usage = {
        inputTokens: usage.inputTokens + a.usage.inputTokens,
        outputTokens: usage.outputTokens + a.usage.outputTokens,
        costUsd: usage.costUsd + a.usage.costUsd,
      };
      grids++;
    }
    const fineCap = capacity(plan.fine);
    const fineSizes: number[] = [];
    for (let left = coarseSurvivors; left > 0; left -= fineCap) fineSizes.push(Math.min(fineCap, left));
    for (const n of fineSizes) {
      const req = await request(p.profile, 'fine', n);
      req.pick = picksForGrid(finePercent(10, total, coarseSurvivors), n);
      const a = await p.judge(req);
      usage = {
        inputTokens: usage.inputTokens + a.usage.inputTokens,
        outputTokens: usage.outputTokens + a.usage.outputTokens,
        costUsd: usage.costUsd + a.usage.costUsd,
      };
      grids++;
    }
    expect(grids).toBe(estimateGrids(plan, 10, 2));
    expect(usage.inputTokens).toBe(fake.billed.inputTokens);
    expect(usage.outputTokens).toBe(fake.billed.outputTokens);
    expect(usage.costUsd).toBeGreaterThan(0);
    expect(usage.costUsd).toBeLessThan(0.4); // the old service's estimate
    console.log(
      `2,000 photos, 2 passes, 10 %, ${p.profile.id}: ${plan.coarseSizes.length} coarse grids of ≤ ${capacity(plan.coarse)} ` +
        `(${plan.coarse.width}×${plan.coarse.height} px), ${fineSizes.length} fine grids of ≤ ${fineCap} ` +
        `(${plan.fine.width}×${plan.fine.height} px); ${usage.inputTokens} input + ${usage.outputTokens} output tokens = $${usage.costUsd.toFixed(4)}`,
    );
  });
});
