/**
 * A triage that ended without serving its user (failed, cancelled before any grid was judged, every grid
 * unreviewed) gives its charge back. Keyed by the triage, so whoever asks first refunds and every later ask
 * (a redelivered step, the retention sweep) finds nothing left to give: safe to ask again and again. The
 * worker asks as a triage ends; the retention sweep asks once more before forgetting it, so a refund that
 * failed then (the database away) is not lost.
 */
import type { Logger } from 'pino';
import { triageChargeKey, type CreditLedger } from '@triage/db';
import { unservedReason, type TriageStore } from '@triage/queue';

/** Refunds the triage if it served nothing; resolves to the credits given back now. Throws when the ledger does. */
export async function refundUnserved(
  deps: { store: TriageStore; credits?: CreditLedger; log: Logger },
  triageId: string,
): Promise<number> {
  const { store, credits, log } = deps;
  if (!credits?.enabled) return 0;
  const meta = await store.meta(triageId);
  if (!meta) return 0;
  const reason = unservedReason(meta, await store.gridRecords(triageId));
  if (!reason) return 0;
  const refunded = await credits.refund([triageChargeKey(triageId)], reason);
  if (refunded > 0) log.info({ triageId, refunded, reason }, 'credits refunded');
  return refunded;
}
