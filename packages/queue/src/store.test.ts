/**
 * The store's reads and writes that the API, the metrics and the worker's heartbeat go through (the Redis
 * layout is the store's alone): a user's jobs, a triage's owner and photos, worker heartbeats.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { OFFLINE_PROFILE } from '@triage/core';
import { userJobsKey } from './contract.js';
import { deleteKeysUnder, redisConnection } from './redis.js';
import { TriageStore } from './store.js';
import { prepareTriage } from './submit.js';

const redis = redisConnection(
  { kind: 'single', url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', explicit: true },
  'worker',
);
const prefix = `test-store-${randomUUID().slice(0, 8)}`;
const store = new TriageStore(redis, { prefix, retentionSeconds: 60 });

afterAll(async () => {
  await deleteKeysUnder(redis, prefix);
  redis.disconnect();
});

async function created(userId: string, photos = 3): Promise<string> {
  const triageId = randomUUID();
  const input = {
    triageId,
    userId,
    bucket: 'b',
    photos: Array.from({ length: photos }, (_, i) => ({ name: `p${i}.jpg`, path: `${userId}/p${i}.jpg` })),
  };
  const { request, estimatedGrids } = prepareTriage(input, OFFLINE_PROFILE);
  expect(await store.create(request, estimatedGrids)).toEqual({ kind: 'created' });
  return triageId;
}

describe('TriageStore', () => {
  it("lists a user's jobs with their progress, and drops the ids whose records are gone", async () => {
    const user = `u-${randomUUID()}`;
    const first = await created(user, 2);
    const second = await created(user, 5);
    const gone = await created(user);
    await store.start(second);
    await store.forget(gone, 'someone-else');
    const jobs = await store.userJobs(user);
    expect(jobs.map((j) => j.triageId).sort()).toEqual([first, second].sort());
    expect(jobs.find((j) => j.triageId === second)).toMatchObject({
      status: 'processing',
      phase: 'coarse_pass',
      total: 5,
      coarseDone: 0,
    });
    expect(jobs.find((j) => j.triageId === first)).toMatchObject({ status: 'pending', phase: null, total: 2 });
    // The forgotten one's entry is gone from the index, not just from the answer.
    expect((await store.userJobs(user)).map((j) => j.triageId).sort()).toEqual([first, second].sort());
    expect(await redis.zscore(userJobsKey(prefix, user), gone)).toBeNull();
  });

  it("reads a triage's owner and its photos in input order, and nothing for an unknown id", async () => {
    const id = await created('owner-a', 12);
    expect(await store.owner(id)).toBe('owner-a');
    expect(await store.owner('no-such-id')).toBeNull();
    expect((await store.allPhotos(id)).map((p) => p.name)).toEqual(Array.from({ length: 12 }, (_, i) => `p${i}.jpg`));
    expect(await store.allPhotos('no-such-id')).toEqual([]);
    expect((await store.meta(id))?.fallback).toBe(false);
    await store.finish(id, { status: 'completed', selected: [3], fallback: true });
    expect((await store.meta(id))?.fallback).toBe(true);
  });

  it('keeps worker heartbeats, and forgets the ones dropped', async () => {
    const beat = (at: number) => ({ rssBytes: 100, peakRssBytes: 200, startedAt: 1, at });
    await store.heartbeat('host:1', beat(10));
    await store.heartbeat('host:2', beat(20));
    await store.heartbeat('host:1', beat(30));
    expect(await store.workerBeats()).toEqual(
      new Map([
        ['host:1', beat(30)],
        ['host:2', beat(20)],
      ]),
    );
    await store.dropWorker();
    await store.dropWorker('host:1');
    expect([...(await store.workerBeats()).keys()]).toEqual(['host:2']);
  });

  it("gives a pass's grids their first turn after the same user's shorter or older running triages, and 0 once ended", async () => {
    const user = `u-${randomUUID()}`;
    const big = await created(user, 300); // 3 coarse grids
    await store.start(big);
    expect(await store.fairTurn({ triageId: big, userId: user }, 'coarse', 3)).toBe(1);
    // A smaller job of the same user goes beside the big one, not behind it.
    const small = await created(user, 3);
    await store.start(small);
    expect(await store.fairTurn({ triageId: small, userId: user }, 'coarse', 1)).toBe(1);
    // One as big as the first waits for it (older among equals) and for the small one.
    const same = await created(user, 300);
    await store.start(same);
    expect(await store.fairTurn({ triageId: same, userId: user }, 'coarse', 3)).toBe(1 + 3 + 1);
    // A pending triage has queued nothing; another user's triage starts at the first turn.
    await created(user, 300);
    const otherUser = `u-${randomUUID()}`;
    const other = await created(otherUser, 300);
    await store.start(other);
    expect(await store.fairTurn({ triageId: other, userId: otherUser }, 'coarse', 3)).toBe(1);
    // An ended triage is given no turn, and no longer holds the others back.
    await store.finish(big, { status: 'cancelled' });
    expect(await store.fairTurn({ triageId: big, userId: user }, 'coarse', 3)).toBe(0);
    expect(await store.fairTurn({ triageId: same, userId: user }, 'coarse', 3)).toBe(1 + 1);
  });
});
