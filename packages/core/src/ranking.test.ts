import { describe, expect, it } from 'vitest';
import { rankPhotos, selectFinal, survivesCoarse, survivesFine, type PhotoVerdict } from './ranking.js';

function v(index: number, fields: Partial<Omit<PhotoVerdict, 'index'>> = {}): PhotoVerdict {
  return {
    index,
    failed: false,
    quality: null,
    coarseVotes: 0,
    coarseReviewed: true,
    fineVotes: null,
    fineReviewed: true,
    ...fields,
  };
}

const order = (verdicts: readonly PhotoVerdict[]): number[] => rankPhotos(verdicts).map((p) => p.index);

describe('survivesCoarse / survivesFine', () => {
  it('survives the coarse pass when picked or not reviewed', () => {
    expect(survivesCoarse(v(0, { coarseVotes: 1 }))).toBe(true);
    expect(survivesCoarse(v(0, { coarseVotes: 2 }))).toBe(true);
    expect(survivesCoarse(v(0, { coarseVotes: 0 }))).toBe(false);
    expect(survivesCoarse(v(0, { coarseVotes: 0, coarseReviewed: false }))).toBe(true);
  });

  it('survives the fine pass when picked or not reviewed there', () => {
    expect(survivesFine(v(0, { coarseVotes: 1, fineVotes: 1 }))).toBe(true);
    expect(survivesFine(v(0, { coarseVotes: 1, fineVotes: 0 }))).toBe(false);
    expect(survivesFine(v(0, { coarseVotes: 1, fineVotes: 0, fineReviewed: false }))).toBe(true);
    expect(survivesFine(v(0, { coarseVotes: 1, fineVotes: null }))).toBe(false);
  });

  it('never lets a failed photo survive', () => {
    expect(survivesCoarse(v(0, { failed: true, coarseVotes: 3 }))).toBe(false);
    expect(survivesCoarse(v(0, { failed: true, coarseReviewed: false }))).toBe(false);
    expect(survivesFine(v(0, { failed: true, coarseVotes: 1, fineVotes: 2 }))).toBe(false);
  });
});

describe('rankPhotos', () => {
  it('puts fine votes before coarse votes', () => {
    const verdicts = [
      v(0, { coarseVotes: 3, fineVotes: 0, quality: 1 }),
      v(1, { coarseVotes: 1, fineVotes: 1, quality: 0 }),
      v(2, { coarseVotes: 1, fineVotes: 2, quality: 0 }),
    ];
    expect(order(verdicts)).toEqual([2, 1, 0]);
  });

  it('puts coarse votes before quality', () => {
    const verdicts = [
      v(0, { coarseVotes: 1, quality: 0.9 }),
      v(1, { coarseVotes: 2, quality: 0.1 }),
      v(2, { coarseVotes: 0, quality: 1 }),
    ];
    expect(order(verdicts)).toEqual([1, 0, 2]);
  });

  it('puts quality before input order', () => {
    const verdicts = [v(0, { quality: 0.2 }), v(1, { quality: 0.8 }), v(2, { quality: 0.5 }), v(3, { quality: null })];
    expect(order(verdicts)).toEqual([1, 2, 0, 3]);
  });

  it('breaks full ties by input order (stable)', () => {
    const verdicts = [
      v(4, { coarseVotes: 1 }),
      v(2, { coarseVotes: 1 }),
      v(9, { coarseVotes: 1 }),
      v(0, { coarseVotes: 1 }),
    ];
    expect(order(verdicts)).toEqual([0, 2, 4, 9]);
  });

  it('ranks a photo the fine pass saw, even rejected, above one it never saw', () => {
    const verdicts = [v(0, { coarseVotes: 0, quality: 1 }), v(1, { coarseVotes: 1, fineVotes: 0, quality: 0 })];
    expect(order(verdicts)).toEqual([1, 0]);
  });

  it('ranks an unreviewed photo between picked and rejected ones (coarse)', () => {
    const verdicts = [
      v(0, { coarseVotes: 0, quality: 1 }),
      v(1, { coarseVotes: 0, coarseReviewed: false, quality: 0 }),
      v(2, { coarseVotes: 1, quality: 0 }),
    ];
    expect(order(verdicts)).toEqual([2, 1, 0]);
  });

  it('ranks an unreviewed photo between picked and rejected ones (fine)', () => {
    const verdicts = [
      v(0, { coarseVotes: 1, fineVotes: 0, quality: 1 }),
      v(1, { coarseVotes: 1, fineVotes: 0, fineReviewed: false, quality: 0 }),
      v(2, { coarseVotes: 1, fineVotes: 1, quality: 0 }),
    ];
    expect(order(verdicts)).toEqual([2, 1, 0]);
  });

  it('never ranks a failed photo', () => {
    const verdicts = [v(0, { failed: true, coarseVotes: 5, fineVotes: 5, quality: 1 }), v(1), v(2, { failed: true })];
    expect(order(verdicts)).toEqual([1]);
  });

  it('does not modify its input', () => {
    const verdicts = [v(0), v(1, { coarseVotes: 1 })];
    const copy = structuredClone(verdicts);
    rankPhotos(verdicts);
    expect(verdicts).toEqual(copy);
  });
});

