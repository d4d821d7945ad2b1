/**
 * The store's Lua scripts as registered commands: each script's text goes to a connection once, EVALSHA after
 * that; a node that has lost its script cache (SCRIPT FLUSH, as after a restart or a failover) is sent the
 * text again; and they work through every kind of deployment (one node, Sentinel, Cluster).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFLINE_PROFILE } from '@triage/core';
import { connectRedis, deleteKeysUnder, redisConnection, type RedisClient } from './redis.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { SCRIPTS } from './scripts.js';
import { TriageStore } from './store.js';
import { prepareTriage } from './submit.js';
import { nodeCommand, startRedisCluster, startSentinelSet, type Topology } from './testing/topology.js';
import type { GridRecord } from './contract.js';

const PHOTOS = 4;
/** Script calls in one `lifecycle`. */
const SCRIPT_CALLS = 14;

function record(grid: number, photos: number[]): GridRecord {
  return {
    pass: 'coarse',
    grid,
    photos,
    labels: photos.map((_, i) => `A${i + 1}`),
    votes: { [String(photos[0])]: 1 },
    reviewed: true,
    failures: [],
    usage: { inputTokens: 10, outputTokens: 2, costUsd: 0.001 },
    asked: 1,
    models: ['m'],
    durationMs: 5,
    finishedAt: Date.now(),
    worker: 'test:1',
    bytesRead: 0,
    sources: {},
    readMs: photos.map(() => 0),
  };
}

/** A triage through every script: create, start, take its turn, record a grid (twice: the second is a duplicate), begin the fine pass, hand off, wait for storage, finish. */
async function lifecycle(store: TriageStore): Promise<string> {
  const triageId = randomUUID();
  const photos = Array.from({ length: PHOTOS }, (_, i) => ({ name: `p${i}.jpg`, path: `u/p${i}.jpg` }));
  const { request } = prepareTriage({ triageId, userId: 'u', bucket: 'b', photos, target: '1' }, OFFLINE_PROFILE);
  expect(await store.create(request, 2)).toEqual({ kind: 'created' });
  expect(await store.create(request, 2)).toEqual({ kind: 'exists' });
  expect(await store.start(triageId)).toBe(true);
  expect(await store.start(triageId)).toBe(false);
  expect(await store.fairTurn({ triageId, userId: 'u' }, 'coarse', 1)).toBe(1);
  expect(await store.fairTurn({ triageId, userId: 'u' }, 'coarse', 1)).toBe(1);
  const verdicts = new Map(photos.map((_, i) => [i, { votes: i === 0 ? 1 : 0, reviewed: true, quality: null }]));
  expect(await store.recordGrid(triageId, record(0, [0, 1, 2, 3]), verdicts, 0)).toBe(true);
  expect(await store.recordGrid(triageId, record(0, [0, 1, 2, 3]), verdicts, 0)).toBe(false);
  expect(await store.beginFine(triageId, [0], [1], [0, 1, 2, 3])).toBe(true);
  expect(await store.recordHandOff(triageId, 'photo-0')).toBe(true);
  expect(await store.recordHandOff(triageId, 'photo-0')).toBe(false);
  expect(await store.notePause(triageId, 'test', { waitMs: 1000, maxWaitMs: 1000, limitMs: 60_000 })).toMatchObject({
    waitMs: 1000,
  });
  await store.endOutage(triageId);
  expect(await store.finish(triageId, { status: 'completed', selected: [0], ranks: new Map([[0, 1]]) })).toBe(true);
  expect(await store.finish(triageId, { status: 'failed' })).toBe(false);
  const status = await store.status(triageId);
  expect(status).toMatchObject({
    status: 'completed',
    final_selected: 1,
    pass1_survivors: 1,
    grids_done: 1,
    tokens: { input: 10, output: 2 },
  });
  expect(status?.handoff).toEqual({ handed_off: 1, failed: 0, last_error: null });
  expect(await store.selected(triageId)).toEqual([0]);
  return triageId;
}

/** Calls of each command since the node started (`INFO commandstats`). */
async function calls(redis: RedisClient, command: 'eval' | 'evalsha'): Promise<number> {
  const text = String(await redis.call('INFO', 'commandstats'));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

describe('Lua scripts on one Redis node', () => {
  let dir: string;
  let server: RedisServer;
  let redis: RedisClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'triage-scripts-'));
    server = await startRedisServer({ dir });
    redis = redisConnection({ kind: 'single', url: server.url, explicit: true }, 'worker');
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends each script once per connection, then only its SHA', async () => {
    const store = new TriageStore(redis, { prefix: 'scripts', retentionSeconds: 60 });
    await lifecycle(store);
    // Every script was used: its text went once, every other call was EVALSHA.
    expect(await calls(redis, 'eval')).toBe(SCRIPTS.length);
    expect(await calls(redis, 'evalsha')).toBe(SCRIPT_CALLS - SCRIPTS.length);
    await lifecycle(store);
    expect(await calls(redis, 'eval')).toBe(SCRIPTS.length);
    expect(await calls(redis, 'evalsha')).toBe(2 * SCRIPT_CALLS - SCRIPTS.length);
  });

  it('sends a script again when the node has forgotten it (NOSCRIPT)', async () => {
    const store = new TriageStore(redis, { prefix: 'scripts-flushed', retentionSeconds: 60 });
    await lifecycle(store);
    await redis.call('SCRIPT', 'FLUSH');
    const before = await calls(redis, 'eval');
    await lifecycle(store);
    expect(await calls(redis, 'eval')).toBe(before + SCRIPTS.length);
  });
});

describe.each([
  ['Sentinel', () => startSentinelSet('scripts')],
  ['Cluster', () => startRedisCluster()],
] as const)('Lua scripts through %s', (_kind, start) => {
  let topology: Topology;
  const clients: RedisClient[] = [];
  // A hash tag: in a Cluster every key of a triage, and its user's index, share one slot.
  const prefix = '{scripts}';
  beforeAll(async () => {
    topology = await start();
  });
  afterAll(async () => {
    if (clients[0]) await deleteKeysUnder(clients[0], prefix);
    for (const c of clients) c.disconnect();
    await topology?.stop();
  });

  // Workers' connections, and producers' (the API's, the CLI's), which pipeline commands automatically.
  it.each(['worker', 'producer'] as const)(
    'runs every script on a %s connection, and again after every node has forgotten them',
    async (role) => {
      const redis = await connectRedis(topology.target, role);
      clients.push(redis);
      const store = new TriageStore(redis, { prefix, retentionSeconds: 60 });
      await lifecycle(store);
      for (const port of topology.nodes.keys()) await nodeCommand(port, 'SCRIPT', 'FLUSH');
      await lifecycle(store);
    },
  );
});
