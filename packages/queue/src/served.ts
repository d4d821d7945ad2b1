/**
 * Whether a finished triage served the user what they paid for. A failed job, a cancel before any grid was
 * judged, and a job whose grids all went unreviewed (every call to the provider failed) did not: their credits
 * are refunded (once, by whoever sees the end first: the worker, or the API's DELETE).
 */
import type { GridRecord } from './contract.js';
import type { TriageMeta } from './store.js';

export function unservedReason(
  meta: Pick<TriageMeta, 'status'>,
  grids: readonly Pick<GridRecord, 'reviewed'>[],
): string | null {
  const judged = grids.some((g) => g.reviewed);
  if (meta.status === 'failed') return 'triage failed';
  if (meta.status === 'cancelled' && !judged) return 'cancelled before the first grid was judged';
  if (meta.status === 'completed' && !judged) return 'no grid could be reviewed';
  return null;
}
