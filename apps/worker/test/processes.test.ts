/**
 * Worker processes as operators run them: killed with SIGKILL mid-job and replaced, two of them sharing a
 * queue, and stopped with SIGTERM mid-grid.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { GRID_JOB, loadSelection } from '@triage/queue';
import {
  ended,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  spawnWorker,
  stageJob,
  stopWorker,
  waitForStatus,
  waitForWorkers,
  type Env,
  type WorkerProcess,
} from './harness.js';

let env: Env;
const workers: WorkerProcess[] = [];

function start(extra: Record<string, string> = {}): WorkerProcess {
  const w = spawnWorker(env, extra);
  workers.push(w);
  return w;
}

beforeAll(async () => {
  await sampleSet();
});
afterAll(async () => {
  await removeSampleSet();
});

describe('worker processes', () => {
  beforeAll(async () => {
    env = await setup();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map(stopWorker));
  });
  afterAll(async () => {
    await env.close();
  });

  it('a worker killed with SIGKILL mid-job is replaced, and the job ends with the same picks, no grid judged twice', async () => {
    const { files } = await sampleSet();

    // The undisturbed reference run.
    const reference = await stageJob(env, files, { layouts: SMALL_GRIDS });
    const first = start();
    const refStatus = await waitForStatus(env, reference.triageId, ended);
    expect(refStatus.status).toBe('completed');
    const refPicks = (await loadSelection(env.store, reference.triageId)).map((s) => s.index);
    await stopWorker(first);

    // The same photos again; the worker reads slowly so that the kill lands while it reads a grid's photos.
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS });
    const victim = start({ STORAGE_READ_LATENCY_MS: '40' });
    await waitForStatus(env, job.triageId, (s) => s.grids_done >= 2);
    victim.child.kill('SIGKILL');
    const { signal } = await victim.exited;
    expect(signal).toBe('SIGKILL');
    const atKill = await env.store.status(job.triageId);
    expect(atKill?.status).toBe('processing');

    start();
    const status = await waitForStatus(env, job.triageId, ended);
    expect(status.status).toBe('completed');
    expect((await loadSelection(env.store, job.triageId)).map((s) => s.index)).toEqual(refPicks);

    const attempts = await env.store.attempts(job.triageId);
    const records = await env.store.gridRecords(job.triageId);
    expect(Object.keys(attempts).sort()).toEqual(records.map((r) => `${r.pass}:${r.grid}`).sort());
    expect(Object.values(attempts).every((n) => n === 1)).toBe(true);
    // Both processes recorded grids: the second resumed rather than starting over.
    expect(new Set(records.map((r) => r.worker)).size).toBe(2);
    const coarse = await env.store.coarseVerdicts(job.triageId);
    expect(coarse.size).toBe(60);
  });

  it('two worker processes on one queue share two users’ jobs: their grids interleave and both complete', async () => {
    const { files } = await sampleSet();
    start();
    start();
    await waitForWorkers(env, 2);
    const a = await stageJob(env, files, { layouts: SMALL_GRIDS, userId: 'user-1' });
    const b = await stageJob(env, files.slice(0, 36), { layouts: SMALL_GRIDS, userId: 'user-2' });
    const [sa, sb] = await Promise.all([waitForStatus(env, a.triageId, ended), waitForStatus(env, b.triageId, ended)]);
    expect(sa.status).toBe('completed');
    expect(sb.status).toBe('completed');
    expect(sa.final_selected).toBe(6);
    expect(sb.final_selected).toBe(3);

    const ra = await env.store.gridRecords(a.triageId);
    const rb = await env.store.gridRecords(b.triageId);
    const timeline = [...ra.map((r) => ({ job: 'a', ...r })), ...rb.map((r) => ({ job: 'b', ...r }))].sort(
      (x, y) => x.finishedAt - y.finishedAt,
    );
    // Interleaved: neither job ran all its grids before the other started.
    const firstB = timeline.findIndex((r) => r.job === 'b');
    const lastA = timeline.map((r) => r.job).lastIndexOf('a');
    expect(firstB).toBeLessThan(lastA);
    const firstA = timeline.findIndex((r) => r.job === 'a');
    const lastB = timeline.map((r) => r.job).lastIndexOf('b');
    expect(firstA).toBeLessThan(lastB);
    // Both processes worked, and each grid was judged once.
    expect(new Set(timeline.map((r) => r.worker)).size).toBe(2);
    for (const id of [a.triageId, b.triageId]) {
      expect(Object.values(await env.store.attempts(id)).every((n) => n === 1)).toBe(true);
    }
  });

  it('SIGTERM mid-grid: the worker hands the grid back and exits within its deadline; another finishes the job', async () => {
    const { files } = await sampleSet();
    const job = await stageJob(env, files, { layouts: SMALL_GRIDS });
    // 150 ms per read: a grid takes about two seconds, far longer than the 300 ms deadline.
    const w = start({ STORAGE_READ_LATENCY_MS: '150', SHUTDOWN_DEADLINE_MS: '300' });
    // Mid-grid is a state, not a time: the first grid recorded and grid jobs still held by the worker (the
    // next one reading its photos, about two seconds, the others waiting for their turn at the image gate).
    const before = await vi
      .waitUntil(
        async () => {
          const done = (await env.store.status(job.triageId))?.grids_done ?? 0;
          const held = (await env.queue.getActive()).filter((j) => j.name === GRID_JOB);
          return done >= 1 && held.length > 0 ? { done } : false;
        },
        { timeout: 50_000, interval: 10 },
      )
      .then((s) => s.done);
    w.child.kill('SIGTERM');
    const exit = await w.exited;
    expect(exit.code).toBe(0);
    expect(w.output()).toMatch(/handing the grid back/);
    // The grid in progress was handed back, not recorded half-done.
    expect((await env.store.status(job.triageId))!.grids_done).toBe(before);

    start();
    const status = await waitForStatus(env, job.triageId, ended);
    expect(status.status).toBe('completed');
    expect(Object.values(await env.store.attempts(job.triageId)).every((n) => n === 1)).toBe(true);
  });
});
