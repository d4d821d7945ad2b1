/**
 * Credits around the routes that hand picks to scoring and forget a triage: proceed charges one credit per
 * photo not charged yet (keyed by triage and photo, so a double click or a retry charges nothing more) and
 * queues one hand-off job whose id the photos determine; DELETE refunds a triage that served nothing.
 */
import type { Queue } from 'bullmq';
import { proceedChargeKey, triageChargeKey } from '@triage/db';
import {
  handOff,
  handOffJobId,
  unservedReason,
  type HandOffJobData,
  type SelectedPhoto,
  type TriageMeta,
  type TriageStore,
} from '@triage/queue';
import { chargeOr402, proceedCost, refundIfNotQueued, type CreditLedger } from './credits.js';
import { withDeadline } from './errors.js';

interface Deps {
  store: TriageStore;
  credits: CreditLedger;
  handoffQueue: Queue<HandOffJobData>;
}

export async function proceedWithCredits(
  deps: Deps,
  userId: string,
  bucket: string,
  triageId: string,
  chosen: readonly SelectedPhoto[],
) {
  const photos = chosen.map((p) => ({ id: String(p.index), name: p.name, path: p.path }));
  const jobId = handOffJobId(
    triageId,
    photos.map((p) => p.id),
  );
  const keys = photos.map((p) => proceedChargeKey(triageId, p.id));
  const deducted = await chargeOr402(
    deps.credits,
    userId,
    'proceed',
    jobId,
    keys.map((key) => ({ key, amount: 1 })),
  );
  try {
    await withDeadline(handOff(deps.handoffQueue, { triageId, userId, bucket, photos }, jobId), 5000, 'handing off');
  } catch (err) {
    await refundIfNotQueued(deps.credits, keys, async () => Boolean(await deps.handoffQueue.getJob(jobId)));
    throw err;
  }
  return { queued_count: photos.length, credits_deducted: deducted, credits_required: proceedCost(photos.length) };
}

/** A triage forgotten before it served the user (cancelled before any grid was judged, failed): refunded once. */
export async function refundUnserved(deps: Deps, triageId: string, before: TriageMeta): Promise<void> {
  if (!deps.credits.enabled) return;
  const meta = (await deps.store.meta(triageId)) ?? before;
  const ended = meta.status === 'completed' || meta.status === 'failed' || meta.status === 'cancelled';
  const reason = unservedReason({ status: ended ? meta.status : 'cancelled' }, await deps.store.gridRecords(triageId));
  if (reason) await deps.credits.refund([triageChargeKey(triageId)], reason);
}
