/**
 * Read-only views of the store that the API serves: a user's active jobs, a job's owner, every photo's fate.
 * Nothing here changes a triage's state (except dropping a user's index entries whose records have expired).
 */
import { groupMembers, jobFlaws, progressOf, type JobStatus, type Phase, type PhotoSignals } from '@triage/core';
import { userJobsKey, type CoarseVerdict, type FateSignals, type FineVerdict, type PhotoFate, type PhotoInput } from './contract.js';
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
  const indexKey = userJobsKey(store.prefix, userId);
  const ids = await store.redis.zrevrange(indexKey, 0, -1);
  if (ids.length === 0) return [];
  const fields = ['status', 'phase', 'total_input', 'created_at', 'coarse_done', 'coarse_total', 'fine_done', 'fine_total'] as const;
  const pipeline = store.redis.pipeline();
  for (const id of ids) pipeline.hmget(store.keys(id).meta, ...fields);
  const rows = (await pipeline.exec()) ?? [];
  const gone: string[] = [];
  const jobs: ActiveJob[] = [];
  ids.forEach((id, i) => {
    const [err, values] = rows[i] ?? [null, null];
    if (err) throw err;
    const v = values as (string | null)[];
    const status = v[0] as JobStatus | null;
    if (!status) {
      gone.push(id);
      return;
    }
    if (!ACTIVE.includes(status)) return;
    const phase = (v[1] as Phase | null) ?? null;
    const [done, total] = phase === 'fine_pass' ? [Number(v[6]), Number(v[7])] : [Number(v[4]), Number(v[5])];
    jobs.push({
      job_id: id,
      status,
      total_input: Number(v[2] ?? 0),
      progress_percentage: phase && status === 'processing' ? progressOf(phase, done || 0, total || 0).percentage : 0,
      phase: phase ?? 'pending',
      created_at: v[3] ?? '',
    });
  });
  if (gone.length > 0) await store.redis.zrem(indexKey, ...gone);
  return jobs;
}

/** How many of a user's jobs are pending or processing. */
export async function countActiveJobs(store: TriageStore, userId: string): Promise<number> {
  return (await activeJobs(store, userId)).length;
}

/** The owner of a triage, or null when there is no such triage. One HGET. */
export async function triageOwner(store: TriageStore, triageId: string): Promise<string | null> {
  return store.redis.hget(store.keys(triageId).meta, 'user_id');
}

/** Every photo of a triage, by index. */
export async function allPhotos(store: TriageStore, triageId: string): Promise<PhotoInput[]> {
  const raw = await store.redis.hgetall(store.keys(triageId).photos);
  return Object.entries(raw)
    .map(([index, json]) => [Number(index), JSON.parse(json) as PhotoInput] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, photo]) => photo);
}

/** What became of every photo of a triage, and why, in input order. */
export async function photoFates(store: TriageStore, triageId: string): Promise<PhotoFate[]> {
  const [meta, photos, coarse, fine, ranks, selected, fallback, groups] = await Promise.all([
    store.meta(triageId),
    allPhotos(store, triageId),
    store.coarseVerdicts(triageId),
    store.fineVerdicts(triageId),
    store.ranks(triageId),
    store.selected(triageId),
    store.redis.hget(store.keys(triageId).meta, 'fallback'),
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
    const mates = groups?.[index] != null ? (members.get(groups[index]!) ?? []) : [];
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
        status: meta.status, passes: meta.passes, fallback: fallback === '1', selected: isSelected, rank, coarse: c, fine: f, keep: selected.length,
        flaw, keptTwin: keeper === undefined ? undefined : photos[keeper]!.name,
      }),
    };
  });
}

/** Recorded signals as the flaw rules take them, by photo index (null where a photo has none). */
export function signalArray(total: number, verdicts: Map<number, CoarseVerdict | FineVerdict>): (PhotoSignals | null)[] {
  return Array.from({ length: total }, (_, i) => {
    const v = verdicts.get(i);
    return v && v.failure === undefined && v.sharpness !== undefined ? { ...v, sharpness: v.sharpness, exposure: v.exposure ?? 1 } : null;
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
    return p.fallback ? `selected from the ranking (rank ${p.rank}): the last pass picked none` : `selected (rank ${p.rank})`;
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
  const photos = await allPhotos(store, meta.triageId);
  const paths = photos.flatMap((p) => (p.thumbnailPath ? [p.path, p.thumbnailPath] : [p.path]));
  if (meta.saveGrids) paths.push(...gridPaths(meta));
  return paths;
}
