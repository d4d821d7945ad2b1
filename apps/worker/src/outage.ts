/**
 * A storage outage pauses a triage instead of failing its photos: the grid whose reads met the outage is
 * handed back unrecorded and the job waits, with a growing delay, then tries again. The outage is kept on
 * the triage's record (when it began, how many waits so far) so that any worker taking the job next knows
 * it, and the status shows it in `error_message` while the job is still processing. Once it has lasted
 * longer than the limit, the next try reads with `outage: 'fail'`: the photos it hits fail with the reason,
 * until storage answers again (a grid's photos served, or a probe), which ends the outage.
 */
import type { OutageState, PausePolicy, TriageStore } from '@triage/queue';
import { WORKER_SETTINGS } from './config.js';

export type { OutageState };

/** How long an outage may last before photos fail instead of the job waiting, and how long each wait is (ms). */
export type OutagePolicy = PausePolicy;

export const DEFAULT_OUTAGE_POLICY: OutagePolicy = {
  limitMs: WORKER_SETTINGS.storageOutageLimitMs.default,
  waitMs: 2_000,
  maxWaitMs: 60_000,
};

export async function outageState(store: TriageStore, triageId: string): Promise<OutageState | null> {
  return store.outage(triageId);
}

/** Whether the outage has outlasted the limit: then photos fail rather than wait. */
export function outageExpired(state: OutageState | null, policy: OutagePolicy, now = Date.now()): boolean {
  return state !== null && now - state.since >= policy.limitMs;
}

/**
 * Records one more wait and says how long it is; the status tells the client why the job is waiting (one
 * script: see the store's notePause). A triage deleted meanwhile is not recreated, and nothing is waited for.
 */
export async function notePause(
  store: TriageStore,
  triageId: string,
  reason: string,
  policy: OutagePolicy,
  now = Date.now(),
): Promise<{ waitMs: number; line: string }> {
  const pause = await store.notePause(triageId, reason, policy, now);
  return (
    pause ?? { waitMs: 0, line: `storage unavailable (${reason}); triage ${triageId} no longer exists: not waiting` }
  );
}

/** The outage is over for this triage: its record and status say so. */
export async function endOutage(store: TriageStore, triageId: string): Promise<void> {
  await store.endOutage(triageId);
}
