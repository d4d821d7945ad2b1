/**
 * One step of a triage: exactly one grid (read its photos one at a time, compose, ask the provider, record
 * the grid and advance the step atomically), or the pass transitions and the final ranking. A step is
 * idempotent: a grid already recorded is never sent to the provider again, so a redelivered step after a
 * crash simply resumes at the first unfinished grid.
 */
import {
  capacity,
  coarsePercent,
  finalCount,
  finePercent,
  fitGeometry,
  gridStarts,
  labelsFor,
  parseTarget,
  picksForGrid,
  selectFinal,
  splitIntoGrids,
  survivesCoarse,
  targetPercent,
  type GridGeometry,
  type Pass,
  type PhotoVerdict,
} from '@triage/core';
import type { EmbeddedThumbnail, GridCell, Thumbnail } from '@triage/images';
import { gridPath, type CoarseVerdict, type FineVerdict, type GridRecord, type PhotoFailure, type TriageMeta, type TriageStore } from '@triage/queue';
import type { StorageDriver } from '@triage/storage';
import { readThumbnails } from './photos.js';
import { NO_USAGE, type GridAnswer, type VisionProvider } from '@triage/vision';
import { hostname } from 'node:os';
import type { Logger } from 'pino';

const WORKER_ID = `${hostname()}:${process.pid}`;

/** The image work the worker needs; the default is @triage/images (the only code that imports sharp). */
export interface ImageOps {
  thumbnail(path: string, size: number, options?: { signal?: AbortSignal }): Promise<Thumbnail>;
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
    await store.beginFine(triageId, survivors, splitIntoGrids(survivors.length, capacity(meta.plan.fine)));
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
  const { store, storage, vision, images, log } = deps;
  const started = performance.now();
  const sizes = pass === 'coarse' ? meta.plan.coarseSizes : meta.fineSizes;
  const starts = gridStarts(sizes);
  const [start, end] = [starts[grid]!, starts[grid + 1]!];
  const indexes =
    pass === 'coarse' ? Array.from({ length: end - start }, (_, i) => start + i) : await store.survivors(meta.triageId, start, end);
  const photos = await store.photos(meta.triageId, indexes);
  const geometry = fitGeometry(meta.plan[pass], indexes.length);
  const labels = labelsFor(indexes.length, geometry.cols);

  // One photo at a time: only this grid's thumbnails are ever held, never an original's pixels.
  const reads = await readThumbnails(
    { storage, images, bucket: meta.bucket, pass, size: geometry.thumb, transforms: deps.storageTransforms ?? false, signal, outage: deps.storageOutage ?? 'pause' },
    photos,
    failureReason,
  );
  const thumbs = reads.map((r) => r.thumb);
  const cells: GridCell[] = reads.map((r) => (r.thumb ? { thumb: r.thumb.rgb } : { thumb: null, reason: r.reason ?? 'unreadable' }));
  const failures: PhotoFailure[] = reads.flatMap((r, i) => (r.thumb ? [] : [{ index: indexes[i]!, reason: r.reason ?? 'unreadable' }]));
  const sources: Record<string, number> = {};
  for (const r of reads) if (r.source) sources[r.source] = (sources[r.source] ?? 0) + 1;
  signal.throwIfAborted();
  const image = await images.composeGrid(geometry, cells, labels);
  if (meta.saveGrids) {
    await storage.write(meta.bucket, gridPath(meta, pass, grid), image, { contentType: 'image/jpeg' });
  }

  const percent = percentOf(meta);
  const readable = indexes.length - failures.length;
  const share = pass === 'coarse' ? coarsePercent(percent) : finePercent(percent, meta.total, meta.pass1Survivors ?? meta.total);
  const asked = Math.min(readable, picksForGrid(share, indexes.length, start));
  const unreadable = labels.filter((_, i) => thumbs[i] === null);
  let answer: GridAnswer;
  if (readable === 0) {
    answer = { picks: [], votes: {}, reviewed: true, models: [], usage: NO_USAGE };
  } else {
    await store.countAttempt(meta.triageId, `${pass}:${grid}`);
    try {
      answer = await vision.judge({ image, geometry, labels, pass, criteria: meta.criteria, pick: asked, unreadable, signal });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      log.warn({ err, pass, grid }, 'vision provider failed: the grid survives this pass unreviewed');
      answer = { picks: [], votes: {}, reviewed: false, error: (err as Error).message, models: [], usage: NO_USAGE };
    }
  }

