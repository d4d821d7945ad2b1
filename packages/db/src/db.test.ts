/** Migrations and the credit ledger on the real PostgreSQL server, each test in a database of its own. */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createPool,
  InsufficientCreditsError,
  migrate,
  PgCreditLedger,
  proceedChargeKey,
  readDatabaseSettings,
  triageChargeKey,
} from './index.js';
import {
  createSupabaseProductTables,
  createTestDatabase,
  creditsOf,
  seedCredits,
  type TestDatabase,
} from './testing/index.js';

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

/** Every index and constraint of the product's tables, by definition. */
async function indexesAndConstraints(pool: TestDatabase['pool']): Promise<string[]> {
  const { rows } = await pool.query<{ d: string }>(
    `SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ('credits', 'transactions', 'scored_photos', 'scoring_queue')
     UNION ALL
     SELECT conrelid::regclass || ':' || pg_get_constraintdef(oid) FROM pg_constraint
     WHERE conrelid::regclass::text IN ('credits', 'transactions', 'scored_photos', 'scoring_queue') ORDER BY 1`,
  );
  return rows.map((r) => r.d);
}

async function columns(pool: TestDatabase['pool']): Promise<string[]> {
  const { rows } = await pool.query<{ c: string }>(
    `SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable || ':' || coalesce(column_default, '') AS c
     FROM information_schema.columns WHERE table_schema = 'public'
       AND table_name IN ('credits', 'transactions', 'scored_photos', 'scoring_queue') ORDER BY 1`,
  );
  return rows.map((r) => r.c);
}

async function migrated(): Promise<{ db: TestDatabase; ledger: PgCreditLedger }> {
  db = await createTestDatabase();
  await migrate(db.pool);
  return { db, ledger: new PgCreditLedger(db.pool) };
}

describe('migrations', () => {
  it('create the tables on a plain PostgreSQL (no auth schema), once', async () => {
    db = await createTestDatabase();
    expect(await migrate(db.pool)).toEqual(['001_credits_and_scoring.sql']);
    expect(await migrate(db.pool)).toEqual([]);
    const auth = await db.pool.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'auth'");
    expect(auth.rowCount).toBe(0);
    expect((await columns(db.pool)).some((c) => c.startsWith('scored_photos.storage_path:text:NO'))).toBe(true);
  });

  it('leave the product tables of a Supabase database exactly as they were', async () => {
    db = await createTestDatabase();
    await createSupabaseProductTables(db.pool);
    const before = await columns(db.pool);
    const fks =
      "SELECT count(*)::int AS n FROM information_schema.table_constraints WHERE constraint_type = 'FOREIGN KEY' AND table_schema = 'public'";
    const fkBefore = (await db.pool.query<{ n: number }>(fks)).rows[0]!.n;
    const indexesBefore = await indexesAndConstraints(db.pool);
    expect(indexesBefore.length).toBeGreaterThan(5);
    expect(await migrate(db.pool)).toEqual(['001_credits_and_scoring.sql']);
    expect(await columns(db.pool)).toEqual(before);
    expect((await db.pool.query<{ n: number }>(fks)).rows[0]!.n).toBe(fkBefore);
    expect(await indexesAndConstraints(db.pool)).toEqual(indexesBefore);
    // The service's own table is there, and a charge works against the product's tables (FK to auth.users).
    const user = randomUUID();
    await seedCredits(db.pool, user, 3);
    const ledger = new PgCreditLedger(db.pool);
    expect(await ledger.charge(user, 'triage', 't1', [{ key: triageChargeKey('t1'), amount: 2 }])).toBe(2);
    expect((await creditsOf(db.pool, user)).balance).toBe(1);
  });

  it('apply once when several processes migrate at the same time', async () => {
    db = await createTestDatabase();
    const results = await Promise.all([migrate(db.pool), migrate(db.pool), migrate(db.pool)]);
    expect(results.flat()).toEqual(['001_credits_and_scoring.sql']);
  });
});

