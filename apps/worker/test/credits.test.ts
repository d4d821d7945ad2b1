/**
 * The worker's side of credits and the scoring hand-off, on real PostgreSQL (a database per test) and Redis:
 * a triage that served nothing (every grid unreviewed, or the job failed) is refunded once; a hand-off copies
 * each photo on the storage side (the real storage-js client against the local Storage server), writes the
 * product's scoring rows (Supabase's layout: auth.users, RLS, triggers) and settles each photo's credit,
 * refunds and reports a photo it cannot hand off, and adds nothing when delivered again.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Job } from 'bullmq';
import { createPool, migrate, PgCreditLedger, proceedChargeKey, triageChargeKey } from '@triage/db';
import {
  createSupabaseProductTables,
  createTestDatabase,
  creditsOf,
  seedCredits,
  type TestDatabase,
} from '@triage/db/testing';
import { createHandOffQueue, handOff, handOffJobId, type HandOffJobData } from '@triage/queue';
import { SupabaseStorage } from '@triage/storage';
import { FakeSupabase } from '@triage/storage/testing';
import { AnthropicProvider } from '@triage/vision';
import { FakeAnthropic } from '@triage/vision/testing';
import { createHandOffWorker, processHandOff, scoredPath, sweepExpired } from '../src/index.js';
import {
  BUCKET,
  ended,
  eventually,
  IMAGES,
  inProcessWorker,
  removeSampleSet,
  sampleSet,
  setup,
  SMALL_GRIDS,
  stageJob,
  submit,
  waitForStatus,
  type Env,
  type InProcessWorker,
} from './harness.js';

const KEY = 'service-role-key-for-tests';
let env: Env;
let db: TestDatabase;
let ledger: PgCreditLedger;
let worker: InProcessWorker | undefined;
let storageFake: FakeSupabase;
let visionFake: FakeAnthropic;

beforeAll(async () => {
  storageFake = await FakeSupabase.start({ serviceRoleKey: KEY });
  visionFake = await FakeAnthropic.start({ apiKey: 'test-key', retryAfterMs: 10 });
});
afterAll(async () => {
  await storageFake?.close();
  await visionFake?.close();
  await removeSampleSet();
});
beforeEach(async () => {
  env = await setup();
  db = await createTestDatabase();
  visionFake.clearFaults();
  storageFake.objects.clear();
  storageFake.clearLog();
});
afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await env.close();
  await db.drop();
});

/** A user with `balance` credits, charged for a triage as the API does. */
async function chargedTriage(user: string, balance: number, triageId: string): Promise<void> {
  await seedCredits(db.pool, user, balance);
  await ledger.charge(user, 'triage', triageId, [{ key: triageChargeKey(triageId), amount: 1 }]);
  await ledger.settle([triageChargeKey(triageId)]);
}

