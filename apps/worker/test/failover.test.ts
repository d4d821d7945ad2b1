/**
 * Redis as operators run it, and its master killed with SIGKILL mid-job: a master with a replica watched by
 * three Sentinels, and a Cluster of three masters with a replica each, all real redis-server processes on
 * loopback. The `triage` command submits the job and waits through the failover; a worker process (never
 * restarted) carries on by itself; the job ends with the same picks as an undisturbed run, with no grid
 * judged twice beyond the one in flight; the API answers 503 at most while no master exists and recovers by
 * itself; a pub/sub subscription (the API's events, the worker's cancel) is taken up again on the new master.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleSet } from '@triage/images';
import { deleteKeysUnder, keysUnder, redisConnection, type ActiveJob, type TriageStatus } from '@triage/queue';
import { startRedisCluster, startSentinelSet, waitFor, type Topology } from '@triage/queue/testing';
import { REDIS_DOWN } from '../../api/src/errors.js';
import { EventHub } from '../../api/src/events.js';
import { setup as apiSetup, type Env as ApiEnv } from '../../api/test/harness.js';
import { expectAccountedFor, spawnWorker, stopWorker, type WorkerProcess } from './harness.js';
import { DEFAULT_CONCURRENCY } from '../src/index.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../cli/bin/triage.js');
const PHOTOS = 96;
/** 12 photos per coarse grid: 8 coarse grids, then the fine pass. */
const GRIDS = { GRID_COARSE_ROWS: '3', GRID_COARSE_COLS: '4' };

