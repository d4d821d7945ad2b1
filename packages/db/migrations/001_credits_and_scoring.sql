-- The product's tables this service uses, created only where they do not exist yet (a plain PostgreSQL, a
-- development database). On the product's Supabase database they already exist, with their foreign keys to
-- auth.users, row-level security and triggers: every statement below is then a no-op, and no column of theirs
-- is ever altered. gen_random_uuid() is built into PostgreSQL 13 and later.

CREATE TABLE IF NOT EXISTS credits (
  user_id uuid PRIMARY KEY,
  balance integer NOT NULL DEFAULT 0,
  updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS transactions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  amount integer NOT NULL,
  type text NOT NULL CHECK (type IN ('purchase', 'inference', 'refund', 'trial')),
  stripe_payment_id text,
  created_at timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_transactions_user_id ON transactions (user_id);
CREATE INDEX IF NOT EXISTS idx_transactions_user_created ON transactions (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS scored_photos (
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
CREATE INDEX IF NOT EXISTS idx_scored_photos_user_hash ON scored_photos (user_id, image_hash);

CREATE TABLE IF NOT EXISTS scoring_queue (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  photo_id uuid NOT NULL UNIQUE REFERENCES scored_photos (id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  priority integer DEFAULT 0,
  created_at timestamptz DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  error_message text,
  retry_count integer DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_scoring_queue_take ON scoring_queue (status, priority DESC, created_at);

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
