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

/**
 * Keeps at most `keep` photos: those the last pass picked (or could not review), best first. When the last
 * pass picked nothing at all, falls back to the top of the ranking rather than returning an empty result.
 */
export function selectFinal(verdicts: readonly PhotoVerdict[], keep: number, passes: 1 | 2): FinalSelection {
  const ranked = rankPhotos(verdicts);
  const ranks = new Map(ranked.map((v, i) => [v.index, i + 1]));
  const ranFine = passes === 2 && verdicts.some((v) => v.fineVotes !== null);
  const kept = ranked.filter(ranFine ? survivesFine : survivesCoarse);
  const fallback = kept.length === 0 && ranked.length > 0;
  const selected = (fallback ? ranked : kept).slice(0, keep).map((v) => v.index);
  return { selected, fallback, ranks };
}
