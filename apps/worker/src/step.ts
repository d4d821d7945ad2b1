/**
 * One step of a triage: exactly one grid (read its photos one at a time, compose, ask the provider, record
 * the grid and advance the step atomically: grid-step.ts), or the pass transitions — with the job-wide
 * near-duplicate groups, computed once the coarse pass ends — and the final ranking. A step is
 * idempotent: a grid already recorded is never sent to the provider again, so a redelivered step after a
 * crash simply resumes at the first unfinished grid.
 */
import {
  arrangeFine,
  capacity,
  finalCount,
  groupScenes,
  jobFlaws,
  parseTarget,
  selectFinal,
  withGroupBest,
  survivesCoarse,
  targetPercent,
  type GridGeometry,
  type Pass,
  type PhotoVerdict,
} from '@triage/core';
import type { EmbeddedThumbnail, GridCell, Thumbnail, ThumbnailOptions } from '@triage/images';
import { signalArray, type CoarseVerdict, type FineVerdict, type TriageMeta, type TriageStore } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import type { VisionProvider } from '@triage/vision';
import type { Logger } from 'pino';
import { buildRecord, buildVerdicts, judgeGrid, readGrid, sceneHints } from './grid-step.js';

/** The image work the worker needs; the default is @triage/images (the only code that imports sharp). */
export interface ImageOps {
  /** `detail`: also measure focus and noise at full resolution (Thumbnail.detail), always or if the thumbnail leaves it open. */
  thumbnail(path: string, size: number, options?: ThumbnailOptions): Promise<Thumbnail>;
  thumbnailFromEmbedded(embedded: EmbeddedThumbnail, size: number, options?: { signal?: AbortSignal }): Promise<Thumbnail>;
  /** Undefined when the DC decoder leaves the file to libvips. */
  thumbnailFromDcScans(head: Uint8Array, size: number, options?: { orientation?: number; signal?: AbortSignal }): Promise<Thumbnail | undefined>;
  composeGrid(geometry: GridGeometry, cells: readonly GridCell[], labels: readonly string[]): Promise<Buffer>;
}

export interface StepDeps {
  store: TriageStore;
  storage: StorageDriver;
  vision: VisionProvider;
  images: ImageOps;
  /** Ask storage for images already resized to the cell, where it can make them. */
  storageTransforms?: boolean;
  /** What a storage outage does to a grid's reads: hand the grid back (default) or fail the photos. */
  storageOutage?: 'pause' | 'fail';
  log: Logger;
  /** Lines an operator should see beside the job in the dashboard. */
  jobLog?: (line: string) => Promise<unknown>;
  /** Photos of one near-duplicate group the final cut keeps at most (KEEP_PER_SCENE); default 1. */
  keepPerScene?: number;
}

export type StepOutcome =
  | { kind: 'grid'; pass: Pass; grid: number; recorded: boolean }
  | { kind: 'done'; status: 'completed' | 'failed' | 'cancelled' };

export class TriageNotFoundError extends Error {
  override name = 'TriageNotFoundError';
}

export async function runStep(deps: StepDeps, triageId: string, signal: AbortSignal): Promise<StepOutcome> {
  const { store } = deps;
  let meta = await store.meta(triageId);
  if (!meta) throw new TriageNotFoundError(`triage ${triageId} has no record in Redis (expired or deleted)`);
  if (meta.status === 'completed' || meta.status === 'failed' || meta.status === 'cancelled') {
    return { kind: 'done', status: meta.status };
  }
  if (meta.cancelRequested) {
    await store.finish(triageId, { status: 'cancelled' });
    return { kind: 'done', status: 'cancelled' };
  }
  if (meta.status === 'pending') {
    await store.start(triageId);
    meta = await reload(store, triageId);
  }
  if (meta.phase === 'coarse_pass') {
    if (meta.coarseDone < meta.plan.coarseSizes.length) return runGrid(deps, meta, 'coarse', meta.coarseDone, signal);
    const verdicts = await store.coarseVerdicts(triageId);
    const survivors = coarseSurvivors(meta.total, verdicts);
    if (meta.passes === 1 || survivors.length === 0) return finalize(deps, meta, survivors.length);
    // Groups once, from the recorded coarse verdicts: a resumed worker computes the very same ones.
    const groups = sceneGroups(meta.total, verdicts);
    const compared = withGroupBest(survivors, groups, (i) => verdicts.get(i)?.quality ?? null);
    const captured = Array.from({ length: meta.total }, (_, i) => verdicts.get(i)?.captured);
    const { order, sizes } = arrangeFine(compared, groups, capacity(meta.plan.fine), captured);
    await store.beginFine(triageId, order, sizes, groups);
    meta = await reload(store, triageId);
  }
  if (meta.phase === 'fine_pass' && meta.fineDone < meta.fineSizes.length) {
    return runGrid(deps, meta, 'fine', meta.fineDone, signal);
  }
  return finalize(deps, meta, undefined);
}