describe('selectFinal', () => {
  it('keeps the fine picks of a two-pass job, best first, capped at keep', () => {
    const verdicts = [
      v(0, { coarseVotes: 1, fineVotes: 1, quality: 0.2 }),
      v(1, { coarseVotes: 0 }),
      v(2, { coarseVotes: 1, fineVotes: 2, quality: 0.1 }),
      v(3, { coarseVotes: 1, fineVotes: 0, quality: 0.9 }),
      v(4, { coarseVotes: 2, fineVotes: 1, quality: 0.1 }),
      v(5, { coarseVotes: 1, fineVotes: 1, quality: 0.9 }),
    ];
    const all = selectFinal(verdicts, 10, 2);
    expect(all.selected).toEqual([2, 4, 5, 0]);
    expect(all.fallback).toBe(false);
    const capped = selectFinal(verdicts, 2, 2);
    expect(capped.selected).toEqual([2, 4]);
    expect(capped.fallback).toBe(false);
  });

  it('selects from the coarse picks in a one-pass job', () => {
    const verdicts = [
      v(0, { coarseVotes: 0, quality: 1 }),
      v(1, { coarseVotes: 1 }),
      v(2, { coarseVotes: 2 }),
      v(3, { coarseVotes: 1, quality: 0.5 }),
    ];
    const result = selectFinal(verdicts, 10, 1);
    expect(result.selected).toEqual([2, 3, 1]);
    expect(result.fallback).toBe(false);
    expect(selectFinal(verdicts, 1, 1).selected).toEqual([2]);
  });

  it('ignores fine votes in a one-pass job', () => {
    const verdicts = [v(0, { coarseVotes: 1, fineVotes: 0 }), v(1, { coarseVotes: 0, fineVotes: 0 })];
    expect(selectFinal(verdicts, 5, 1).selected).toEqual([0]);
  });

  it('keeps photos a pass could not review', () => {
    const verdicts = [
      v(0, { coarseVotes: 0 }),
      v(1, { coarseVotes: 0, coarseReviewed: false }),
      v(2, { coarseVotes: 1 }),
    ];
    const result = selectFinal(verdicts, 5, 1);
    expect(result.selected).toEqual([2, 1]);
    expect(result.fallback).toBe(false);
  });

  it('falls back to the ranking when the fine pass picked nothing', () => {
    const verdicts = [
      v(0, { coarseVotes: 0, quality: 1 }),
      v(1, { coarseVotes: 1, fineVotes: 0, quality: 0.3 }),
      v(2, { coarseVotes: 2, fineVotes: 0, quality: 0.1 }),
      v(3, { coarseVotes: 1, fineVotes: 0, quality: 0.8 }),
    ];
    const result = selectFinal(verdicts, 2, 2);
    expect(result.fallback).toBe(true);
    expect(result.selected).toEqual([2, 3]);
  });

  it('falls back to the ranking when a one-pass job picked nothing', () => {
    const verdicts = [v(0, { quality: 0.1 }), v(1, { quality: 0.9 }), v(2, { quality: 0.5 })];
    const result = selectFinal(verdicts, 2, 1);
    expect(result.fallback).toBe(true);
    expect(result.selected).toEqual([1, 2]);
  });

  it('falls back when a two-pass job never reached the fine pass (coarse kept nothing)', () => {
    const verdicts = [v(0, { quality: 0.4 }), v(1, { quality: 0.6 })];
    const result = selectFinal(verdicts, 1, 2);
    expect(result.fallback).toBe(true);
    expect(result.selected).toEqual([1]);
  });

  it('never selects a failed photo, even in a fallback', () => {
    const verdicts = [
      v(0, { failed: true, quality: 1, coarseVotes: 3, fineVotes: 3 }),
      v(1, { quality: 0.1 }),
      v(2, { failed: true, quality: 1 }),
    ];
    const result = selectFinal(verdicts, 3, 2);
    expect(result.selected).toEqual([1]);
    expect(result.fallback).toBe(true);
    const picked = selectFinal([v(0, { failed: true, coarseVotes: 2 }), v(1, { coarseVotes: 1 })], 5, 1);
    expect(picked.selected).toEqual([1]);
    expect(picked.fallback).toBe(false);
  });

  it('selects nothing, without a fallback, when every photo failed', () => {
    const result = selectFinal([v(0, { failed: true }), v(1, { failed: true })], 3, 2);
    expect(result.selected).toEqual([]);
    expect(result.fallback).toBe(false);
    expect(result.ranks.size).toBe(0);
  });

  it('gives every readable photo a 1-based rank by index', () => {
    const verdicts = [
      v(0, { coarseVotes: 0, quality: 0.5 }),
      v(1, { failed: true }),
      v(2, { coarseVotes: 1, fineVotes: 1 }),
      v(3, { coarseVotes: 1, fineVotes: 0 }),
    ];
    const { ranks } = selectFinal(verdicts, 1, 2);
    expect([...ranks.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [0, 3],
      [2, 1],
      [3, 2],
    ]);
    expect(ranks.has(1)).toBe(false);
  });

  it('never selects more than keep, nor duplicates', () => {
    const verdicts = Array.from({ length: 50 }, (_, i) =>
      v(i, { coarseVotes: i % 3, fineVotes: i % 3 ? i % 2 : null, quality: ((i * 7) % 10) / 10 }),
    );
    for (const keep of [0, 1, 5, 13, 50, 100]) {
      for (const passes of [1, 2] as const) {
        const { selected } = selectFinal(verdicts, keep, passes);
        expect(selected.length).toBeLessThanOrEqual(keep);
        expect(new Set(selected).size).toBe(selected.length);
      }
    }
  });
});
