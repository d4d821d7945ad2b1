/**
 * Credits across real API processes on a real socket, real PostgreSQL and Redis: 50 concurrent starts by one
 * user whose balance covers exactly 7, against one process and against two; and an API killed (SIGKILL)
 * between the charge and the queue, whose charge the next process refunds, or settles when the job got queued.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '@triage/db';
import { createTestDatabase, creditsOf, seedCredits, type TestDatabase } from '@triage/db/testing';
import { eventually, JWT_SECRET, REDIS_URL, setup, type Env } from './harness.js';

const API_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/server.js');

let env: Env;
let db: TestDatabase;
const running: ChildProcess[] = [];

beforeEach(async () => {
  db = await createTestDatabase();
  await migrate(db.pool);
  env = await setup();
});

afterEach(async () => {
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await env?.close();
  await db?.drop();
});

interface Api {
  base: string;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
  output: () => string;
}

/** Starts an API process on a free port; resolves once it listens (its start-up line gives the address). */
async function startApi(extra: Record<string, string> = {}): Promise<Api> {
  const proc = spawn(process.execPath, [API_MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      REDIS_URL,
      TRIAGE_PREFIX: env.prefix,
      STORAGE_DIR: env.storageDir,
      PROCEED_QUEUE: env.settings.proceedQueue,
      SUPABASE_JWT_SECRET: JWT_SECRET,
      STORAGE_SIGNING_KEY: 'test-signing-key',
      HOST: '127.0.0.1',
      PORT: '0',
      RATE_LIMIT_PER_MINUTE: '1000',
      MAX_ACTIVE_JOBS_PER_USER: '1000',
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '5',
      LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(proc);
  let out = '';
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  const base = await new Promise<string>((resolveBase, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolveBase(m[1]!);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(() => reject(new Error(`the API exited before listening:\n${out}`)));
  });
  return { base, proc, exited, output: () => out };
}

async function startRequest(base: string, user: string, jobId: string, files: unknown) {
  return fetch(`${base}/api/triage/start-from-storage`, {
    method: 'POST',
    headers: { ...(await env.auth(user)), 'content-type': 'application/json' },
    body: JSON.stringify({ job_id: jobId, files }),
  });
}

async function chargeState(jobId: string): Promise<string | undefined> {
  return (
    await db.pool.query<{ state: string }>('SELECT state FROM triage_charges WHERE key = $1', [`triage:${jobId}`])
  ).rows[0]?.state;
}

describe('50 concurrent starts by one user with a balance of 7', () => {
  for (const processes of [1, 2]) {
    it(`accept exactly 7 with ${processes} API process${processes > 1 ? 'es' : ''}`, async () => {
      const user = randomUUID();
      await seedCredits(db.pool, user, 7);
      const jobs = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const jobId = randomUUID();
          return { jobId, files: await env.stage(user, jobId, 1) };
        }),
      );
      const apis = await Promise.all(Array.from({ length: processes }, () => startApi()));
      const replies = await Promise.all(
        jobs.map((j, i) => startRequest(apis[i % processes]!.base, user, j.jobId, j.files)),
      );
      const codes = replies.map((r) => r.status);
      const bodies = await Promise.all(
        replies.map((r) => r.json() as Promise<{ detail?: string; credits_deducted?: number }>),
      );
      expect(codes.filter((c) => c === 200)).toHaveLength(7);
      expect(codes.filter((c) => c === 402)).toHaveLength(43);
      for (const [i, b] of bodies.entries()) {
        if (codes[i] === 200) expect(b.credits_deducted).toBe(1);
        else expect(b.detail).toMatch(/^Insufficient credits: need 1, have 0$/);
      }
      const { balance, movements } = await creditsOf(db.pool, user);
      expect(balance).toBe(0);
      expect(movements).toEqual(Array.from({ length: 7 }, () => ({ amount: -1, type: 'inference' })));
      // Exactly the accepted jobs are queued.
      const accepted = jobs.filter((_, i) => codes[i] === 200).map((j) => j.jobId);
      for (const j of jobs) expect(Boolean(await env.queue.getJob(j.jobId)), j.jobId).toBe(accepted.includes(j.jobId));
    }, 180_000);
  }
});

