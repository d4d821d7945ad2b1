/**
 * Credits, charged and refunded exactly once. Every charge is keyed (a triage by its id, a proceed by its
 * triage and photo ids) in the service's own `triage_charges` table; one transaction inserts the keys, takes
 * the amount from `credits` only where the balance covers it, and writes the `transactions` row. A retried
 * request, a double click or a second API replica finds its keys taken and charges nothing. A refund turns
 * keys to `refunded` once, whoever asks first.
 *
 * A charge is `held` until its work is queued (`settle`); one still held after the hold timeout had its
 * process die between charge and queue: `reconcile` refunds it when its work does not exist, settles it when
 * it does.
 */
import type pg from 'pg';
import { inTransaction } from './pool.js';

export type ChargeKind = 'triage' | 'proceed';

/** `held` until its work is queued, then `settled`; `refunded` once given back. */
export type ChargeState = 'held' | 'settled' | 'refunded';

export interface ChargeItem {
  key: string;
  amount: number;
}

export class InsufficientCreditsError extends Error {
  override name = 'InsufficientCreditsError';
  constructor(
    readonly need: number,
    readonly have: number,
  ) {
    super(`Insufficient credits: need ${need}, have ${have}`);
  }
}

/** The refund reason of a charge whose work was never queued: its work must not run unpaid. */
export const NOT_QUEUED = 'not queued';

export function triageChargeKey(triageId: string): string {
  return `triage:${triageId}`;
}

export function proceedChargeKey(triageId: string, photoId: string): string {
  return `proceed:${triageId}:${photoId}`;
}

/** What a charge's work is, as the reconciler finds it: still to run or running, finished, or absent. */
export type WorkState = 'queued' | 'finished' | 'absent';

export interface ReconcileResult {
  settled: number;
  refunded: number;
}

export interface CreditLedger {
  /** False for the deployment without a database: nothing is ever charged. */
  readonly enabled: boolean;
  /** Charges the items not charged yet, in one transaction; resolves to the credits taken now. */
  charge(userId: string, kind: ChargeKind, ref: string, items: readonly ChargeItem[]): Promise<number>;
  /** The state of a charge, or null when nothing was ever charged under the key. */
  stateOf(key: string): Promise<ChargeState | null>;
  /** Marks held charges as paid for queued work; returns the keys refunded as not queued meanwhile. */
  settle(keys: readonly string[]): Promise<string[]>;
  /**
   * Gives back the keys not refunded yet; resolves to the credits given back now. With `onlyHeld`, only charges
   * whose work was not done (a photo handed off is settled, and keeps its charge).
   */
  refund(keys: readonly string[], reason: string, onlyHeld?: boolean): Promise<number>;
  /** Resolves charges held longer than `olderThanMs`: settled when their work exists, refunded when not. */
  reconcile(
    olderThanMs: number,
    workState: (kind: ChargeKind, ref: string) => Promise<WorkState>,
  ): Promise<ReconcileResult>;
}

/** The deployment without a database: everything is free, and says so (0 deducted). */
export const NO_LEDGER: CreditLedger = {
  enabled: false,
  async charge() {
    return 0;
  },
  async stateOf() {
    return null;
  },
  async settle() {
    return [];
  },
  async refund() {
    return 0;
  },
  async reconcile() {
    return { settled: 0, refunded: 0 };
  },
};

async function balanceOf(client: pg.PoolClient, userId: string): Promise<number> {
  const { rows } = await client.query<{ balance: number }>('SELECT balance FROM credits WHERE user_id = $1', [userId]);
  return rows[0]?.balance ?? 0;
}

export class PgCreditLedger implements CreditLedger {
  readonly enabled = true;

  constructor(private readonly pool: pg.Pool) {}

