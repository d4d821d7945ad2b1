/**
 * Technical flaws an editor rejects at a glance, from a photo's signals — against its near-duplicate group
 * where it has one, since "blurred" or "too dark" is plainest beside a clean twin of the same scene, and
 * against fixed limits otherwise. Pure: the offline judge, the final cut and the photo's reason all use it.
 */

/** The signals a verdict carries (the coarse pass's, plus the fine pass's full-resolution detail). */
export interface PhotoSignals {
  sharpness: number;
  /** Noise σ (8-bit levels) at the thumbnail's scale; detail.noise at 1:1 is the one that tells. */
  noise?: number;
  brightness?: number;
  exposure: number;
  clippedBright?: number;
  clippedDark?: number;
  /** Focus and noise at full resolution (fine pass, decoded originals only). */
  detail?: { sharpness: number; noise: number };
}

export type Flaw = 'blurred' | 'noisy' | 'blown highlights' | 'too dark' | 'too bright' | 'badly exposed';

/** Noise σ at 1:1 (8-bit levels) above which a photo is "noisy": clean photos here read under 1.5, ISO 6400 above 2. */
export const NOISY_AT_FULL_SIZE = 2;
/**
 * Noise σ at the thumbnail's scale (QualitySignals.noise, 8-bit levels) from which a photo with no other
 * survivor of its scene is measured at 1:1 for noise (the only flaw the 1:1 square decides alone). On
 * `npm run bench:quality` the weakest noise flaw (σ 10 at 24 MP) reads 0.73 at the thumbnail's scale, and
 * no photo below 0.5 read noisy at 1:1. Noise fine enough to average out in the thumbnail (white noise at
 * 1:1) is looked for only where a photo has twins, which are measured at 1:1 whatever their thumbnail reads.
 */
export const MAY_BE_NOISY = 0.5;

/** Whether a photo's thumbnail signals leave open that it is noisy at full size. */
export function mayBeNoisy(thumbnail: { noise: number }): boolean {
  return thumbnail.noise >= MAY_BE_NOISY;
}
/** A group member less sharp than this share of the group's sharpest is "blurred" (thumbnail scale). */
export const BLURRED_IN_GROUP = 0.6;
/** The same at 1:1, where defocus shows far more. */
export const BLURRED_IN_GROUP_DETAIL = 0.35;
/** Noise at 1:1 this many times the group's least (and at least NOISIER_FLOOR levels) reads "noisy". */
export const NOISIER_IN_GROUP = 3;
export const NOISIER_FLOOR = 0.9;
/**
 * Brightness below this share of the group's median reads "too dark", above BRIGHTER_IN_GROUP times it "too
 * bright"; clipping above the group's least by MORE_CLIPPED_IN_GROUP of the frame, "blown highlights". A
 * "moment apart" changes the light by far less (±7 % in brightness); a stop under or over, by more.
 */
export const DARKER_IN_GROUP = 0.78;
export const BRIGHTER_IN_GROUP = 1.18;
export const MORE_CLIPPED_IN_GROUP = 0.05;
/** Without a group: the exposure score below which a photo is badly exposed. */
export const MIN_EXPOSURE = 0.4;

/** Each photo's flaw (or null) among `group` (every member of one near-duplicate group, or a lone photo). */
export function flawsInGroup(group: readonly PhotoSignals[]): (Flaw | null)[] {
  const details = group.filter((s) => s.detail).map((s) => s.detail!);
  const quietest = Math.min(...details.map((d) => d.noise));
  // Noise first: it reads as fine detail, so a noisy copy must not set the bar its clean twin is held to.
  const noisy = group.map(
    (s) =>
      !!s.detail &&
      (s.detail.noise >= NOISY_AT_FULL_SIZE ||
        (details.length > 1 && s.detail.noise >= Math.max(NOISIER_FLOOR, NOISIER_IN_GROUP * quietest))),
  );
  const clean = group.filter((_, k) => !noisy[k]);
  const sharpest = Math.max(1e-9, ...clean.map((s) => s.sharpness));
  const cleanDetails = clean.filter((s) => s.detail).map((s) => s.detail!);
  const sharpestDetail = Math.max(1e-9, ...cleanDetails.map((d) => d.sharpness));
  const leastClipped = Math.min(...group.map((s) => s.clippedBright ?? 0));
  const light = exposureInGroup(group.map((s) => s.brightness ?? 0.5));
  return group.map((s, k) => {
    if (noisy[k]) return 'noisy';
    if (group.length > 1) {
      if (s.detail && cleanDetails.length > 1 && s.detail.sharpness < BLURRED_IN_GROUP_DETAIL * sharpestDetail)
        return 'blurred';
      if (s.sharpness < BLURRED_IN_GROUP * sharpest) return 'blurred';
      if ((s.clippedBright ?? 0) - leastClipped > MORE_CLIPPED_IN_GROUP) return 'blown highlights';
      if (light[k]) return light[k];
    }
    if (s.exposure < MIN_EXPOSURE) return 'badly exposed';
    return null;
  });
}

/**
 * Exposure against the group: beside the median of three or more, or — for a pair, where no majority says
 * which is right — the one further from the mid-tones, when they differ by more than a stop would allow.
 */
function exposureInGroup(brightness: readonly number[]): ('too dark' | 'too bright' | null)[] {
  if (brightness.length === 2) {
    const [a, b] = brightness as [number, number];
    const [lo, hi] = a <= b ? [0, 1] : [1, 0];
    const out: ('too dark' | 'too bright' | null)[] = [null, null];
    const dark = brightness[lo]!;
    const light = brightness[hi]!;
    if (light < 1.28 * Math.max(dark, 1e-3)) return out;
    if (Math.abs(light - MID_TONE) > Math.abs(dark - MID_TONE)) out[hi] = 'too bright';
    else out[lo] = 'too dark';
    return out;
  }
  const ref = median(brightness);
  return brightness.map((b) =>
    b < DARKER_IN_GROUP * ref ? 'too dark' : b > BRIGHTER_IN_GROUP * ref ? 'too bright' : null,
  );
}

/** Mean luma of a well-exposed average scene. */
const MID_TONE = 0.45;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Every photo's flaw across a job: each near-duplicate group judged together, a lone photo alone. A group is
 * compared on the signals all its members have: the fine pass's (decoded from the original) when every member
 * reached it, the coarse pass's otherwise, with the full-resolution detail wherever it was measured.
 */
export function jobFlaws(
  groups: readonly (number | null)[],
  coarse: readonly (PhotoSignals | null)[],
  fine: readonly (PhotoSignals | null)[],
): (Flaw | null)[] {
  const flaws: (Flaw | null)[] = coarse.map(() => null);
  const members = new Map<number | string, number[]>();
  coarse.forEach((c, i) => {
    if (!c && !fine[i]) return;
    const key = groups[i] ?? `alone:${i}`;
    (members.get(key) ?? members.set(key, []).get(key)!).push(i);
  });
  for (const list of members.values()) {
    const allFine = list.every((i) => fine[i]);
    const signals = list.map((i) =>
      allFine || !coarse[i] ? fine[i]! : { ...coarse[i], ...(fine[i]?.detail && { detail: fine[i].detail }) },
    );
    flawsInGroup(signals).forEach((f, k) => (flaws[list[k]!] = f));
  }
  return flaws;
}
