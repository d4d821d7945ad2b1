/**
 * The signed URLs of the picks in `results`. A pick whose original has left storage stays in the list with
 * no URLs and the reason, rather than fail the whole answer. The thumbnail is a resized image only when
 * STORAGE_TRANSFORMS is on and transforms work now in this process (a refused or failing renderer turns
 * them off for a while); otherwise it is the original, signed.
 */
import type { SelectedPhoto } from '@triage/queue';
import { ObjectNotFoundError, type StorageDriver } from '@triage/storage';

const THUMBNAIL = { width: 400, height: 400, resize: 'cover' as const };
const URL_SECONDS = 3600;

export interface SignedPick {
  id: string;
  original_filename: string;
  storage_path: string;
  thumbnail_url: string | null;
  url: string | null;
  rank: number;
  reason?: string;
}

export async function signPicks(
  storage: StorageDriver,
  bucket: string,
  picks: readonly SelectedPhoto[],
  transforms: boolean,
): Promise<SignedPick[]> {
  const resized =
    transforms && picks.length > 0 && storage.transformsUsable
      ? await storage.transformsUsable(bucket, picks[0]!.path)
      : transforms;
  return Promise.all(
    picks.map(async (p) => {
      const base = { id: String(p.index), original_filename: p.name, storage_path: p.path, rank: p.rank };
      try {
        const url = await storage.signedUrl(bucket, p.path, URL_SECONDS);
        const thumbnail = resized
          ? await storage.signedUrl(bucket, p.path, URL_SECONDS, { transform: THUMBNAIL })
          : url;
        return { ...base, thumbnail_url: thumbnail, url };
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
        return { ...base, thumbnail_url: null, url: null, reason: 'the original is no longer in storage' };
      }
    }),
  );
}
