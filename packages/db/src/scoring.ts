/**
 * The scoring hand-off's rows: one `scored_photos` row (pointing at the photo's own copy, outside the
 * triage's folder) and its `scoring_queue` entry (`pending`), written with the settlement of the photo's
 * charge in one transaction. Idempotent: a redelivered hand-off finds the rows and adds nothing.
 */
import type pg from 'pg';
import { inTransaction } from './pool.js';

export interface ScoredPhotoInput {
  userId: string;
  /** The copy's path in the bucket (never under `triage/`, which expires). */
  storagePath: string;
  originalFilename: string;
  /** SHA-256 of the bytes, hex. */
  imageHash: string;
  /** The photo's proceed charge, settled with the rows. */
  chargeKey: string;
}

/** Inserts (or finds) the photo's scoring rows; resolves to the `scored_photos` id. */
export async function recordScoredPhoto(pool: pg.Pool, input: ScoredPhotoInput): Promise<string> {
  return inTransaction(pool, async (client) => {
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO scored_photos (user_id, storage_path, original_filename, image_hash) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id, storage_path) DO NOTHING RETURNING id`,
      [input.userId, input.storagePath, input.originalFilename, input.imageHash],
    );
    const id =
      inserted.rows[0]?.id ??
      (
        await client.query<{ id: string }>('SELECT id FROM scored_photos WHERE user_id = $1 AND storage_path = $2', [
          input.userId,
          input.storagePath,
        ])
      ).rows[0]!.id;
    await client.query(
      `INSERT INTO scoring_queue (user_id, photo_id, status) VALUES ($1, $2, 'pending') ON CONFLICT (photo_id) DO NOTHING`,
      [input.userId, id],
    );
    await client.query(
      `UPDATE triage_charges SET state = 'settled', updated_at = now() WHERE key = $1 AND state = 'held'`,
      [input.chargeKey],
    );
    return id;
  });
}