describe('refunds of triages that served nothing', () => {
  beforeEach(async () => {
    await migrate(db.pool);
    ledger = new PgCreditLedger(db.pool);
  });

  it('every grid unreviewed (the model refused every call): completed, and refunded once', async () => {
    const user = randomUUID();
    const { files } = await sampleSet();
    visionFake.inject({ fault: { kind: 'status', status: 400, message: 'bad request' } });
    const vision = new AnthropicProvider({
      apiKey: 'test-key',
      baseURL: visionFake.url,
      maxRetries: 0,
      timeoutMs: 5000,
    });
    worker = await inProcessWorker(env, { vision, credits: ledger });
    const triageId = randomUUID();
    await chargedTriage(user, 2, triageId);
    const staged = await stageJob(env, files.slice(0, 12), {
      userId: user,
      passes: 1,
      layouts: SMALL_GRIDS,
      profile: vision.profile,
      triageId,
    });
    expect(staged.triageId).toBe(triageId);
    expect((await waitForStatus(env, triageId, ended, 150_000)).status).toBe('completed');
    await eventually(async () => (await creditsOf(db.pool, user)).balance === 2);
    expect((await creditsOf(db.pool, user)).movements).toEqual([
      { amount: -1, type: 'inference' },
      { amount: 1, type: 'refund' },
    ]);
  }, 180_000);

  it('a refund the database could not take as the triage ended is made by the retention sweep, before the records go', async () => {
    const user = randomUUID();
    const triageId = randomUUID();
    const { files } = await sampleSet();
    await chargedTriage(user, 1, triageId);
    await stageJob(env, files.slice(0, 2), { userId: user, passes: 1, triageId });
    await env.store.start(triageId);
    await env.store.finish(triageId, { status: 'failed', errorMessage: 'Triage failed: no space left on device' });
    const log = pino({ level: 'silent' });
    const later = Date.now() + (env.store.retentionSeconds + 60) * 1000;
    // The ledger's database does not answer: the sweep keeps the triage, refund owed, for its next round.
    const away = createPool(
      {
        url: db.url.replace(/\/[^/]*$/, '/no_such_database'),
        poolMax: 1,
        statementTimeoutMs: 2000,
        connectTimeoutMs: 2000,
        migrateOnStart: false,
        holdTimeoutMs: 60_000,
      },
      'test',
    );
    try {
      expect(
        await sweepExpired({ store: env.store, storage: env.storage, log, credits: new PgCreditLedger(away) }, later),
      ).toEqual({ removed: 0, failed: 1 });
    } finally {
      await away.end();
    }
    expect(await env.store.meta(triageId)).not.toBeNull();
    expect((await creditsOf(db.pool, user)).balance).toBe(0);
    expect(await sweepExpired({ store: env.store, storage: env.storage, log, credits: ledger }, later)).toEqual({
      removed: 1,
      failed: 0,
    });
    expect(await env.store.meta(triageId)).toBeNull();
    expect(await creditsOf(db.pool, user)).toEqual({
      balance: 1,
      movements: [
        { amount: -1, type: 'inference' },
        { amount: 1, type: 'refund' },
      ],
    });
  });

  it('a job that fails is refunded; a job that served its user is not', async () => {
    const user = randomUUID();
    const { files } = await sampleSet();
    const failing = randomUUID();
    const served = randomUUID();
    await chargedTriage(user, 3, failing);
    await ledger.charge(user, 'triage', served, [{ key: triageChargeKey(served), amount: 1 }]);
    // Every grid's composition fails: the step throws on each attempt, and the job fails.
    worker = await inProcessWorker(env, {
      credits: ledger,
      images: {
        ...IMAGES,
        composeGrid: async (geometry, cells, labels) => {
          if (cells.length === 4) throw new Error('no space left on device');
          return IMAGES.composeGrid(geometry, cells, labels);
        },
      },
    });
    await stageJob(env, files.slice(0, 4), { userId: user, passes: 1, triageId: failing });
    await stageJob(env, files.slice(4, 10), { userId: user, passes: 1, triageId: served });
    expect((await waitForStatus(env, failing, ended, 120_000)).status).toBe('failed');
    expect((await waitForStatus(env, served, ended, 120_000)).status).toBe('completed');
    await eventually(async () => (await creditsOf(db.pool, user)).movements.length === 3);
    const { balance, movements } = await creditsOf(db.pool, user);
    expect(balance).toBe(2);
    expect(movements.filter((m) => m.type === 'refund')).toEqual([{ amount: 1, type: 'refund' }]);
    const states = await db.pool.query('SELECT key, state FROM triage_charges ORDER BY key');
    expect(Object.fromEntries(states.rows.map((r: { key: string; state: string }) => [r.key, r.state]))).toEqual({
      [triageChargeKey(failing)]: 'refunded',
      [triageChargeKey(served)]: 'held',
    });
  }, 180_000);
});

