/** A storage outage on a triage's record, against real Redis: the waits, the status line, a deleted triage. */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { OFFLINE_PROFILE } from '@triage/core';
import { allKeys, deleteKeysUnder, prepareTriage, redisConnection, TriageStore } from '@triage/queue';
import { endOutage, notePause, outageExpired, outageState, type OutagePolicy } from './outage.js';

const redis = redisConnection(
  { kind: 'single', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', explicit: true },
  'worker',
);
const prefix = `test-outage-${randomUUID().slice(0, 8)}`;
const store = new TriageStore(redis, { prefix, retentionSeconds: 60 });
const policy: OutagePolicy = { waitMs: 2_000, maxWaitMs: 5_000, limitMs: 60_000 };

afterAll(async () => {
  await deleteKeysUnder(redis, prefix);
  redis.disconnect();
});

async function created(): Promise<string> {
  const triageId = randomUUID();
  const { request } = prepareTriage(
    { triageId, userId: 'u', bucket: 'b', photos: [{ name: 'a.jpg', path: 'u/a.jpg' }] },
    OFFLINE_PROFILE,
  );
  await store.create(request, 1);
  return triageId;
}

describe('storage outage record', () => {
  it('doubles the wait up to the longest, counts down to the limit, and shows why in the status until it ends', async () => {
    const id = await created();
    const t0 = 1_000_000;
    expect(await notePause(store, id, 'ECONNREFUSED', policy, t0)).toEqual({
      waitMs: 2000,
      line: 'storage unavailable (ECONNREFUSED): waiting 2 s before try 2; photos fail with this reason if it lasts 60 s more',
    });
    expect((await notePause(store, id, 'ECONNREFUSED', policy, t0 + 2_000)).waitMs).toBe(4000);
    const third = await notePause(store, id, 'timeout', policy, t0 + 6_250);
    expect(third).toEqual({
      waitMs: 5000,
      line: 'storage unavailable (timeout): waiting 5 s before try 4; photos fail with this reason if it lasts 54 s more',
    });
    const state = await outageState(store, id);
    expect(state).toEqual({ since: t0, pauses: 3 });
    expect(outageExpired(state, policy, t0 + 59_999)).toBe(false);
    expect(outageExpired(state, policy, t0 + 60_000)).toBe(true);
    expect((await store.status(id))?.error_message).toBe(third.line);
    await endOutage(store, id);
    expect(await outageState(store, id)).toBeNull();
    expect((await store.status(id))?.error_message).toBeNull();
  });

  it('writes nothing for a triage deleted meanwhile: no orphan hash, and no wait', async () => {
    const id = await created();
    expect((await notePause(store, id, 'ECONNREFUSED', { ...policy, waitMs: 250 })).line).toMatch(
      /: waiting 0\.3 s before try 2;/,
    );
    await store.forget(id, 'u');
    expect(await redis.exists(...allKeys(prefix, id))).toBe(0);
    const pause = await notePause(store, id, 'ECONNREFUSED', policy);
    expect(pause.waitMs).toBe(0);
    expect(pause.line).toMatch(/no longer exists/);
    expect(await redis.exists(...allKeys(prefix, id))).toBe(0);
    expect(await outageState(store, id)).toBeNull();
  });
});
