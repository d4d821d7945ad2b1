/**
 * The retention sweep: a triage that ended more than the retention ago loses its stored photos, then its
 * records. Storage goes first and the records only once storage succeeded, so that nothing is orphaned: a
 * triage whose photos could not be removed stays listed and is tried again at the next sweep. With a ledger,
 * a triage that served nothing is refunded first (once: a refund that failed as it ended is made here), and
 * one whose refund fails now is likewise kept for the next sweep.
 */
import type { Logger } from 'pino';
import { storedObjects, type TriageStore } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import type { CreditLedger } from '@triage/db';
import { refundUnserved } from './refunds.js';

export interface SweepResult {
  removed: number;
  /** Left for the next sweep: storage refused, or the ledger did. */
  failed: number;
}

/** Triages handled per sweep at most; a backlog is worked off over several sweeps. */
const SWEEP_BATCH = 200;

export async function sweepExpired(
  deps: { store: TriageStore; storage: StorageDriver; log: Logger; credits?: CreditLedger },
  now = Date.now(),
): Promise<SweepResult> {
  const { store, storage, log } = deps;
  if (store.retentionSeconds <= 0) return { removed: 0, failed: 0 };
  const ids = await store.finishedBefore(now - store.retentionSeconds * 1000, SWEEP_BATCH);
  const result: SweepResult = { removed: 0, failed: 0 };
  for (const triageId of ids) {
    const meta = await store.meta(triageId);
    if (!meta) {
      await store.forget(triageId, '');
      continue;
    }
    try {
      await refundUnserved(deps, triageId);
    } catch (err) {
      result.failed++;
      log.warn({ triageId, err: (err as Error).message }, 'retention: could not refund the triage; will retry');
      continue;
    }
    try {
      await storage.remove(meta.bucket, await storedObjects(store, meta));
    } catch (err) {
      result.failed++;
      log.warn({ triageId, err: (err as Error).message }, 'retention: could not remove stored photos; will retry');
      continue;
    }
    await store.forget(triageId, meta.userId);
    result.removed++;
  }
  if (ids.length > 0) log.info(result, 'retention sweep');
  return result;
}
