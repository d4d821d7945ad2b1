/**
 * What each Claude model sees of one image, and what it costs: the vision profile grids are built to.
 *
 * Image budgets (library-facts.md, API 2026-10-21): the standard tier (Haiku 4.5, Sonnet 4.6, Opus 4.6 and
 * older) sees at most 1568 px on the long edge and 1568 visual tokens; the high-resolution tier (Opus 4.7 and
 * later, every 5.x model) 2576 px and 4784 tokens. One token per 28 × 28 px patch.
 *
 * Prices in USD per million tokens, input / output. `published` ones are Anthropic's list prices as known
 * here; `assumed` ones are the family's current price carried over (Haiku $1/$5, Sonnet $3/$15, Opus $5/$25)
 * because no price was at hand: override them (VISION_PRICE_INPUT / VISION_PRICE_OUTPUT, or `overrides`).
 */
import type { VisionProfile } from './geometry.js';

export const STANDARD_TIER = { maxEdge: 1568, maxTokens: 1568, patch: 28 } as const;
export const HIGH_RES_TIER = { maxEdge: 2576, maxTokens: 4784, patch: 28 } as const;

export type PriceSource = 'published' | 'assumed';

export interface ModelCatalogEntry {
  profile: VisionProfile;
  tier: 'standard' | 'high-res';
  price: PriceSource;
}

const FAMILY_PRICE = {
  haiku: { inputPerMTok: 1, outputPerMTok: 5 },
  sonnet: { inputPerMTok: 3, outputPerMTok: 15 },
  opus: { inputPerMTok: 5, outputPerMTok: 25 },
} as const;

type Family = keyof typeof FAMILY_PRICE;

function entry(id: string, family: Family, tier: 'standard' | 'high-res', price: PriceSource): ModelCatalogEntry {
  return {
    profile: { id, ...(tier === 'standard' ? STANDARD_TIER : HIGH_RES_TIER), ...FAMILY_PRICE[family] },
    tier,
    price,
  };
}

/** The models this provider knows (the vision-capable ids in @anthropic-ai/sdk 1.14's `Model`). */
export const MODEL_CATALOG: Readonly<Record<string, ModelCatalogEntry>> = {
  'claude-haiku-4-5': entry('claude-haiku-4-5', 'haiku', 'standard', 'published'),
  'claude-haiku-4-5-20251001': entry('claude-haiku-4-5-20251001', 'haiku', 'standard', 'published'),
  'claude-sonnet-4-5': entry('claude-sonnet-4-5', 'sonnet', 'standard', 'published'),
  'claude-sonnet-4-5-20250929': entry('claude-sonnet-4-5-20250929', 'sonnet', 'standard', 'published'),
  'claude-sonnet-4-6': entry('claude-sonnet-4-6', 'sonnet', 'standard', 'assumed'),
  'claude-opus-4-5': entry('claude-opus-4-5', 'opus', 'standard', 'published'),
  'claude-opus-4-5-20251101': entry('claude-opus-4-5-20251101', 'opus', 'standard', 'published'),
  'claude-opus-4-6': entry('claude-opus-4-6', 'opus', 'standard', 'assumed'),
  'claude-opus-4-7': entry('claude-opus-4-7', 'opus', 'high-res', 'assumed'),
  'claude-opus-4-8': entry('claude-opus-4-8', 'opus', 'high-res', 'assumed'),
  'claude-sonnet-5': entry('claude-sonnet-5', 'sonnet', 'high-res', 'assumed'),
  'claude-sonnet-5-5': entry('claude-sonnet-5-5', 'sonnet', 'high-res', 'assumed'),
  'claude-opus-5': entry('claude-opus-5', 'opus', 'high-res', 'assumed'),
  'claude-opus-5-5': entry('claude-opus-5-5', 'opus', 'high-res', 'assumed'),
  'claude-haiku-5-5': entry('claude-haiku-5-5', 'haiku', 'high-res', 'assumed'),
};

export const DEFAULT_MODEL = 'claude-haiku-4-5';

