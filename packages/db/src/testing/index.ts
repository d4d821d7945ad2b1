/**
 * For tests: a fresh database per test on the real PostgreSQL server at DATABASE_TEST_URL (removed by
 * `drop`), and the product's tables as a Supabase project has them (auth.users, foreign keys, row-level
 * security, triggers), to prove the migrations leave them alone.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DATABASE_TEST_URL = process.env.DATABASE_TEST_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: DATABASE_TEST_URL, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database; `drop()` removes it (closing every connection to it). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `triage_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(DATABASE_TEST_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end().catch(() => {});
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * The product's tables as the Supabase project has them: user ids referencing auth.users, row-level security,
 * the `updated_at` trigger, the scoring queue's notification, and columns this service does not know about.
 */
export async function createSupabaseProductTables(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE SCHEMA auth;
    CREATE TABLE auth.users (id uuid PRIMARY KEY, email text);
    CREATE FUNCTION public.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
    CREATE TABLE public.credits (
      user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
      balance integer NOT NULL DEFAULT 0,
      updated_at timestamptz DEFAULT now()
    );
    CREATE TRIGGER credits_updated_at BEFORE UPDATE ON public.credits FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
    CREATE TABLE public.transactions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
      amount integer NOT NULL,
      type text NOT NULL CHECK (type IN ('purchase', 'inference', 'refund', 'trial')),
      stripe_payment_id text,
      created_at timestamptz DEFAULT now()
    );
    CREATE INDEX transactions_user ON public.transactions (user_id);
    CREATE TABLE public.scored_photos (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
      storage_path text NOT NULL,
      original_filename text,
      image_hash varchar(64),
      final_score numeric,
      aesthetic_score numeric,
      technical_score numeric,
      description text,
      explanation text,
      features_json jsonb,
      model_scores jsonb,
      camera_model text,
      created_at timestamptz DEFAULT now(),
      updated_at timestamptz DEFAULT now(),
      UNIQUE (user_id, storage_path)
    );
    CREATE TABLE public.scoring_queue (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
      photo_id uuid NOT NULL UNIQUE REFERENCES public.scored_photos (id) ON DELETE CASCADE,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
      priority int DEFAULT 0,
      created_at timestamptz DEFAULT now(),
      started_at timestamptz,
      completed_at timestamptz,
      error_message text,
      retry_count int DEFAULT 0
    );
    CREATE FUNCTION public.notify_scoring() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('scoring_queue', NEW.id::text); RETURN NEW; END $$;
    CREATE TRIGGER scoring_queue_notify AFTER INSERT ON public.scoring_queue FOR EACH ROW EXECUTE FUNCTION public.notify_scoring();
    ALTER TABLE public.credits ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.transactions ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.scored_photos ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.scoring_queue ENABLE ROW LEVEL SECURITY;
  `);
}

/** Gives a user `balance` credits (and, on the Supabase layout, the auth.users row it references). */
export async function seedCredits(pool: pg.Pool, userId: string, balance: number): Promise<void> {
  const hasAuth =
    (await pool.query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'auth' AND table_name = 'users'"))
      .rowCount === 1;
  if (hasAuth) await pool.query('INSERT INTO auth.users (id) VALUES ($1) ON CONFLICT DO NOTHING', [userId]);
  await pool.query(
    'INSERT INTO credits (user_id, balance) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance',
    [userId, balance],
  );
}

/** A user's balance and movements, as the tests check them. */
export async function creditsOf(
  pool: pg.Pool,
  userId: string,
): Promise<{ balance: number; movements: { amount: number; type: string }[] }> {
  const balance =
    (await pool.query<{ balance: number }>('SELECT balance FROM credits WHERE user_id = $1', [userId])).rows[0]
      ?.balance ?? 0;
  const movements = (
    await pool.query<{ amount: number; type: string }>(
      'SELECT amount, type FROM transactions WHERE user_id = $1 ORDER BY created_at, id',
      [userId],
    )
  ).rows;
  return { balance, movements };
}