describe('the credit ledger', () => {
  it('charges once per key, never below zero, with one inference row per charge', async () => {
    const { db, ledger } = await migrated();
    const user = randomUUID();
    await seedCredits(db.pool, user, 5);
    const item = [{ key: triageChargeKey('a'), amount: 3 }];
    expect(await ledger.charge(user, 'triage', 'a', item)).toBe(3);
    expect(await ledger.charge(user, 'triage', 'a', item)).toBe(0);
    const err = await ledger
      .charge(user, 'triage', 'b', [{ key: triageChargeKey('b'), amount: 3 }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientCreditsError);
    expect((err as Error).message).toBe('Insufficient credits: need 3, have 2');
    const after = await creditsOf(db.pool, user);
    expect(after).toEqual({ balance: 2, movements: [{ amount: -3, type: 'inference' }] });
    // The refused charge left no key behind: it can be asked for again once the balance covers it.
    expect((await db.pool.query("SELECT 1 FROM triage_charges WHERE key = 'triage:b'")).rowCount).toBe(0);
  });

  it('a user without a credits row has 0 and is refused', async () => {
    const { ledger } = await migrated();
    await expect(ledger.charge(randomUUID(), 'triage', 'x', [{ key: 'triage:x', amount: 1 }])).rejects.toThrow(
      'Insufficient credits: need 1, have 0',
    );
  });

  it('charges a proceed per photo not charged yet, and refunds each photo once', async () => {
    const { db, ledger } = await migrated();
    const user = randomUUID();
    await seedCredits(db.pool, user, 10);
    const items = (ids: string[]) => ids.map((id) => ({ key: proceedChargeKey('t', id), amount: 1 }));
    expect(await ledger.charge(user, 'proceed', 'h1', items(['1', '2', '3']))).toBe(3);
    expect(await ledger.charge(user, 'proceed', 'h2', items(['2', '3', '4']))).toBe(1);
    expect(await ledger.refund([proceedChargeKey('t', '2')], 'copy failed')).toBe(1);
    expect(await ledger.refund([proceedChargeKey('t', '2')], 'copy failed')).toBe(0);
    const { balance, movements } = await creditsOf(db.pool, user);
    expect(balance).toBe(7);
    expect(movements.map((m) => m.amount).sort()).toEqual([-1, -3, 1].sort());
    expect(movements.filter((m) => m.type === 'refund')).toEqual([{ amount: 1, type: 'refund' }]);
  });

  it('50 concurrent charges against a balance of 7: exactly 7 succeed, balance 0', async () => {
    const { db } = await migrated();
    const user = randomUUID();
    await seedCredits(db.pool, user, 7);
    // Connections as several API replicas would have them: 10 pools of 5.
    const settings = readDatabaseSettings({ DATABASE_URL: db.url, DATABASE_POOL_MAX: '5' })!;
    const pools = Array.from({ length: 10 }, () => createPool(settings, 'test'));
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) =>
          new PgCreditLedger(pools[i % 10]!).charge(user, 'triage', `j${i}`, [{ key: `triage:j${i}`, amount: 1 }]),
        ),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(7);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InsufficientCreditsError);
      const { balance, movements } = await creditsOf(db.pool, user);
      expect(balance).toBe(0);
      expect(movements.filter((m) => m.type === 'inference')).toHaveLength(7);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('reconciles held charges: refunds the ones whose work is absent, settles the queued ones', async () => {
    const { db, ledger } = await migrated();
    const user = randomUUID();
    await seedCredits(db.pool, user, 4);
    await ledger.charge(user, 'triage', 'gone', [{ key: 'triage:gone', amount: 1 }]);
    await ledger.charge(user, 'triage', 'here', [{ key: 'triage:here', amount: 1 }]);
    // Younger than the hold timeout: left alone.
    expect(await ledger.reconcile(60_000, async () => 'absent')).toEqual({ settled: 0, refunded: 0 });
    const result = await ledger.reconcile(0, async (_kind, ref) => (ref === 'here' ? 'queued' : 'absent'));
    expect(result).toEqual({ settled: 1, refunded: 1 });
    expect((await creditsOf(db.pool, user)).balance).toBe(3);
    // A late settle of the refunded charge reports it: its work must not run unpaid.
    expect(await ledger.settle(['triage:gone', 'triage:here'])).toEqual(['triage:gone']);
    expect(await ledger.reconcile(0, async () => 'absent')).toEqual({ settled: 0, refunded: 0 });
  });

  it('reconciles a proceed: photos left held by a finished hand-off are refunded, a settled one keeps its charge', async () => {
    const { db, ledger } = await migrated();
    const user = randomUUID();
    await seedCredits(db.pool, user, 5);
    const keys = ['1', '2', '3'].map((id) => proceedChargeKey('t', id));
    await ledger.charge(
      user,
      'proceed',
      'h',
      keys.map((key) => ({ key, amount: 1 })),
    );
    await db.pool.query("UPDATE triage_charges SET state = 'settled' WHERE key = $1", [keys[0]]);
    // Still queued: left alone, whatever its age.
    expect(await ledger.reconcile(0, async () => 'queued')).toEqual({ settled: 0, refunded: 0 });
    expect(await ledger.reconcile(0, async () => 'finished')).toEqual({ settled: 0, refunded: 2 });
    expect((await creditsOf(db.pool, user)).balance).toBe(4);
  });
});

describe('settings and the migrate command', () => {
  it('validate each variable with a message naming it, and never show the password', () => {
    expect(readDatabaseSettings({})).toBeNull();
    expect(() => readDatabaseSettings({ DATABASE_URL: 'mysql://x@y/z' })).toThrow(
      /DATABASE_URL must start with postgres:\/\//,
    );
    expect(() => readDatabaseSettings({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL must be a URL/);
    expect(() => readDatabaseSettings({ DATABASE_URL: 'postgres://h/d', DATABASE_POOL_MAX: '0' })).toThrow(
      /DATABASE_POOL_MAX must be a whole number from 1/,
    );
    expect(() => readDatabaseSettings({ DATABASE_STATEMENT_TIMEOUT_MS: 'soon' })).toThrow(
      /DATABASE_STATEMENT_TIMEOUT_MS/,
    );
    expect(() => readDatabaseSettings({ DATABASE_MIGRATE_ON_START: 'maybe' })).toThrow(
      /DATABASE_MIGRATE_ON_START must be true or false/,
    );
  });

  it('`npm run migrate` applies the migrations once, and says what it needs without DATABASE_URL', async () => {
    db = await createTestDatabase();
    const main = fileURLToPath(new URL('../dist/migrate-main.js', import.meta.url));
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(process.execPath, [main], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    const first = await run({ DATABASE_URL: db.url });
    expect(first).toEqual({ code: 0, out: expect.stringContaining('applied 001_credits_and_scoring.sql') });
    expect((await run({ DATABASE_URL: db.url })).out).toMatch(/is up to date/);
    // A password given as a query parameter (libpq's form) is used, and masked in what the command prints.
    const u = new URL(db.url);
    const secret = u.password ? decodeURIComponent(u.password) : 'given-in-the-query';
    u.password = '';
    u.searchParams.set('password', secret);
    const masked = await run({ DATABASE_URL: u.toString() });
    expect(masked).toEqual({ code: 0, out: expect.stringContaining('?password=*** is up to date') });
    expect(masked.out).not.toContain(secret);
    const none = await run({});
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/DATABASE_URL is not set/);
  });
});