export class UnknownModelError extends Error {
  override name = 'UnknownModelError';
}

/**
 * A model not in the catalog but named like one (`claude-{family}-{major}[-{minor}][-date]`): its tier follows
 * the rule above and its price the family's; anything else is unknown.
 */
function inferred(model: string): ModelCatalogEntry | null {
  const m = /^claude-(haiku|sonnet|opus)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?$/.exec(model);
  if (!m) return null;
  const family = m[1] as Family;
  const major = Number(m[2]);
  const minor = m[3] === undefined ? 0 : Number(m[3]);
  const highRes = major >= 5 || (family === 'opus' && major === 4 && minor >= 7);
  return entry(model, family, highRes ? 'high-res' : 'standard', 'assumed');
}

export type ProfileOverrides = Partial<Omit<VisionProfile, 'id'>>;

/** The catalog entry of a model (known or inferred from its name), or null. */
export function catalogEntry(model: string): ModelCatalogEntry | null {
  return MODEL_CATALOG[model] ?? inferred(model);
}

/**
 * The vision profile of `model`, with operator overrides (from settings) applied on top. An unknown model
 * needs every field in `overrides` (maxEdge, maxTokens, patch, prices); otherwise it is an error.
 */
export function profileFor(model: string, overrides: ProfileOverrides = {}): VisionProfile {
  const known = catalogEntry(model);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as ProfileOverrides;
  if (!known) {
    const { maxEdge, maxTokens, patch, inputPerMTok, outputPerMTok } = defined;
    if (
      maxEdge === undefined ||
      maxTokens === undefined ||
      patch === undefined ||
      inputPerMTok === undefined ||
      outputPerMTok === undefined
    ) {
      throw new UnknownModelError(
        `no vision profile is known for model "${model}": give its maxEdge, maxTokens, patch and prices, or use one of ${Object.keys(MODEL_CATALOG).join(', ')}`,
      );
    }
    return checkProfile({ id: model, maxEdge, maxTokens, patch, inputPerMTok, outputPerMTok });
  }
  return checkProfile({ ...known.profile, ...defined, id: model });
}

function checkProfile(p: VisionProfile): VisionProfile {
  for (const key of ['maxEdge', 'maxTokens', 'patch'] as const) {
    if (!(Number.isInteger(p[key]) && p[key] > 0))
      throw new RangeError(`vision profile ${p.id}: ${key} must be a positive integer, got ${p[key]}`);
  }
  for (const key of ['inputPerMTok', 'outputPerMTok'] as const) {
    if (!(Number.isFinite(p[key]) && p[key] >= 0))
      throw new RangeError(`vision profile ${p.id}: ${key} must be ≥ 0, got ${p[key]}`);
  }
  return p;
}

/**
 * The profile grids must be built to when several models vote on the same grid image: the smallest image
 * every one of them sees without rescaling, and the sum of their prices (each grid goes to each model).
 */
export function combinedProfile(profiles: readonly VisionProfile[]): VisionProfile {
  if (profiles.length === 0) throw new RangeError('at least one model is needed');
  if (profiles.length === 1) return profiles[0]!;
  const patch = profiles[0]!.patch;
  if (profiles.some((p) => p.patch !== patch))
    throw new RangeError('models with different patch sizes cannot share a grid');
  return {
    id: profiles.map((p) => p.id).join('+'),
    maxEdge: Math.min(...profiles.map((p) => p.maxEdge)),
    maxTokens: Math.min(...profiles.map((p) => p.maxTokens)),
    patch,
    inputPerMTok: profiles.reduce((s, p) => s + p.inputPerMTok, 0),
    outputPerMTok: profiles.reduce((s, p) => s + p.outputPerMTok, 0),
  };
}

/** USD for a call's usage at a profile's prices. */
export function costOf(profile: VisionProfile, inputTokens: number, outputTokens: number): number {
  return (inputTokens * profile.inputPerMTok + outputTokens * profile.outputPerMTok) / 1_000_000;
}