  const failureOf = new Map(failures.map((f) => [f.index, f.reason]));
  const votes: Record<string, number> = {};
  const verdicts = new Map<number, CoarseVerdict | FineVerdict>();
  labels.forEach((label, i) => {
    const index = indexes[i]!;
    const thumb = thumbs[i];
    // A placeholder can never be picked, whatever an answer says.
    const v = thumb ? (answer.votes[label] ?? 0) : 0;
    if (v > 0) votes[String(index)] = v;
    const failure = failureOf.get(index);
    if (pass === 'coarse') {
      verdicts.set(index, {
        votes: v,
        reviewed: answer.reviewed,
        quality: thumb ? round(thumb.signals.quality) : null,
        ...(thumb && { sharpness: round(thumb.signals.sharpness), exposure: round(thumb.signals.exposure), hash: thumb.signals.hash }),
        ...(failure !== undefined && { failure }),
      });
    } else {
      // A photo read in the coarse pass but not now is not lost: it stays in, unreviewed.
      verdicts.set(index, {
        votes: v,
        reviewed: answer.reviewed && thumb !== null,
        quality: thumb ? round(thumb.signals.quality) : null,
        ...(failure !== undefined && { failure }),
      });
    }
  });
  const errorText = answer.error ?? answer.models.find((m) => m.error)?.error;
  const record: GridRecord = {
    pass,
    grid,
    photos: indexes,
    labels,
    votes,
    reviewed: answer.reviewed,
    ...(errorText !== undefined && { error: errorText }),
    failures,
    usage: answer.usage,
    asked,
    models: answer.models.map((m) => m.model),
    durationMs: Math.round(performance.now() - started),
    finishedAt: Date.now(),
    worker: WORKER_ID,
    bytesRead: reads.reduce((sum, r) => sum + r.bytes, 0),
    sources,
    readMs: reads.map((r) => Math.round(r.ms * 10) / 10),
  };
  const recorded = await store.recordGrid(meta.triageId, record, verdicts, pass === 'coarse' ? failures.length : 0);
  const line =
    `${pass} grid ${grid + 1}/${sizes.length}: ${indexes.length} photos, ${failures.length} unreadable, ` +
    `${Object.keys(votes).length} picked of ${asked} asked${answer.reviewed ? '' : ' (not reviewed: provider failed)'}`;
  log.info({ pass, grid, photos: indexes.length, failed: failures.length, picked: Object.keys(votes).length, ms: record.durationMs }, line);
  await deps.jobLog?.(line);
  return { kind: 'grid', pass, grid, recorded };
}

async function finalize(deps: StepDeps, meta: TriageMeta, pass1Survivors: number | undefined): Promise<StepOutcome> {
  const { store } = deps;
  const [coarse, fine] = await Promise.all([store.coarseVerdicts(meta.triageId), store.fineVerdicts(meta.triageId)]);
  const verdicts = Array.from({ length: meta.total }, (_, i) => toVerdict(i, coarse.get(i), fine.get(i)));
  const keep = finalCount(percentOf(meta), meta.total);
  const { selected, fallback, ranks } = selectFinal(verdicts, keep, meta.passes);
  await store.finish(meta.triageId, {
    status: 'completed',
    selected,
    ranks,
    fallback,
    ...(pass1Survivors !== undefined && { pass1Survivors }),
  });
  const line = `complete: ${selected.length} selected of ${meta.total}${fallback ? ' (last pass picked none: top of the ranking)' : ''}`;
  deps.log.info({ selected: selected.length, fallback }, line);
  await deps.jobLog?.(line);
  return { kind: 'done', status: 'completed' };
}

function round(n: number): number {
  return Math.round(n * 1e4) / 1e4;
}