describe('the scoring hand-off (Supabase Storage and the product tables as Supabase has them)', () => {
  beforeEach(async () => {
    await createSupabaseProductTables(db.pool);
    await migrate(db.pool);
    ledger = new PgCreditLedger(db.pool);
  });

  it('copies on the server, writes the rows with the hash, refunds and reports a photo it cannot hand off, and adds nothing on redelivery', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 10);
    const { files } = await sampleSet();
    const triageId = randomUUID();
    const photos = [];
    for (const [i, f] of files.slice(0, 3).entries()) {
      const path = `triage/${user}/${triageId}/${randomUUID()}.jpg`;
      // The third photo's original is gone (a user removed it) before the hand-off.
      if (i < 2) storageFake.put(BUCKET, path, await readFile(f.path), { contentType: 'image/jpeg' });
      photos.push({ id: String(i), name: f.name, path });
    }
    await submit(
      env,
      triageId,
      photos.map((p) => ({ name: p.name, path: p.path })),
      { userId: user },
    );
    const data: HandOffJobData = { triageId, userId: user, bucket: BUCKET, photos };
    const jobId = handOffJobId(
      triageId,
      photos.map((p) => p.id),
    );
    expect(
      await ledger.charge(
        user,
        'proceed',
        jobId,
        photos.map((p) => ({ key: proceedChargeKey(triageId, p.id), amount: 1 })),
      ),
    ).toBe(3);

    const storage = new SupabaseStorage({
      url: storageFake.url,
      serviceRoleKey: KEY,
      retries: 1,
      backoff: { baseMs: 5, maxMs: 10 },
    });
    const deps = { store: env.store, storage, pool: db.pool, credits: ledger, log: pino({ level: 'silent' }) };
    const queue = createHandOffQueue(`${env.prefix}-proceed`, {
      connection: env.redis,
      prefix: env.prefix,
      retentionSeconds: 600,
    });
    const handoffWorker = createHandOffWorker({
      ...deps,
      queue: queue.name,
      connection: env.redis,
      prefix: env.prefix,
    });
    try {
      await handOff(queue, data, jobId);
      const status = await waitForStatus(
        env,
        triageId,
        (s) => (s.handoff?.handed_off ?? 0) + (s.handoff?.failed ?? 0) === 3,
        150_000,
      );
      expect(status.handoff).toEqual({
        handed_off: 2,
        failed: 1,
        last_error: `${files[2]!.name}: the original is no longer in storage`,
      });

      const rows = async () =>
        (
          await db.pool.query(
            `SELECT p.storage_path, p.original_filename, p.image_hash, q.status, q.user_id = p.user_id AS same_user
             FROM scored_photos p JOIN scoring_queue q ON q.photo_id = p.id WHERE p.user_id = $1 ORDER BY p.original_filename`,
            [user],
          )
        ).rows;
      const expected = await Promise.all(
        photos.slice(0, 2).map(async (p, i) => ({
          storage_path: scoredPath(user, triageId, p),
          original_filename: p.name,
          image_hash: createHash('sha256')
            .update(await readFile(files[i]!.path))
            .digest('hex'),
          status: 'pending',
          same_user: true,
        })),
      );
      expected.sort((a, b) => a.original_filename.localeCompare(b.original_filename));
      expect(await rows()).toEqual(expected);
      for (const e of expected) {
        expect(e.storage_path.startsWith(`${user}/`)).toBe(true);
        expect(storageFake.get(BUCKET, e.storage_path)?.body).toEqual(
          storageFake.get(BUCKET, photos.find((p) => p.name === e.original_filename)!.path)?.body,
        );
      }
      // The copies were made by the service (POST /object/copy); no original was downloaded.
      expect(storageFake.requests.filter((r) => r.op === 'copy')).toHaveLength(3);
      expect(storageFake.requests.filter((r) => r.op === 'download' && r.path?.startsWith('triage/'))).toHaveLength(0);
      const credits = await creditsOf(db.pool, user);
      expect(credits.balance).toBe(8);
      expect(credits.movements).toEqual([
        { amount: -3, type: 'inference' },
        { amount: 1, type: 'refund' },
      ]);

      // Delivered again (a crash after the work, before BullMQ recorded it): nothing is added, nothing moves.
      await processHandOff(deps, { data } as Job<HandOffJobData>);
      expect(await rows()).toEqual(expected);
      expect(await creditsOf(db.pool, user)).toEqual(credits);
      expect((await env.store.status(triageId))!.handoff).toEqual(status.handoff);
      const charges = await db.pool.query<{ state: string }>('SELECT state FROM triage_charges ORDER BY key');
      expect(charges.rows.map((r) => r.state)).toEqual(['settled', 'settled', 'refunded']);
    } finally {
      await handoffWorker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  }, 180_000);

  it('storage away through the last attempt: every photo not handed off is refunded and reported', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 2);
    const { files } = await sampleSet();
    const triageId = randomUUID();
    const photos = [];
    for (const [i, f] of files.slice(0, 2).entries()) {
      const path = `triage/${user}/${triageId}/${i}.jpg`;
      storageFake.put(BUCKET, path, await readFile(f.path), { contentType: 'image/jpeg' });
      photos.push({ id: String(i), name: f.name, path });
    }
    await submit(
      env,
      triageId,
      photos.map((p) => ({ name: p.name, path: p.path })),
      { userId: user },
    );
    const jobId = handOffJobId(
      triageId,
      photos.map((p) => p.id),
    );
    await ledger.charge(
      user,
      'proceed',
      jobId,
      photos.map((p) => ({ key: proceedChargeKey(triageId, p.id), amount: 1 })),
    );
    storageFake.inject({ op: 'copy', fault: { kind: 'status', status: 503 } });
    const storage = new SupabaseStorage({ url: storageFake.url, serviceRoleKey: KEY, retries: 0 });
    const queue = createHandOffQueue(`${env.prefix}-proceed`, {
      connection: env.redis,
      prefix: env.prefix,
      retentionSeconds: 600,
    });
    const handoffWorker = createHandOffWorker({
      store: env.store,
      storage,
      pool: db.pool,
      credits: ledger,
      log: pino({ level: 'silent' }),
      queue: queue.name,
      connection: env.redis,
      prefix: env.prefix,
    });
    try {
      // Two quick attempts instead of the queue's six with backoff.
      await queue.add(
        'proceed',
        { triageId, userId: user, bucket: BUCKET, photos },
        { jobId, attempts: 2, backoff: { type: 'fixed', delay: 10 } },
      );
      const status = await waitForStatus(env, triageId, (s) => (s.handoff?.failed ?? 0) === 2, 150_000);
      expect(status.handoff).toMatchObject({
        handed_off: 0,
        failed: 2,
        last_error: expect.stringMatching(/not handed off after 2 attempts: .*503/),
      });
      await eventually(async () => (await creditsOf(db.pool, user)).balance === 2);
      expect((await creditsOf(db.pool, user)).movements).toEqual([
        { amount: -2, type: 'inference' },
        { amount: 1, type: 'refund' },
        { amount: 1, type: 'refund' },
      ]);
      expect((await db.pool.query('SELECT 1 FROM scored_photos')).rowCount).toBe(0);
    } finally {
      await handoffWorker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    }
  }, 180_000);
});
