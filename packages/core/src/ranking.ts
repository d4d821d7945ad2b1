/**
 * The final cut. Instead of keeping "the first K" of a set, every readable photo is ranked by what the
 * passes said of it (fine votes, then coarse votes) and by cheap quality signals measured on its thumbnail.
 */

/** What the job learned about one photo. Votes count the models that picked it in that pass. */
export interface PhotoVerdict {
  index: number;
  /** Could not be read: never selected. */
  failed: boolean;
  /** 0..1 from the thumbnail's sharpness and exposure; null when unknown. */
  quality: number | null;
  coarseVotes: number;
  /** False when every model call for its coarse grid failed: it survives the pass unreviewed. */
  coarseReviewed: boolean;
  /** Null when the photo was not in the fine pass. */
  fineVotes: number | null;
  fineReviewed: boolean;
  /** A severe technical flaw (see flaws.ts): ranks below a clean photo with the same votes. */
  flawed?: boolean;
}

/** An unreviewed photo ranks between a picked and a rejected one: it was never judged, so it is not dropped. */
const UNREVIEWED = 0.5;

function passScore(votes: number | null, reviewed: boolean): number {
  if (votes === null) return -1;
  return reviewed ? votes : UNREVIEWED;
}

export function survivesCoarse(v: PhotoVerdict): boolean {
  return !v.failed && passScore(v.coarseVotes, v.coarseReviewed) > 0;
}

export function survivesFine(v: PhotoVerdict): boolean {
  return !v.failed && v.fineVotes !== null && passScore(v.fineVotes, v.fineReviewed) > 0;
}

/** Readable photos, best first: fine verdict, coarse verdict, quality, then input order (stable). */
export function rankPhotos(verdicts: readonly PhotoVerdict[]): PhotoVerdict[] {
  return verdicts
    .filter((v) => !v.failed)
    .sort(
      (a, b) =>
        passScore(b.fineVotes, b.fineReviewed) - passScore(a.fineVotes, a.fineReviewed) ||
        passScore(b.coarseVotes, b.coarseReviewed) - passScore(a.coarseVotes, a.coarseReviewed) ||
        Number(a.flawed ?? false) - Number(b.flawed ?? false) ||
        (b.quality ?? 0) - (a.quality ?? 0) ||
        a.index - b.index,
    );
}

export interface FinalSelection {
  /** Photo indexes, best first, at most K. */
  selected: number[];
  /** The last pass picked nothing, so the selection is the top of the ranking. */
  fallback: boolean;
  /** Every readable photo's rank (1 = best), by index. */
  ranks: Map<number, number>;
}

export interface SceneLimits {
  /** Each photo's near-duplicate group (null: alone), by index. */
  groups: readonly (number | null)[];
  /** Photos kept per group at most. */
  perGroup: number;
}

/**
 * Keeps at most `keep` photos: those the last pass picked (or could not review), best first. When the last
 * pass picked nothing at all, falls back to the top of the ranking rather than returning an empty result.
 * With `scenes`, at most `perGroup` photos of a near-duplicate group are kept, and a flawed photo never
 * displaces its group's clean twin: the twin (the best-ranked clean member) is kept in its place.
 */
export function selectFinal(
  verdicts: readonly PhotoVerdict[],
  keep: number,
  passes: 1 | 2,
  scenes?: SceneLimits,
): FinalSelection {
  const ranked = rankPhotos(verdicts);
  const ranks = new Map(ranked.map((v, i) => [v.index, i + 1]));
  const ranFine = passes === 2 && verdicts.some((v) => v.fineVotes !== null);
  const kept = ranked.filter(ranFine ? survivesFine : survivesCoarse);
  const fallback = kept.length === 0 && ranked.length > 0;
  const pool = fallback ? ranked : kept;
  const selected = scenes ? onePerScene(pool, ranked, keep, scenes) : pool.slice(0, keep).map((v) => v.index);
  return { selected, fallback, ranks };
}

function onePerScene(
  pool: readonly PhotoVerdict[],
  ranked: readonly PhotoVerdict[],
  keep: number,
  scenes: SceneLimits,
): number[] {
  const groupOf = (index: number) => scenes.groups[index] ?? null;
  const taken = new Map<number, number>();
  const chosen: number[] = [];
  const used = new Set<number>();
  for (const candidate of pool) {
    if (chosen.length >= keep) break;
    const group = groupOf(candidate.index);
    let pick = candidate.index;
    if (candidate.flawed && group !== null) {
      const twin = ranked.find((r) => groupOf(r.index) === group && !r.flawed && !used.has(r.index));
      if (twin) pick = twin.index;
    }
    if (used.has(pick) || (group !== null && (taken.get(group) ?? 0) >= scenes.perGroup)) continue;
    used.add(pick);
    chosen.push(pick);
    if (group !== null) taken.set(group, (taken.get(group) ?? 0) + 1);
  }
  return chosen;
}
