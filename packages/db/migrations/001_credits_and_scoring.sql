-- The product's tables this service uses, created only where they do not exist yet (a plain PostgreSQL, a
-- development database). On the product's Supabase database they already exist, with their foreign keys to
-- auth.users, row-level security, triggers and indexes: each block below then does nothing at all (neither a
-- column nor an index of theirs is touched). gen_random_uuid() is built into PostgreSQL 13 and later.

DO $$
BEGIN
  IF to_regclass('public.credits') IS NULL THEN
    CREATE TABLE public.credits (
      user_id uuid PRIMARY KEY,
      balance integer NOT NULL DEFAULT 0,
      updated_at timestamptz DEFAULT now()
    );
  END IF;
END $$;

DO $$
BEGIN
  IF to_regclass('public.transactions') IS NULL THEN
    CREATE TABLE public.transactions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      amount integer NOT NULL,
      type text NOT NULL CHECK (type IN ('purchase', 'inference', 'refund', 'trial')),
      stripe_payment_id text,
      created_at timestamptz DEFAULT now()
    );
    CREATE INDEX idx_transactions_user_id ON public.transactions (user_id);
    CREATE INDEX idx_transactions_user_created ON public.transactions (user_id, created_at DESC);
  END IF;
END $$;

DO $$
BEGIN
  IF to_regclass('public.scored_photos') IS NULL THEN
    CREATE TABLE public.scored_photos (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      storage_path text NOT NULL,
      original_filename text,
      image_hash varchar(64),
      final_score double precision,
      aesthetic_score double precision,
      technical_score double precision,
      description text,
      explanation text,
      features_json jsonb,
      model_scores jsonb,
      created_at timestamptz DEFAULT now(),
      updated_at timestamptz DEFAULT now(),
      UNIQUE (user_id, storage_path)
    );
    CREATE INDEX idx_scored_photos_user_hash ON public.scored_photos (user_id, image_hash);
  END IF;
END $$;

DO $$
BEGIN
  IF to_regclass('public.scoring_queue') IS NULL THEN
    CREATE TABLE public.scoring_queue (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL,
      photo_id uuid NOT NULL UNIQUE REFERENCES public.scored_photos (id) ON DELETE CASCADE,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
      priority integer DEFAULT 0,
      created_at timestamptz DEFAULT now(),
      started_at timestamptz,
      completed_at timestamptz,
      error_message text,
      retry_count integer DEFAULT 0
    );
    CREATE INDEX idx_scoring_queue_take ON public.scoring_queue (status, priority DESC, created_at);
  END IF;
END $$;

-- The service's own table: one row per charge, keyed so that a charge happens at most once.
--   key:   'triage:{job_id}' (a triage's tier) or 'proceed:{job_id}:{photo_id}' (one photo handed to scoring)
--   ref:   what carries the charge: the triage id, or the hand-off job's id
--   state: held (charged, the work not yet queued), settled (the work is queued or done), refunded
-- A held charge whose work never got queued (the API died in between) is refunded by the reconciler.
CREATE TABLE IF NOT EXISTS triage_charges (
  key text PRIMARY KEY,
  user_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('triage', 'proceed')),
  ref text NOT NULL,
  amount integer NOT NULL CHECK (amount >= 0),
  state text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'settled', 'refunded')),
  refund_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_triage_charges_held ON triage_charges (created_at) WHERE state = 'held';
CREATE INDEX IF NOT EXISTS idx_triage_charges_ref ON triage_charges (ref);
