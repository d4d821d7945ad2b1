/**
 * A storage outage pauses a triage instead of failing its photos: the grid whose reads met the outage is
 * handed back unrecorded and the job waits, with a growing delay, then tries again. The outage is kept on
 * the triage's record (when it began, how many waits so far) so that any worker taking the job next knows
 * it, and the status shows it in `error_message` while the job is still processing. Once it has lasted
 * longer than the limit, the next try reads with `outage: 'fail'`: the photos it hits fail with the reason.
 */
import type { TriageStore } from '@triage/queue';

export interface OutagePolicy {
  /** How long an outage may last before photos fail instead of the job waiting, ms. */
  limitMs: number;
  /** First wait, doubling up to `maxWaitMs`. */
  waitMs: number;
  maxWaitMs: number;
}

export const DEFAULT_OUTAGE_POLICY: OutagePolicy = { limitMs: 30 * 60_000, waitMs: 2_000, maxWaitMs: 60_000 };

export interface OutageState {
  since: number;
  pauses: number;
}

const SINCE = 'storage_outage_since';
const PAUSES = 'storage_pauses';

export async function outageState(store: TriageStore, triageId: string): Promise<OutageState | null> {
  const [since, pauses] = await store.redis.hmget(store.keys(triageId).meta, SINCE, PAUSES);
  return since ? { since: Number(since), pauses: Number(pauses ?? 0) } : null;
}

/** Whether the outage has outlasted the limit: then photos fail rather than wait. */
export function outageExpired(state: OutageState | null, policy: OutagePolicy, now = Date.now()): boolean {
  return state !== null && now - state.since >= policy.limitMs;
}

/** Records one more wait and says how long it is; the status tells the client why the job is waiting. */
export async function notePause(store: TriageStore, triageId: string, reason: string, policy: OutagePolicy, now = Date.now()): Promise<{ waitMs: number; line: string }> {
  const key = store.keys(triageId).meta;
  await store.redis.hsetnx(key, SINCE, String(now));
  const pauses = await store.redis.hincrby(key, PAUSES, 1);
  const since = Number((await store.redis.hget(key, SINCE)) ?? now);
  const waitMs = Math.min(policy.maxWaitMs, policy.waitMs * 2 ** Math.min(20, pauses - 1));
  const left = Math.max(0, Math.round((policy.limitMs - (now - since)) / 1000));
  const line =
    `storage unavailable (${reason}): waiting ${Math.round(waitMs / 100) / 10} s before try ${pauses + 1}; ` +
    `photos fail with this reason if it lasts ${left} s more`;
  await store.redis.hset(key, 'error_message', line);
  await store.publish(triageId);
  return { waitMs, line };
}

/** The outage is over for this triage: its record and status say so. */
export async function endOutage(store: TriageStore, triageId: string): Promise<void> {
  const removed = await store.redis.hdel(store.keys(triageId).meta, SINCE, PAUSES, 'error_message');
  if (removed > 0) await store.publish(triageId);
}
