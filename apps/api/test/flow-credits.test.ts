/**
 * The webapp's flow with credits, end to end on real PostgreSQL and Redis, over a real socket, with a real
 * in-process worker consuming both the triage queue and the scoring hand-off: start-from-storage (charged) →
 * polling the status → results → ZIP → proceed (charged per photo; the rows land in scored_photos and
 * scoring_queue and point at copies outside the triage's folder) → DELETE (the triage's files go, the copies
 * and the rows stay). The retention sweep spares the copies too. Every credit movement is checked.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Worker } from 'bullmq';
import {
  composeGrid,
  generateSampleSet,
  thumbnailFromDcScans,
  thumbnailFromEmbedded,
  thumbnailFromFile,
  type SampleFile,
} from '@triage/images';
import type { Results, TriageStatus } from '@triage/client';
import { migrate, PgCreditLedger } from '@triage/db';
import { createTestDatabase, creditsOf, seedCredits, type TestDatabase } from '@triage/db/testing';
import { redisConnection, type HandOffJobData, type RedisClient } from '@triage/queue';
import { OfflineProvider } from '@triage/vision';
import { createHandOffWorker, createTriageWorker, sweepExpired, type TriageWorker } from '@triage/worker';
import { BUCKET, eventually, setup, type Env } from './harness.js';

let env: Env;
let db: TestDatabase;
let base: string;
let samples: { dir: string; files: SampleFile[] };
let worker: TriageWorker;
let handoffWorker: Worker<HandOffJobData>;
let subscriber: RedisClient;
let workerRedis: RedisClient;
const USER = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool);
  const ledger = new PgCreditLedger(db.pool);
  env = await setup({ GRID_COARSE_ROWS: '3', GRID_COARSE_COLS: '4' }, { credits: ledger });
  const dir = await mkdtemp(join(tmpdir(), 'triage-api-samples-'));
  samples = { dir, files: await generateSampleSet(dir, { count: 30, width: 640, height: 480 }) };
  base = await env.app.listen({ host: '127.0.0.1', port: 0 });
  workerRedis = redisConnection(env.settings.redis, 'worker');
  subscriber = redisConnection(env.settings.redis, 'subscriber');
  const log = pino({ level: 'silent' });
  worker = await createTriageWorker({
    connection: workerRedis,
    subscriber,
    prefix: env.prefix,
    store: env.store,
    storage: env.storage,
    vision: new OfflineProvider(),
    images: { thumbnail: thumbnailFromFile, thumbnailFromEmbedded, thumbnailFromDcScans, composeGrid },
    log,
    credits: ledger,
  });
  handoffWorker = createHandOffWorker({
    queue: env.settings.proceedQueue,
    connection: workerRedis,
    prefix: env.prefix,
    store: env.store,
    storage: env.storage,
    pool: db.pool,
    credits: ledger,
    log,
  });
}, 120_000);

afterAll(async () => {
  await handoffWorker?.close();
  await worker?.close(2000);
  subscriber?.disconnect();
  await workerRedis?.quit();
  await env?.close();
  await db?.drop();
  if (samples) await rm(samples.dir, { recursive: true, force: true });
});

async function stageSamples(jobId: string, files: SampleFile[]) {
  const out = [];
  for (const f of files) {
    const path = `triage/${USER}/${jobId}/${randomUUID()}.jpg`;
    const target = env.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(f.path, target);
    out.push({ original_name: f.name, storage_path: path });
  }
  return out;
}

async function api(path: string, init: RequestInit = {}) {
  return fetch(`${base}${path}`, {
    ...init,
    headers: { ...(await env.auth(USER)), 'content-type': 'application/json', ...init.headers },
  });
}

/** The webapp's way: poll the status every 2 s until the job ends. */
async function pollUntilEnded(jobId: string): Promise<TriageStatus> {
  for (;;) {
    const s = (await (await api(`/api/triage/${jobId}/status`)).json()) as TriageStatus;
    if (['completed', 'failed', 'cancelled'].includes(s.status)) return s;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function scoredRows() {
  return (
    await db.pool.query<{ storage_path: string; original_filename: string; image_hash: string; status: string }>(
      `SELECT p.storage_path, p.original_filename, p.image_hash, q.status
       FROM scored_photos p JOIN scoring_queue q ON q.photo_id = p.id WHERE p.user_id = $1 ORDER BY p.storage_path`,
      [USER],
    )
  ).rows;
}

async function exists(path: string): Promise<boolean> {
  return stat(env.storage.filePath(BUCKET, path)).then(
    () => true,
    () => false,
  );
}

describe('the webapp flow with credits', () => {
  it('start → poll → results → ZIP → proceed → delete, with credits moving exactly as expected', async () => {
    await seedCredits(db.pool, USER, 10);
    const jobId = randomUUID();
    const files = await stageSamples(jobId, samples.files);
    const started = await api('/api/triage/start-from-storage', {
      method: 'POST',
      body: JSON.stringify({ job_id: jobId, files, target: '20%' }),
    });
    expect(started.status).toBe(200);
    expect(await started.json()).toMatchObject({
      job_id: jobId,
      photo_count: 30,
      credits_deducted: 1,
      credits_required: 1,
    });
    expect((await creditsOf(db.pool, USER)).balance).toBe(9);

    expect((await pollUntilEnded(jobId)).status).toBe('completed');
    const results = (await (await api(`/api/triage/${jobId}/results`)).json()) as Results;
    const picks = results.selected_photos;
    expect(picks.length).toBeGreaterThan(1);

    const zipRes = await api(`/api/triage/${jobId}/download`);
    expect(zipRes.status).toBe(200);
    const zipPath = join(env.dir, 'flow-credits.zip');
    await writeFile(zipPath, Buffer.from(await zipRes.arrayBuffer()));
    const listing = (await promisify(execFile)('unzip', ['-Z1', zipPath])).stdout.trim().split('\n');
    expect(listing).toHaveLength(picks.length);

    const proceed = await api(`/api/triage/${jobId}/proceed`, { method: 'POST' });
    expect(proceed.status).toBe(200);
    expect(await proceed.json()).toEqual({
      queued_count: picks.length,
      credits_deducted: picks.length,
      credits_required: picks.length,
    });
    const handed = await eventually(async () => {
      const s = (await (await api(`/api/triage/${jobId}/status`)).json()) as TriageStatus;
      return s.handoff && s.handoff.handed_off + s.handoff.failed === picks.length ? s.handoff : null;
    }, 60_000);
    expect(handed).toEqual({ handed_off: picks.length, failed: 0, last_error: null });

    // The rows, read back: one per pick, pending, pointing at a copy in the user's own area with the pick's bytes.
    const rows = await scoredRows();
    expect(rows).toHaveLength(picks.length);
    expect(rows.map((r) => r.original_filename).sort()).toEqual(picks.map((p) => p.original_filename).sort());
    for (const row of rows) {
      expect(row.status).toBe('pending');
      expect(row.storage_path.startsWith(`${USER}/scored/${jobId}/`)).toBe(true);
      const pick = picks.find((p) => p.original_filename === row.original_filename)!;
      const bytes = await readFile(env.storage.filePath(BUCKET, row.storage_path));
      expect(bytes).toEqual(await readFile(env.storage.filePath(BUCKET, pick.storage_path)));
      expect(row.image_hash).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    const charged = 10 - 1 - picks.length;
    expect(await creditsOf(db.pool, USER)).toEqual({
      balance: charged,
      movements: [
        { amount: -1, type: 'inference' },
        { amount: -picks.length, type: 'inference' },
      ],
    });

    const del = await api(`/api/triage/${jobId}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    for (const f of files) expect(await exists(f.storage_path)).toBe(false);
    for (const row of rows) expect(await exists(row.storage_path)).toBe(true);
    expect(await scoredRows()).toEqual(rows);
    // A served triage is not refunded when deleted.
    expect((await creditsOf(db.pool, USER)).balance).toBe(charged);
  }, 300_000);

  it('the retention sweep removes a triage’s own photos and never a handed-off copy', async () => {
    const jobId = randomUUID();
    const files = await stageSamples(jobId, samples.files.slice(0, 8));
    const before = (await creditsOf(db.pool, USER)).balance;
    expect(
      (
        await api('/api/triage/start-from-storage', {
          method: 'POST',
          body: JSON.stringify({ job_id: jobId, files, target: '2' }),
        })
      ).status,
    ).toBe(200);
    expect((await pollUntilEnded(jobId)).status).toBe('completed');
    const proceed = (await (await api(`/api/triage/${jobId}/proceed`, { method: 'POST' })).json()) as {
      queued_count: number;
    };
    await eventually(
      async () => ((await env.store.status(jobId))?.handoff?.handed_off ?? 0) === proceed.queued_count,
      60_000,
    );
    const copies = (await scoredRows()).filter((r) => r.storage_path.includes(`/${jobId}/`));
    expect(copies).toHaveLength(proceed.queued_count);
    const swept = await sweepExpired(
      { store: env.store, storage: env.storage, log: pino({ level: 'silent' }) },
      Date.now() + (env.store.retentionSeconds + 60) * 1000,
    );
    expect(swept.removed).toBeGreaterThanOrEqual(1);
    expect(await env.store.meta(jobId)).toBeNull();
    for (const f of files) expect(await exists(f.storage_path)).toBe(false);
    for (const c of copies) expect(await exists(c.storage_path)).toBe(true);
    expect((await creditsOf(db.pool, USER)).balance).toBe(before - 1 - proceed.queued_count);
  }, 300_000);
});
