/** The grids of a whole job, fixed when it is accepted so that a resumed job sees exactly the same grids. */
import {
  capacity,
  DEFAULT_LAYOUTS,
  gridStarts,
  planGeometry,
  splitIntoGrids,
  type GridGeometry,
  type Pass,
  type PassLayout,
  type VisionProfile,
} from './geometry.js';
import { coarsePercent, picksForGrid } from './target.js';

export interface GridPlan {
  profile: VisionProfile;
  coarse: GridGeometry;
  fine: GridGeometry;
  /** Photos per coarse grid, in order. */
  coarseSizes: number[];
}

export function planTriage(
  profile: VisionProfile,
  total: number,
  layouts: Partial<Record<Pass, PassLayout>> = {},
): GridPlan {
  const coarse = planGeometry(profile, layouts.coarse ?? DEFAULT_LAYOUTS.coarse);
  const fine = planGeometry(profile, layouts.fine ?? DEFAULT_LAYOUTS.fine);
  return { profile, coarse, fine, coarseSizes: splitIntoGrids(total, capacity(coarse)) };
}

/**
 * Grids the job will most likely send: every coarse grid, plus the fine grids for the survivors the coarse
 * pass is asked to keep. The true fine count is known once the coarse pass ends.
 */
export function estimateGrids(plan: GridPlan, percent: number, passes: 1 | 2): number {
  const total = plan.coarseSizes.reduce((a, b) => a + b, 0);
  if (passes === 1 || total === 0) return plan.coarseSizes.length;
  const starts = gridStarts(plan.coarseSizes);
  const survivors = plan.coarseSizes.reduce((sum, n, g) => sum + picksForGrid(coarsePercent(percent), n, starts[g]), 0);
  return plan.coarseSizes.length + Math.ceil(survivors / capacity(plan.fine));
}
