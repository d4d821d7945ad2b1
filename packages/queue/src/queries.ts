/**
 * Read-only views of the store that the API serves: a user's active jobs, every photo's fate.
 * Nothing here changes a triage's state (except dropping a user's index entries whose records have expired),
 * and nothing reads Redis but through the store's methods.
 */
import { groupMembers, jobFlaws, progressOf, type JobStatus, type Phase, type PhotoSignals } from '@triage/core';
import type { CoarseVerdict, FateSignals, FineVerdict, PhotoFate } from './contract.js';
import { gridPaths, type TriageMeta, type TriageStore } from './store.js';

export interface ActiveJob {
  job_id: string;
  status: JobStatus;
  total_input: number;
  progress_percentage: number;
  /** `pending` until the job's first grid starts: the webapp shows it as text, never null. */
  phase: Phase | 'pending';
  created_at: string;
}

const ACTIVE: readonly JobStatus[] = ['pending', 'uploading', 'processing'];

/**
 * A user's jobs that are still pending or processing, newest first. Ids whose records are gone (expired or
 * forgotten) are dropped from the user's index on the way.
 */
export async function activeJobs(store: TriageStore, userId: string): Promise<ActiveJob[]> {
  const jobs = await store.userJobs(userId);
  return jobs
    .filter((job) => ACTIVE.includes(job.status))
    .map((job) => {
      const [done, total] =
        job.phase === 'fine_pass' ? [job.fineDone, job.fineTotal] : [job.coarseDone, job.coarseTotal];
      return {
        job_id: job.triageId,
        status: job.status,
        total_input: job.total,
        progress_percentage:
          job.phase && job.status === 'processing' ? progressOf(job.phase, done, total).percentage : 0,
        phase: job.phase ?? 'pending',
        created_at: job.createdAt,
      };
    });
}

/** How many of a user's jobs are pending or processing. */
export async function countActiveJobs(store: TriageStore, userId: string): Promise<number> {
  return (await activeJobs(store, userId)).length;
}

/** What became of every photo of a triage, and why, in input order. */
export async function photoFates(store: TriageStore, triageId: string): Promise<PhotoFate[]> {
  const [meta, photos, coarse, fine, ranks, selected, groups] = await Promise.all([
    store.meta(triageId),
    store.allPhotos(triageId),
    store.coarseVerdicts(triageId),
    store.fineVerdicts(triageId),
    store.ranks(triageId),
    store.selected(triageId),
    store.groups(triageId),
  ]);
  if (!meta) return [];
  const picked = new Set(selected);
  const flaws = groups ? jobFlaws(groups, signalArray(photos.length, coarse), signalArray(photos.length, fine)) : [];
  const members = groups ? groupMembers(groups) : new Map<number, number[]>();
  return photos.map((photo, index) => {
    const c: CoarseVerdict | null = coarse.get(index) ?? null;
    const f: FineVerdict | null = fine.get(index) ?? null;
    const rank = ranks.get(index) ?? null;
    const isSelected = picked.has(index);
    const mates = groups?.[index] != null ? (members.get(groups[index]) ?? []) : [];
    const keeper = mates.find((m) => m !== index && picked.has(m));
    const flaw = flaws[index] ?? null;
    return {
      index,
      name: photo.name,
      path: photo.path,
      selected: isSelected,
      rank,
      coarse: c,
      fine: f,
      group: mates.length > 1 ? { id: groups![index]!, size: mates.length, picked: isSelected } : null,
      signals: fateSignals(c, f),
      flaw,
      reason: fateReason({
        status: meta.status,
        passes: meta.passes,
        fallback: meta.fallback,
        selected: isSelected,
        rank,
        coarse: c,
        fine: f,
        keep: selected.length,
        flaw,
        keptTwin: keeper === undefined ? undefined : photos[keeper]!.name,
      }),
    };
  });
}

/** Recorded signals as the flaw rules take them, by photo index (null where a photo has none). */
export function signalArray(
  total: number,
  verdicts: Map<number, CoarseVerdict | FineVerdict>,
): (PhotoSignals | null)[] {
  return Array.from({ length: total }, (_, i) => {
    const v = verdicts.get(i);
    return v && v.failure === undefined && v.sharpness !== undefined
      ? { ...v, sharpness: v.sharpness, exposure: v.exposure ?? 1 }
      : null;
  });
}

function fateSignals(c: CoarseVerdict | null, f: FineVerdict | null): FateSignals | null {
  const v = f?.sharpness !== undefined ? f : c;
  if (!v || v.sharpness === undefined || v.failure !== undefined) return null;
  return {
    sharpness: v.sharpness,
    noise: f?.detail?.noise ?? v.noise ?? null,
    exposure: v.exposure ?? 0,
    clipped_highlights: v.clippedBright ?? null,
    crushed_shadows: v.clippedDark ?? null,
  };
}

function fateReason(p: {
  status: JobStatus;
  passes: 1 | 2;
  fallback: boolean;
  selected: boolean;
  rank: number | null;
  coarse: CoarseVerdict | null;
  fine: FineVerdict | null;
  keep: number;
  flaw: string | null;
  /** The file name of a photo of its group that was kept. */
  keptTwin: string | undefined;
}): string {
  const failure = p.coarse?.failure ?? p.fine?.failure;
  if (failure) return `could not be read: ${failure}`;
  if (p.selected) {
    return p.fallback
      ? `selected from the ranking (rank ${p.rank}): the last pass picked none`
      : `selected (rank ${p.rank})`;
  }
  const twin = p.keptTwin === undefined ? '' : `near-duplicate of ${p.keptTwin}, which was kept`;
  if (p.flaw) return twin ? `${p.flaw}; ${twin}` : p.flaw;
  if (twin) return twin;
  if (!p.coarse) {
    if (p.status === 'cancelled') return 'not reviewed: the job was cancelled';
    if (p.status === 'failed') return 'not reviewed: the job failed';
    return 'not reviewed yet';
  }
  if (p.coarse.reviewed && p.coarse.votes === 0) return 'not picked in the coarse pass';
  if (p.passes === 2 && p.fine && p.fine.reviewed && p.fine.votes === 0) return 'not picked in the fine pass';
  if (p.passes === 2 && !p.fine && p.status !== 'completed') return 'survived the coarse pass; fine pass not reached';
  if (p.rank !== null) return `ranked ${p.rank}, below the cut of ${p.keep}`;
  return 'not selected';
}

/** Every object a triage put or left in storage: its photos, their client thumbnails, the grids it kept. */
export async function storedObjects(store: TriageStore, meta: TriageMeta): Promise<string[]> {
  const photos = await store.allPhotos(meta.triageId);
  const paths = photos.flatMap((p) => (p.thumbnailPath ? [p.path, p.thumbnailPath] : [p.path]));
  if (meta.saveGrids) paths.push(...gridPaths(meta));
  return paths;
}
