/**
 * The two kinds of step of a triage. A grid step (one BullMQ grid job) builds exactly one grid — reads its
 * photos one at a time and composes it while holding the process's image gate, then asks the provider and
 * records the grid atomically (grid-step.ts). The triage's own step says what comes next: the grids of the
 * current pass not yet recorded, or the pass transition — with the job-wide near-duplicate groups, computed
 * once the coarse pass ends — or the final ranking. Both are idempotent: a grid already recorded is never
 * sent to the provider again, so a step redelivered after a crash simply does what is still undone.
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
import { WORKER_SETTINGS } from './config.js';
import type { Gate } from './gate.js';
import {
  buildRecord,
  buildVerdicts,
  composeImage,
  judgeGrid,
  readGrid,
  sceneHints,
  type ReadGrid,
} from './grid-step.js';

/** The image work the worker needs; the default is @triage/images (the only code that imports sharp). */
export interface ImageOps {
  /** `detail`: also measure focus and noise at full resolution (Thumbnail.detail), always or if the thumbnail leaves it open. */
  thumbnail(path: string, size: number, options?: ThumbnailOptions): Promise<Thumbnail>;
  thumbnailFromEmbedded(
    embedded: EmbeddedThumbnail,
    size: number,
    options?: { signal?: AbortSignal },
  ): Promise<Thumbnail>;
  /** Undefined when the DC decoder leaves the file to libvips. */
  thumbnailFromDcScans(
    head: Uint8Array,
    size: number,
    options?: { orientation?: number; signal?: AbortSignal },
  ): Promise<Thumbnail | undefined>;
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
  /** Photos of one near-duplicate group the final cut keeps at most (KEEP_PER_SCENE); its default when unset. */
  keepPerScene?: number;
  /** The process's image gate (one grid built at a time); without one, each step builds at once. */
  gate?: Gate;
}

export type StepOutcome =
  /** `storageAnswers`: storage served one of the grid's photos, or answered a probe after it failed them all. */
  | { kind: 'grid'; pass: Pass; grid: number; recorded: boolean; storageAnswers: boolean }
  | { kind: 'done'; status: 'completed' | 'failed' | 'cancelled' };

/** What a triage's own step found to do: grids of a pass to queue, or nothing more (it has ended). */
export type NextWork =
  | { kind: 'grids'; meta: TriageMeta; pass: Pass; grids: number[] }
  | { kind: 'done'; status: 'completed' | 'failed' | 'cancelled' };

export class TriageNotFoundError extends Error {
  override name = 'TriageNotFoundError';
}

/** The triage's state, started when pending, or how it has ended (a cancel asked for ends it here). */
async function current(
  store: TriageStore,
  triageId: string,
): Promise<TriageMeta | Extract<NextWork, { kind: 'done' }>> {
  const meta = await store.meta(triageId);
  if (!meta) throw new TriageNotFoundError(`triage ${triageId} has no record in Redis (expired or deleted)`);
  if (meta.status === 'completed' || meta.status === 'failed' || meta.status === 'cancelled') {
    return { kind: 'done', status: meta.status };
  }
  if (meta.cancelRequested) {
    await store.finish(triageId, { status: 'cancelled' });
    return { kind: 'done', status: 'cancelled' };
  }
  if (meta.status !== 'pending') return meta;
  await store.start(triageId);
  return reload(store, triageId);
}

/**
 * The triage's own step: the grids of the current pass still to record, or — once a pass has all its grids —
 * the fine pass begun (groups, survivors, their order) or the final ranking made.
 */
