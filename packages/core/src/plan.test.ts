import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LAYOUTS,
  STANDARD_PROFILE,
  canvasSide,
  capacity,
  planGeometry,
  visualTokens,
  type VisionProfile,
} from './geometry.js';
import { estimateGrids, planTriage } from './plan.js';
import { coarsePercent, picksForGrid } from './target.js';

const HIGH_RES: VisionProfile = {
  id: 'high-res',
  maxEdge: 2576,
  maxTokens: 4784,
  patch: 28,
  inputPerMTok: 5,
  outputPerMTok: 25,
};

describe('planTriage', () => {
  it('plans 2000 photos into balanced coarse grids that sum to the total', () => {
    const plan = planTriage(STANDARD_PROFILE, 2000);
    expect(plan.profile).toBe(STANDARD_PROFILE);
    expect(plan.coarse).toEqual(planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse));
    expect(plan.fine).toEqual(planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.fine));
    expect(plan.coarseSizes.reduce((a, b) => a + b, 0)).toBe(2000);
    expect(plan.coarseSizes).toHaveLength(17);
    for (const size of plan.coarseSizes) expect(size).toBeLessThanOrEqual(capacity(plan.coarse));
    expect(Math.max(...plan.coarseSizes) - Math.min(...plan.coarseSizes)).toBeLessThanOrEqual(1);
  });

  it('sums to the total for many job sizes and both profiles', () => {
    for (const profile of [STANDARD_PROFILE, HIGH_RES]) {
      for (const total of [1, 2, 16, 119, 120, 121, 500, 1000, 1999, 2000]) {
        const plan = planTriage(profile, total);
        expect(plan.coarseSizes.reduce((a, b) => a + b, 0)).toBe(total);
        expect(plan.coarseSizes.length).toBe(Math.ceil(total / capacity(plan.coarse)));
        for (const g of [plan.coarse, plan.fine]) {
          expect(g.width).toBeLessThanOrEqual(canvasSide(profile));
          expect(g.height).toBeLessThanOrEqual(canvasSide(profile));
          expect(visualTokens(g.width, g.height, profile.patch)).toBeLessThanOrEqual(profile.maxTokens);
        }
      }
    }
  });

  it('plans no grids for no photos', () => {
    expect(planTriage(STANDARD_PROFILE, 0).coarseSizes).toEqual([]);
  });

  it('honours layout overrides', () => {
    const plan = planTriage(STANDARD_PROFILE, 100, {
      coarse: { minThumb: 84, rows: 5, cols: 5 },
      fine: { minThumb: 224, rows: 2, cols: 3 },
    });
    expect(capacity(plan.coarse)).toBe(25);
    expect(capacity(plan.fine)).toBe(6);
    expect(plan.coarseSizes).toEqual([25, 25, 25, 25]);
  });
});

describe('estimateGrids', () => {
  const plan = planTriage(STANDARD_PROFILE, 2000);

  it('counts only the coarse grids for one pass', () => {
    expect(estimateGrids(plan, 10, 1)).toBe(17);
  });

  it('adds the fine grids for the survivors the coarse pass is asked to keep (2000 photos at 10%)', () => {
    // 11 grids of 118 and 6 of 117, each asked for 25%: 11·30 + 6·29 = 504 survivors, in grids of 16.
    const survivors = plan.coarseSizes.reduce((s, n) => s + picksForGrid(coarsePercent(10), n), 0);
    expect(survivors).toBe(504);
    expect(estimateGrids(plan, 10, 2)).toBe(17 + 32);
  });

  it('grows with the target in two-pass jobs and caps the coarse share at 50%', () => {
    expect(estimateGrids(plan, 2, 2)).toBeLessThan(estimateGrids(plan, 10, 2));
    // 20% and 40% both ask for half of each coarse grid.
    expect(estimateGrids(plan, 20, 2)).toBe(estimateGrids(plan, 40, 2));
    expect(estimateGrids(plan, 20, 2)).toBe(17 + Math.ceil(1000 / 16));
  });

  it('handles small jobs', () => {
    const small = planTriage(STANDARD_PROFILE, 10);
    expect(estimateGrids(small, 10, 1)).toBe(1);
    // 25% of 10 → 3 survivors (round 2.5 up) → 1 fine grid.
    expect(estimateGrids(small, 10, 2)).toBe(2);
    const one = planTriage(STANDARD_PROFILE, 1);
    expect(estimateGrids(one, 10, 2)).toBe(2);
  });

  it('is zero for no photos', () => {
    const empty = planTriage(STANDARD_PROFILE, 0);
    expect(estimateGrids(empty, 10, 1)).toBe(0);
    expect(estimateGrids(empty, 10, 2)).toBe(0);
  });
});
