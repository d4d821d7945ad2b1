/**
 * How many photos to keep: the user's target, and what each pass asks of a grid.
 * See the two-pass algorithm: the coarse pass is generous, the fine pass narrows, the final cut ranks.
 */

/** A bad request from the user: the message is meant to be shown to them as it is. */
export class TriageInputError extends Error {
  override name = 'TriageInputError';
}

export type Target = { kind: 'percent'; value: number } | { kind: 'count'; value: number };

export const MAX_PHOTOS = 2000;

/**
 * Parses `"10%"` (a share, 0 < N ≤ 100) or `"50"` (a count, 1 ≤ N ≤ total).
 * `total` is checked when given: a count above the number of photos is rejected.
 */
export function parseTarget(input: string, total?: number): Target {
  const text = String(input).trim();
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (!(value > 0 && value <= 100)) {
      throw new TriageInputError(`Invalid target "${input}": a percentage must be above 0% and at most 100%`);
    }
    return { kind: 'percent', value };
  }
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value < 1) throw new TriageInputError(`Invalid target "${input}": a count must be at least 1`);
    if (total !== undefined && value > total) {
      throw new TriageInputError(`Invalid target "${input}": cannot keep ${value} of ${total} photos`);
    }
    return { kind: 'count', value };
  }
  throw new TriageInputError(`Invalid target "${input}": use a share such as "10%" or a count such as "50"`);
}

export function formatTarget(target: Target): string {
  return target.kind === 'percent' ? `${target.value}%` : String(target.value);
}

/** The target as a share P of the input, in percent. */
export function targetPercent(target: Target, total: number): number {
  if (target.kind === 'percent') return target.value;
  return Math.min(100, (100 * target.value) / Math.max(1, total));
}

/** K: the most photos the final set keeps. */
export function finalCount(percent: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(total, Math.max(1, Math.floor((total * percent) / 100 + 1e-9)));
}

/** Share of each grid the coarse pass asks for: generous, since the fine pass narrows. */
export function coarsePercent(percent: number): number {
  return Math.min(2.5 * percent, 50);
}

/** Share of each fine grid to keep so that the survivors narrow to about the target. */
export function finePercent(percent: number, total: number, survivors: number): number {
  if (survivors <= 0) return 0;
  return Math.min(100, (percent * total) / survivors);
}

/**
 * How many cells of a grid of `cells` photos to ask for: at least one, never more than the grid. `before`
 * is how many photos of the pass came in earlier grids: the asks are apportioned over the whole pass, so
 * they add up to the pass's share of all its photos instead of losing a fraction to rounding in each grid.
 */
export function picksForGrid(percent: number, cells: number, before = 0): number {
  if (cells <= 0) return 0;
  const ask = Math.round(((before + cells) * percent) / 100) - Math.round((before * percent) / 100);
  return Math.min(cells, Math.max(1, ask));
}

export type CriteriaPreset = 'standout' | 'quality';

export const CRITERIA_PRESETS: Record<CriteriaPreset, string> = {
  standout:
    'eye-catching photos: a strong moment, a clear subject, beautiful light, strong composition, emotion, fresh framing',
  quality: 'technical and aesthetic excellence: sharp focus, good exposure, good colour and light, a clear subject',
};

export const MAX_CRITERIA_LENGTH = 500;

/** `standout`, `quality`, or the user's own words (trimmed, at most 500 characters). */
export function normaliseCriteria(input: string | undefined): string {
  const text = (input ?? 'standout').trim();
  if (text === '') return 'standout';
  if (text.length > MAX_CRITERIA_LENGTH) {
    throw new TriageInputError(`Criteria must be at most ${MAX_CRITERIA_LENGTH} characters`);
  }
  return text;
}

export function describeCriteria(criteria: string): string {
  return Object.hasOwn(CRITERIA_PRESETS, criteria) ? CRITERIA_PRESETS[criteria as CriteriaPreset] : criteria;
}

export function parsePasses(input: unknown): 1 | 2 {
  const n = typeof input === 'string' && input.trim() !== '' ? Number(input) : input;
  if (n === 1 || n === 2) return n;
  throw new TriageInputError('Passes must be 1 or 2');
}