export async function nextWork(deps: StepDeps, triageId: string): Promise<NextWork> {
  const { store } = deps;
  let meta = await current(store, triageId);
  if ('kind' in meta) return meta;
  if (meta.phase === 'coarse_pass') {
    const missing = await unrecorded(store, triageId, 'coarse', meta.plan.coarseSizes.length);
    if (missing.length > 0) return { kind: 'grids', meta, pass: 'coarse', grids: missing };
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
  if (meta.phase === 'fine_pass') {
    const missing = await unrecorded(store, triageId, 'fine', meta.fineSizes.length);
    if (missing.length > 0) return { kind: 'grids', meta, pass: 'fine', grids: missing };
  }
  return finalize(deps, meta, undefined);
}

async function unrecorded(store: TriageStore, triageId: string, pass: Pass, count: number): Promise<number[]> {
  const recorded = await store.recordedGrids(triageId, pass);
  return Array.from({ length: count }, (_, g) => g).filter((g) => !recorded.has(g));
}

/**
 * One grid job: builds, judges and records grid `grid` of `pass`, unless the triage has ended, has moved past
 * that pass, or the grid is recorded already (a redelivered job): then nothing is read or asked.
 */
export async function runGridStep(
  deps: StepDeps,
  triageId: string,
  pass: Pass,
  grid: number,
  signal: AbortSignal,
): Promise<StepOutcome> {
  const meta = await current(deps.store, triageId);
  if ('kind' in meta) return meta;
  const phase = pass === 'coarse' ? 'coarse_pass' : 'fine_pass';
  if (meta.phase !== phase || (await deps.store.recordedGrids(triageId, pass)).has(grid)) {
    return { kind: 'grid', pass, grid, recorded: false, storageAnswers: false };
  }
  return runGrid(deps, meta, pass, grid, signal);
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

async function runGrid(
  deps: StepDeps,
  meta: TriageMeta,
  pass: Pass,
  grid: number,
  signal: AbortSignal,
): Promise<StepOutcome> {
  let started = performance.now();
  const build = async () => {
    started = performance.now(); // a grid's time is its own work, not its wait for the gate
    const read = await readGrid(deps, meta, pass, grid, failureReason, signal);
    return { read, image: await composeImage(deps, read, signal) };
  };
  const ask = async (read: ReadGrid, image: Buffer) => {
    const hints = pass === 'fine' ? await sceneHints(deps.store, meta.triageId, read) : undefined;
    return judgeGrid(deps, meta, read, image, hints, percentOf(meta), signal);
  };
  const imageWork = <T>(work: () => Promise<T>): Promise<T> => (deps.gate ? deps.gate.run(work, signal) : work());
  // The image work holds the gate; a remote model's answer is awaited without it, while the next grid is
  // built. A judge that decodes the grid here (the offline one) is image work too: it keeps the gate.
  const { read, judged } = deps.vision.local
    ? await imageWork(async () => {
        const built = await build();
        return { read: built.read, judged: await ask(built.read, built.image) };
      })
    : await imageWork(build).then(async (built) => ({ read: built.read, judged: await ask(built.read, built.image) }));
  const { verdicts, votes } = buildVerdicts(read, judged.answer);
  const record = buildRecord(read, judged, votes, performance.now() - started);
  const recorded = await deps.store.recordGrid(
    meta.triageId,
    record,
    verdicts,
    pass === 'coarse' ? read.failures.length : 0,
  );
  const picked = Object.keys(votes).length;
  const line =
    `${pass} grid ${grid + 1}/${read.gridCount}: ${read.indexes.length} photos, ${read.failures.length} unreadable, ` +
    `${picked} picked of ${judged.asked} asked${judged.answer.reviewed ? '' : ' (not reviewed: provider failed)'}`;
  deps.log.info(
    { pass, grid, photos: read.indexes.length, failed: read.failures.length, picked, ms: record.durationMs },
    line,
  );
  await deps.jobLog?.(line);
  return { kind: 'grid', pass, grid, recorded, storageAnswers: await storageAnswers(deps, meta, read, signal) };
}

/**
 * Whether storage answers after this grid's reads: it served one of its photos, or, past an outage's limit
 * (where failed reads make no probe), a probe after every photo failed says so.
 */
async function storageAnswers(deps: StepDeps, meta: TriageMeta, read: ReadGrid, signal: AbortSignal): Promise<boolean> {
  if (read.failures.length < read.indexes.length) return true;
  if (deps.storageOutage !== 'fail' || !deps.storage.reachable) return false;
  return deps.storage.reachable(meta.bucket, { signal });
}

async function finalize(
  deps: StepDeps,
  meta: TriageMeta,
  pass1Survivors: number | undefined,
): Promise<Extract<NextWork, { kind: 'done' }>> {
  const { store } = deps;
  const [coarse, fine, recordedGroups] = await Promise.all([
    store.coarseVerdicts(meta.triageId),
    store.fineVerdicts(meta.triageId),
    store.groups(meta.triageId),
  ]);
  const groups = recordedGroups ?? sceneGroups(meta.total, coarse);
  const flaws = jobFlaws(groups, signalArray(meta.total, coarse), signalArray(meta.total, fine));
  const verdicts = Array.from({ length: meta.total }, (_, i) => ({
    ...toVerdict(i, coarse.get(i), fine.get(i)),
    flawed: flaws[i] !== null,
  }));
  const keep = finalCount(percentOf(meta), meta.total);
  const { selected, fallback, ranks } = selectFinal(verdicts, keep, meta.passes, {
    groups,
    perGroup: deps.keepPerScene ?? WORKER_SETTINGS.keepPerScene.default,
  });
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
      return v && v.failure === undefined && v.signature && v.layout
        ? { signature: v.signature, layout: v.layout, captured: v.captured }
        : null;
    }),
  );
}
