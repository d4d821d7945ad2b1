/**
 * Credits, by the old service's business rule, charged through a CreditLedger (@triage/db): the PostgreSQL
 * ledger when DATABASE_URL is set, otherwise NO_LEDGER (the cost is reported as `credits_required` and
 * nothing is deducted). Charges are keyed by the job and by each photo of a proceed, so a retried request
 * never charges twice; a charge is settled once its work is queued, and refunded when it was not.
 */
import type { Queue } from 'bullmq';
import { InsufficientCreditsError, NOT_QUEUED, type ChargeKind, type CreditLedger, type WorkState } from '@triage/db';
import type { HandOffJobData, TriageStore } from '@triage/queue';
import { HttpError } from './errors.js';

export { NO_LEDGER, type CreditLedger } from '@triage/db';

/** Cost of a triage by photo count: ≤100 → 1, ≤500 → 3, ≤1000 → 5, ≤2000 → 8, else 10. */
export function triageCost(photos: number): number {
  if (photos <= 100) return 1;
  if (photos <= 500) return 3;
  if (photos <= 1000) return 5;
  if (photos <= 2000) return 8;
  return 10;
}

/** `proceed` costs one credit per photo handed on. */
export function proceedCost(photos: number): number {
  return photos;
}

/** Charges, answering 402 with the old service's message when the balance does not cover it. */
export async function chargeOr402(ledger: CreditLedger, ...args: Parameters<CreditLedger['charge']>): Promise<number> {
  try {
    return await ledger.charge(...args);
  } catch (err) {
    if (err instanceof InsufficientCreditsError) throw new HttpError(402, err.message);
    throw err;
  }
}

/**
 * After queueing failed: refunds the charge when its work is certainly not queued (the check answers "no
 * such job"); when even that cannot be known (Redis away), the charge stays held and the reconciler decides.
 */
export async function refundIfNotQueued(
  ledger: CreditLedger,
  keys: readonly string[],
  exists: () => Promise<boolean>,
): Promise<void> {
  if (keys.length === 0 || !ledger.enabled) return;
  const queued = await exists().catch(() => null);
  // Only held charges: a settled one paid for work that was queued, whatever this request found.
  if (queued === false) await ledger.refund(keys, NOT_QUEUED, true);
}

/**
 * Test-only fault injection (NODE_ENV=test): the process kills itself (SIGKILL, no cleanup) at the named
 * point, to prove that a crash between charge and queue leaves no charge without its job.
 */
export function crashPoint(name: 'after-charge' | 'after-enqueue'): void {
  if (process.env.NODE_ENV === 'test' && process.env.TRIAGE_TEST_CRASH_AT === name)
    process.kill(process.pid, 'SIGKILL');
}

/** What the reconciler needs to know of a held charge's work: does its triage, or its hand-off job, exist? */
export function workStateOf(store: TriageStore, handoffQueue: Queue<HandOffJobData>) {
  return async (kind: ChargeKind, ref: string): Promise<WorkState> => {
    if (kind === 'triage') return (await store.meta(ref)) ? 'queued' : 'absent';
    const job = await handoffQueue.getJob(ref);
    if (!job) return 'absent';
    return (await job.isCompleted()) || (await job.isFailed()) ? 'finished' : 'queued';
  };
}

/**
 * Resolves held charges now and then (and once at start): each API process runs it; a refund happens once
 * whichever process gets there first. Returns the stop function.
 */
export function startReconciler(
  ledger: CreditLedger,
  holdTimeoutMs: number,
  workState: (kind: ChargeKind, ref: string) => Promise<WorkState>,
  log: { info(o: object, m: string): void; warn(o: object, m: string): void },
): () => void {
  // Never rejects: a failed round is logged and the next tick tries again, so nothing escapes the timer as an
  // unhandled rejection (which would end the process).
  const run = async (): Promise<void> => {
    let r: Awaited<ReturnType<CreditLedger['reconcile']>>;
    try {
      r = await ledger.reconcile(holdTimeoutMs, workState);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn({ err: message }, 'credits: could not reconcile held charges; will retry');
      return;
    }
    if (r.refunded > 0 || r.settled > 0) log.info(r, 'credits: resolved charges held past CREDIT_HOLD_TIMEOUT_MS');
  };
  void run();
  const timer = setInterval(() => void run(), Math.max(100, Math.min(30_000, Math.floor(holdTimeoutMs / 2))));
  timer.unref();
  return () => clearInterval(timer);
}