describe('an API killed between the charge and the queue', () => {
  it('leaves a held charge that the next process refunds, since no job carries it', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 3);
    const jobId = randomUUID();
    const files = await env.stage(user, jobId, 2);
    const doomed = await startApi({ TRIAGE_TEST_CRASH_AT: 'after-charge' });
    await expect(startRequest(doomed.base, user, jobId, files)).rejects.toThrow();
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await chargeState(jobId)).toBe('held');
    expect((await creditsOf(db.pool, user)).balance).toBe(2);
    expect(await env.store.meta(jobId)).toBeNull();

    await startApi({ CREDIT_HOLD_TIMEOUT_MS: '300' });
    await eventually(async () => (await chargeState(jobId)) === 'refunded', 60_000);
    expect(await creditsOf(db.pool, user)).toEqual({
      balance: 3,
      movements: [
        { amount: -1, type: 'inference' },
        { amount: 1, type: 'refund' },
      ],
    });
    expect(await env.queue.getJob(jobId)).toBeUndefined();
  }, 180_000);

  it('after the job was queued, the next process settles the charge and refunds nothing; the retry is a 409', async () => {
    const user = randomUUID();
    await seedCredits(db.pool, user, 3);
    const jobId = randomUUID();
    const files = await env.stage(user, jobId, 2);
    const doomed = await startApi({ TRIAGE_TEST_CRASH_AT: 'after-enqueue' });
    await expect(startRequest(doomed.base, user, jobId, files)).rejects.toThrow();
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await chargeState(jobId)).toBe('held');
    expect(await env.queue.getJob(jobId)).toBeDefined();

    const api = await startApi({ CREDIT_HOLD_TIMEOUT_MS: '300' });
    await eventually(async () => (await chargeState(jobId)) === 'settled', 60_000);
    const retry = await startRequest(api.base, user, jobId, files);
    expect(retry.status).toBe(409);
    expect(await creditsOf(db.pool, user)).toEqual({ balance: 2, movements: [{ amount: -1, type: 'inference' }] });
  }, 180_000);
});

describe('start-up', () => {
  it('says when there is no database, refuses a database without verified tokens, and migrates when asked', async () => {
    const plain = await startApi({ DATABASE_URL: '' });
    expect(plain.output()).toMatch(/DATABASE_URL is not set: no credits are charged/);
    plain.proc.kill('SIGTERM');
    expect((await plain.exited).code).toBe(0);

    await expect(startApi({ SUPABASE_JWT_SECRET: '' })).rejects.toThrow(
      /DATABASE_URL is set, but no SUPABASE_JWT_SECRET or SUPABASE_URL/,
    );
    await expect(startApi({ DATABASE_POOL_MAX: 'many' })).rejects.toThrow(/DATABASE_POOL_MAX must be a whole number/);

    const fresh = await createTestDatabase();
    try {
      // The test server trusts the loopback address, so a password is accepted and ignored: it must not be logged.
      const withPassword = new URL(fresh.url);
      withPassword.password = 'never-log-this-password';
      const migrating = await startApi({ DATABASE_URL: withPassword.toString(), DATABASE_MIGRATE_ON_START: 'true' });
      expect(migrating.output()).toMatch(/database migrated/);
      expect(migrating.output()).toMatch(/credits are charged from the database/);
      expect(migrating.output()).not.toContain('never-log-this-password');
      const tables = await fresh.pool.query(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'triage_charges'",
      );
      expect(tables.rowCount).toBe(1);
      migrating.proc.kill('SIGTERM');
      await migrating.exited;
    } finally {
      await fresh.drop();
    }
  }, 180_000);
});