interface CliRun {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function triageRun(folder: string, env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [CLI, 'run', folder, '--top', '10%', '--json'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { done: new Promise((r) => child.once('exit', (code) => r({ code, stdout, stderr }))) };
}

function picksOf(run: { code: number | null; stdout: string; stderr: string }): string[] {
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
  const lines = run.stdout.trim().split('\n');
  return (JSON.parse(lines[lines.length - 1]!) as { selected: string[] }).selected;
}

let samplesDir: string;
let folder: string;

beforeAll(async () => {
  samplesDir = await mkdtemp(join(tmpdir(), 'triage-failover-'));
  const files = await generateSampleSet(join(samplesDir, 'samples'), { count: 48, width: 480, height: 360 });
  folder = join(samplesDir, 'photos');
  await mkdir(folder, { recursive: true });
  // 96 distinct files (each sample twice, under its own name).
  for (let i = 0; i < PHOTOS; i++)
    await copyFile(
      files[i % files.length]!.path,
      join(folder, `${String(i).padStart(3, '0')}-${files[i % files.length]!.name}`),
    );
}, 120_000);
afterAll(async () => {
  await rm(samplesDir, { recursive: true, force: true });
});

describe.each([
  ['Sentinel (a master, a replica, three Sentinels)', startSentinelSet],
  ['Cluster (three masters, a replica each)', startRedisCluster],
] as const)('%s: the master holding the data killed with SIGKILL mid-job', (_kind, startTopology) => {
  let topology: Topology | undefined;
  let api: ApiEnv | undefined;
  let worker: WorkerProcess | undefined;
  let hub: EventHub | undefined;

  beforeAll(async () => {
    topology = await startTopology();
    // The hash tag puts every key in one slot on the Cluster; the Sentinel set takes the same prefix.
    const id = randomUUID().slice(0, 8);
    api = await apiSetup({
      ...topology.env,
      TRIAGE_PREFIX: `{failover-${id}}`,
      PROCEED_QUEUE: `failover-${id}-proceed`,
      ...GRIDS,
    });
  }, 180_000);
  afterAll(async () => {
    hub?.close();
    if (worker) await stopWorker(worker);
    await api?.close().catch(() => {});
    await topology?.stop();
  });

  it('the job ends with the same picks, the CLI waits through it, the API answers 503 at most and recovers, subscriptions resume', async () => {
    const env = api!;
    const topo = topology!;
    const settings = {
      ...topo.env,
      TRIAGE_PREFIX: env.prefix,
      STORAGE_DIR: env.storageDir,
      REDIS_FAILOVER_TIMEOUT_MS: '90000',
      ...GRIDS,
    };
    // One worker process for the whole test, slowed a little per photo so that the kill lands mid-job.
    worker = spawnWorker(env, { ...settings, REDIS_URL: '', STORAGE_READ_LATENCY_MS: '10' });
    const headers = await env.auth('local'); // the CLI's jobs belong to the local user

    const reference = picksOf(await triageRun(folder, settings).done);
    expect(reference).toHaveLength(9); // K = floor(96 × 10 / 100)

    // A subscription of the kind the API's events and the worker's cancel use.
    hub = new EventHub(() => redisConnection(topo.target, 'subscriber'));
    const channel = `${env.prefix}:failover-probe`;
    const received: string[] = [];
    await hub.subscribe(channel, (m) => received.push(m));
    // (PUBLISH's count is the receiving node's subscribers only, on a Cluster: judge by what arrives.)
    const published = async (message: string) => {
      await env.redis.publish(channel, message);
      return received.includes(message);
    };
    await waitFor('a message before the failover', () => published('before'), 10_000);

    const run = triageRun(folder, settings);
    const job = await waitFor(
      'the CLI’s job three grids in',
      async () => {
        const res = await env.app.inject({ method: 'GET', url: '/api/triage/active', headers });
        const found = res.json<{ jobs: ActiveJob[] }>().jobs[0];
        if (!found) return undefined;
        const s = (
          await env.app.inject({ method: 'GET', url: `/api/triage/${found.job_id}/status`, headers })
        ).json<TriageStatus>();
        return s.grids_done >= 3 ? s : undefined;
      },
      120_000,
      20,
    );
    expect(job.status).toBe('processing');

    const killed = await topo.killMasterOf(`${env.prefix}:t:${job.job_id}`);
    // The status route while no master exists and after: 200 or a clear 503, nothing else, never a hang.
    const answers: number[] = [];
    let promotedPort: number | undefined;
    const promotion = topo.promoted(`${env.prefix}:t:${job.job_id}`, killed, 90_000).then((p) => (promotedPort = p));
    while (promotedPort === undefined) {
      const res = await env.app.inject({ method: 'GET', url: `/api/triage/${job.job_id}/status`, headers });
      answers.push(res.statusCode);
      if (res.statusCode !== 200) {
        expect(res.statusCode, res.body).toBe(503);
        expect(res.json()).toEqual({ detail: REDIS_DOWN });
      }
      await Promise.race([promotion, new Promise((r) => setTimeout(r, 100))]);
    }
    await promotion;
    expect(promotedPort).not.toBe(killed);
    // The same app instance answers again by itself.
    await waitFor(
      'the API to answer again',
      async () =>
        (await env.app.inject({ method: 'GET', url: `/api/triage/${job.job_id}/status`, headers })).statusCode === 200,
      60_000,
    );
    expect((await env.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    // The subscription was taken up again on the new master.
    await waitFor('a message after the failover', () => published('after'), 60_000, 200);

    // The CLI waited through it all, and the picks are the undisturbed run's.
    const result = await run.done;
    expect(picksOf(result)).toEqual(reference);
    // A failover can cost the worker its locks: every grid step it held may be judged once more elsewhere.
    await expectAccountedFor(env.store, job.job_id, PHOTOS, 1, DEFAULT_CONCURRENCY);
    // The worker process survived the failover and resumed by itself.
    expect(worker.child.exitCode, worker.output().slice(-3000)).toBeNull();
    // The outage was seen, and answered as such.
    expect(answers).toContain(503);

    // The helpers that list and delete a prefix's keys see every master: 30 keys with their own hash tags
    // spread over the Cluster's slots (and so over its masters).
    const probe = `${env.prefix.replace(/[{}]/g, '')}-scan`;
    for (let i = 0; i < 30; i++) await env.redis.set(`${probe}:{${i}}`, '1');
    expect((await keysUnder(env.redis, probe)).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `${probe}:{${i}}`).sort(),
    );
    await deleteKeysUnder(env.redis, probe);
    expect(await keysUnder(env.redis, probe)).toEqual([]);
  }, 420_000);
});