async function reload(store: TriageStore, triageId: string): Promise<TriageMeta> {
  const meta = await store.meta(triageId);
  if (!meta) throw new TriageNotFoundError(`triage ${triageId} disappeared while running`);
  return meta;
}

function coarseSurvivors(total: number, verdicts: Map<number, CoarseVerdict>): number[] {
  const survivors: number[] = [];
  for (let i = 0; i < total; i++) {
    const v = verdicts.get(i);
    if (v && survivesCoarse(toVerdict(i, v, undefined))) survivors.push(i);
  }
  return survivors;
}

function toVerdict(index: number, coarse: CoarseVerdict | undefined, fine: FineVerdict | undefined): PhotoVerdict {
  return {
    index,
    failed: coarse === undefined || coarse.failure !== undefined,
    quality: fine?.quality ?? coarse?.quality ?? null,
    coarseVotes: coarse?.votes ?? 0,
    coarseReviewed: coarse?.reviewed ?? false,
    fineVotes: fine ? fine.votes : null,
    fineReviewed: fine?.reviewed ?? false,
  };
}

function percentOf(meta: TriageMeta): number {
  return targetPercent(parseTarget(meta.target, meta.total), meta.total);
}

/** Why a photo could not be used, in words for the user. */
function failureReason(err: unknown): string {
  const e = err as { reason?: unknown; message?: unknown; name?: unknown };
  if (typeof e.reason === 'string') return e.reason;
  if (e.name === 'ObjectNotFoundError') return 'missing from storage';
  return typeof e.message === 'string' ? e.message : String(err);
}

async function runGrid(deps: StepDeps, meta: TriageMeta, pass: Pass, grid: number, signal: AbortSignal): Promise<StepOutcome> {
  const started = performance.now();
  const read = await readGrid(deps, meta, pass, grid, failureReason, signal);
  const hints = pass === 'fine' ? await sceneHints(deps.store, meta.triageId, read) : undefined;
  const judged = await judgeGrid(deps, meta, read, hints, percentOf(meta), signal);
  const { verdicts, votes } = buildVerdicts(read, judged.answer);
  const record = buildRecord(read, judged, votes, performance.now() - started);
  const recorded = await deps.store.recordGrid(meta.triageId, record, verdicts, pass === 'coarse' ? read.failures.length : 0);
  const picked = Object.keys(votes).length;
  const line =
    `${pass} grid ${grid + 1}/${read.gridCount}: ${read.indexes.length} photos, ${read.failures.length} unreadable, ` +
    `${picked} picked of ${judged.asked} asked${judged.answer.reviewed ? '' : ' (not reviewed: provider failed)'}`;
  deps.log.info({ pass, grid, photos: read.indexes.length, failed: read.failures.length, picked, ms: record.durationMs }, line);
  await deps.jobLog?.(line);
  return { kind: 'grid', pass, grid, recorded };
}

async function finalize(deps: StepDeps, meta: TriageMeta, pass1Survivors: number | undefined): Promise<StepOutcome> {
  const { store } = deps;
  const [coarse, fine, recordedGroups] = await Promise.all([
    store.coarseVerdicts(meta.triageId),
    store.fineVerdicts(meta.triageId),
    store.groups(meta.triageId),
  ]);
  const groups = recordedGroups ?? sceneGroups(meta.total, coarse);
  const flaws = jobFlaws(groups, signalArray(meta.total, coarse), signalArray(meta.total, fine));
  const verdicts = Array.from({ length: meta.total }, (_, i) => ({ ...toVerdict(i, coarse.get(i), fine.get(i)), flawed: flaws[i] !== null }));
  const keep = finalCount(percentOf(meta), meta.total);
  const { selected, fallback, ranks } = selectFinal(verdicts, keep, meta.passes, { groups, perGroup: deps.keepPerScene ?? 1 });
  await store.finish(meta.triageId, {
    status: 'completed',
    selected,
    ranks,
    fallback,
    ...(pass1Survivors !== undefined && { pass1Survivors }),
    ...(recordedGroups === null && { groups }),
  });
  const line = `complete: ${selected.length} selected of ${meta.total}${fallback ? ' (last pass picked none: top of the ranking)' : ''}`;
  deps.log.info({ selected: selected.length, fallback }, line);
  await deps.jobLog?.(line);
  return { kind: 'done', status: 'completed' };
}

/** The job's near-duplicate groups, from the coarse pass's signatures and capture times (deterministic: see @triage/core scenes.ts). */
function sceneGroups(total: number, coarse: Map<number, CoarseVerdict>): (number | null)[] {
  return groupScenes(
    Array.from({ length: total }, (_, i) => {
      const v = coarse.get(i);
      return v && v.failure === undefined && v.signature && v.layout ? { signature: v.signature, layout: v.layout, captured: v.captured } : null;
    }),
  );
}