  async charge(userId: string, kind: ChargeKind, ref: string, items: readonly ChargeItem[]): Promise<number> {
    if (items.length === 0) return 0;
    return inTransaction(this.pool, async (client) => {
      // New keys, and keys refunded earlier (asked for again), are charged; held or settled ones are not.
      const { rows } = await client.query<{ amount: number }>(
        `INSERT INTO triage_charges (key, user_id, kind, ref, amount)
           SELECT k, $2, $3, $4, a FROM unnest($1::text[], $5::int[]) AS t(k, a)
         ON CONFLICT (key) DO UPDATE
           SET state = 'held', ref = EXCLUDED.ref, amount = EXCLUDED.amount, refund_reason = NULL,
               created_at = now(), updated_at = now()
           WHERE triage_charges.state = 'refunded' AND triage_charges.user_id = EXCLUDED.user_id
         RETURNING amount`,
        [items.map((i) => i.key), userId, kind, ref, items.map((i) => i.amount)],
      );
      const total = rows.reduce((sum, r) => sum + r.amount, 0);
      if (total === 0) return 0;
      const taken = await client.query(
        'UPDATE credits SET balance = balance - $2, updated_at = now() WHERE user_id = $1 AND balance >= $2',
        [userId, total],
      );
      if (taken.rowCount !== 1) throw new InsufficientCreditsError(total, await balanceOf(client, userId));
      await client.query("INSERT INTO transactions (user_id, amount, type) VALUES ($1, $2, 'inference')", [
        userId,
        -total,
      ]);
      return total;
    });
  }

  async stateOf(key: string): Promise<ChargeState | null> {
    const { rows } = await this.pool.query<{ state: ChargeState }>('SELECT state FROM triage_charges WHERE key = $1', [
      key,
    ]);
    return rows[0]?.state ?? null;
  }

  async settle(keys: readonly string[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.pool.query<{ key: string; state: string; refund_reason: string | null }>(
      `WITH s AS (UPDATE triage_charges SET state = 'settled', updated_at = now() WHERE key = ANY($1) AND state = 'held' RETURNING key)
       SELECT key, state, refund_reason FROM triage_charges WHERE key = ANY($1) AND key NOT IN (SELECT key FROM s)`,
      [keys],
    );
    return rows.filter((r) => r.state === 'refunded' && r.refund_reason === NOT_QUEUED).map((r) => r.key);
  }

  async refund(keys: readonly string[], reason: string, onlyHeld = false): Promise<number> {
    if (keys.length === 0) return 0;
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ user_id: string; amount: number }>(
        `UPDATE triage_charges SET state = 'refunded', refund_reason = $2, updated_at = now()
         WHERE key = ANY($1) AND (state = 'held' OR (state = 'settled' AND NOT $3)) RETURNING user_id, amount`,
        [keys, reason, onlyHeld],
      );
      const perUser = new Map<string, number>();
      for (const r of rows) perUser.set(r.user_id, (perUser.get(r.user_id) ?? 0) + r.amount);
      let total = 0;
      for (const [userId, amount] of perUser) {
        if (amount === 0) continue;
        await client.query(
          `INSERT INTO credits (user_id, balance) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET balance = credits.balance + EXCLUDED.balance, updated_at = now()`,
          [userId, amount],
        );
        await client.query("INSERT INTO transactions (user_id, amount, type) VALUES ($1, $2, 'refund')", [
          userId,
          amount,
        ]);
        total += amount;
      }
      return total;
    });
  }

  async reconcile(
    olderThanMs: number,
    workState: (kind: ChargeKind, ref: string) => Promise<WorkState>,
  ): Promise<ReconcileResult> {
    const { rows } = await this.pool.query<{ key: string; kind: ChargeKind; ref: string }>(
      `SELECT key, kind, ref FROM triage_charges
       WHERE state = 'held' AND created_at < now() - $1 * interval '1 millisecond' ORDER BY created_at LIMIT 1000`,
      [olderThanMs],
    );
    const groups = new Map<string, { kind: ChargeKind; ref: string; keys: string[] }>();
    for (const r of rows) {
      const id = `${r.kind}\u0000${r.ref}`;
      const group = groups.get(id) ?? { kind: r.kind, ref: r.ref, keys: [] };
      group.keys.push(r.key);
      groups.set(id, group);
    }
    const result: ReconcileResult = { settled: 0, refunded: 0 };
    for (const { kind, ref, keys } of groups.values()) {
      const state = await workState(kind, ref);
      if (state === 'absent' || (state === 'finished' && kind === 'proceed')) {
        // A hand-off settles or refunds each of its photos before it finishes: what it left held was never handed off.
        result.refunded += await this.refund(keys, NOT_QUEUED, true);
      } else if (kind === 'triage') {
        await this.settle(keys);
        result.settled += keys.length;
      }
    }
    return result;
  }
}
