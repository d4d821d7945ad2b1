/**
 * One grid of a triage, in four parts that each do one thing and can be tried with fakes: read the grid's
 * photos (one at a time), judge it (compose, ask the provider, with what the worker measured and the
 * near-duplicate groups it knows of), build the photos' verdicts, build the grid's record. runStep records
 * the result atomically.
 */
import {
  coarsePercent,
  finePercent,
  fitGeometry,
  gridStarts,
  jobFlaws,
  labelsFor,
  picksForGrid,
  withSurvivingMates,
  type GridGeometry,
  type Pass,
  type PhotoSignals,
} from '@triage/core';
import type { GridCell, Thumbnail } from '@triage/images';
import {
  gridPath,
  type CoarseVerdict,
  type FineVerdict,
  type GridRecord,
  type PhotoFailure,
  type TriageMeta,
  type TriageStore,
} from '@triage/queue';
import { NO_USAGE, type CellHint, type GridAnswer } from '@triage/vision';
import { hostname } from 'node:os';
import { readThumbnails, type PhotoRead } from './photos.js';
import type { StepDeps } from './step.js';

const WORKER_ID = `${hostname()}:${process.pid}`;

export interface ReadGrid {
  pass: Pass;
  grid: number;
  /** Grids in this pass. */
  gridCount: number;
  /** Position of the grid's first photo in the pass. */
  start: number;
  indexes: number[];
  labels: string[];
  geometry: GridGeometry;
  reads: PhotoRead[];
  failures: PhotoFailure[];
  /** Fine pass: the job's near-duplicate groups, as read before the photos (null when none were recorded). */
  groups?: (number | null)[] | null;
}

export interface Judged {
  answer: GridAnswer;
  /** How many picks the provider was asked for. */
  asked: number;
}

/** What the provider is told beyond the image: cells of the same scene, and flaws a thumbnail cannot show. */
export interface SceneHints {
  sameScene: string[][];
  cells: Record<string, CellHint>;
}

/** Reads one grid's photos, one at a time: only this grid's thumbnails are ever held, never an original's pixels. */
export async function readGrid(
  deps: Pick<StepDeps, 'store' | 'storage' | 'images' | 'storageTransforms' | 'storageOutage'>,
  meta: TriageMeta,
  pass: Pass,
  grid: number,
  describe: (error: unknown) => string,
  signal: AbortSignal,
): Promise<ReadGrid> {
  const sizes = pass === 'coarse' ? meta.plan.coarseSizes : meta.fineSizes;
  const starts = gridStarts(sizes);
  const [start, end] = [starts[grid]!, starts[grid + 1]!];
  const indexes =
    pass === 'coarse'
      ? Array.from({ length: end - start }, (_, i) => start + i)
      : await deps.store.survivors(meta.triageId, start, end);
  const photos = await deps.store.photos(meta.triageId, indexes);
  const geometry = fitGeometry(meta.plan[pass], indexes.length);
  const fine = pass === 'fine' ? await detailWanted(deps.store, meta, indexes) : undefined;
  const reads = await readThumbnails(
    {
      storage: deps.storage,
      images: deps.images,
      bucket: meta.bucket,
      pass,
      size: geometry.thumb,
      transforms: deps.storageTransforms ?? false,
      signal,
      outage: deps.storageOutage ?? 'pause',
      ...(fine && { detail: fine.detail }),
    },
    photos,
    describe,
  );
  const failures = reads.flatMap((r, i) => (r.thumb ? [] : [{ index: indexes[i]!, reason: r.reason ?? 'unreadable' }]));
  const labels = labelsFor(indexes.length, geometry.cols);
  return {
    pass,
    grid,
    gridCount: sizes.length,
    start,
    indexes,
    labels,
    geometry,
    reads,
    failures,
    ...(fine && { groups: fine.groups }),
  };
}

/**
 * Which of a fine grid's photos are worth the full-size square (a second decode down to its bottom edge): those with
 * another survivor of their scene, anywhere in the pass, always; the rest only if their thumbnail leaves
 * noise open (see ReadContext.detail).
 */
async function detailWanted(
  store: Pick<TriageStore, 'groups' | 'survivors'>,
  meta: TriageMeta,
  indexes: readonly number[],
): Promise<{ groups: (number | null)[] | null; detail: ('always' | 'if-unsure')[] }> {
  const total = meta.fineSizes.reduce((a, b) => a + b, 0);
  const [groups, survivors] = await Promise.all([
    store.groups(meta.triageId),
    store.survivors(meta.triageId, 0, total),
  ]);
  const mated = withSurvivingMates(survivors, groups ?? []);
  return { groups, detail: indexes.map((i) => (mated.has(i) ? 'always' : 'if-unsure')) };
}

/**
 * The fine pass's hints: which cells show the same scene (the job-wide groups recorded when the coarse pass
 * ended) and each cell's flaw, judged against its whole group (mates outside this grid by their coarse
 * signals). Undefined before groups exist.
 */
export async function sceneHints(
  store: Pick<TriageStore, 'groups' | 'coarseVerdictsOf'>,
  triageId: string,
  read: ReadGrid,
): Promise<SceneHints | undefined> {
  const groups = read.groups !== undefined ? read.groups : await store.groups(triageId);
  if (!groups) return undefined;
  const present = new Set(read.indexes.map((i) => groups[i]).filter((g): g is number => g !== null && g !== undefined));
  const mates = groups.flatMap((g, i) => (g !== null && present.has(g) ? [i] : []));
  const coarse = await store.coarseVerdictsOf(triageId, [...new Set([...mates, ...read.indexes])]);
  const coarseSignals: (PhotoSignals | null)[] = groups.map(() => null);
  for (const [i, v] of coarse)
    if (v.failure === undefined && v.sharpness !== undefined) coarseSignals[i] = signalsOf(v);
  const fineSignals: (PhotoSignals | null)[] = groups.map(() => null);
  read.indexes.forEach((index, k) => {
    const thumb = read.reads[k]!.thumb;
    if (thumb) fineSignals[index] = { ...thumb.signals, ...(thumb.detail && { detail: thumb.detail }) };
    else coarseSignals[index] = null;
  });
  const flaws = jobFlaws(groups, coarseSignals, fineSignals);
  const byGroup = new Map<number, string[]>();
  const cells: Record<string, CellHint> = {};
  read.indexes.forEach((index, k) => {
    if (!read.reads[k]!.thumb) return;
    cells[read.labels[k]!] = { flaw: flaws[index] ?? null };
    const g = groups[index];
    if (g !== null && g !== undefined) byGroup.set(g, [...(byGroup.get(g) ?? []), read.labels[k]!]);
  });
  return { sameScene: [...byGroup.values()].filter((labels) => labels.length > 1), cells };
}

function signalsOf(v: CoarseVerdict | FineVerdict): PhotoSignals {
  return {
    sharpness: v.sharpness ?? 0,
    exposure: v.exposure ?? 1,
    ...(v.noise !== undefined && { noise: v.noise }),
    ...(v.brightness !== undefined && { brightness: v.brightness }),
    ...(v.clippedBright !== undefined && { clippedBright: v.clippedBright }),
    ...(v.clippedDark !== undefined && { clippedDark: v.clippedDark }),
    ...('detail' in v && v.detail && { detail: v.detail }),
  };
}

/** Composes the grid's image: the last piece of image work of a grid, done while it holds the image gate. */
export async function composeImage(
  deps: Pick<StepDeps, 'images'>,
  read: ReadGrid,
  signal: AbortSignal,
): Promise<Buffer> {
  const cells: GridCell[] = read.reads.map((r) =>
    r.thumb ? { thumb: r.thumb.rgb } : { thumb: null, reason: r.reason ?? 'unreadable' },
  );
  signal.throwIfAborted();
  return deps.images.composeGrid(read.geometry, cells, read.labels);
}

/** Asks the provider about the composed grid (kept in storage when the job asked); a failed call leaves it unreviewed. */
export async function judgeGrid(
  deps: Pick<StepDeps, 'store' | 'storage' | 'vision' | 'log'>,
  meta: TriageMeta,
  read: ReadGrid,
  image: Buffer,
  hints: SceneHints | undefined,
  percent: number,
  signal: AbortSignal,
): Promise<Judged> {
  const { pass, grid, labels, geometry, reads } = read;
  if (meta.saveGrids)
    await deps.storage.write(meta.bucket, gridPath(meta, pass, grid), image, { contentType: 'image/jpeg' });
  const readable = read.indexes.length - read.failures.length;
  const share =
    pass === 'coarse' ? coarsePercent(percent) : finePercent(percent, meta.total, meta.pass1Survivors ?? meta.total);
  const asked = Math.min(readable, picksForGrid(share, read.indexes.length, read.start));
  if (readable === 0) return { asked, answer: { picks: [], votes: {}, reviewed: true, models: [], usage: NO_USAGE } };
  await deps.store.countAttempt(meta.triageId, `${pass}:${grid}`);
  const unreadable = labels.filter((_, i) => reads[i]!.thumb === null);
  try {
    const answer = await deps.vision.judge({
      image,
      geometry,
      labels,
      pass,
      criteria: meta.criteria,
      pick: asked,
      unreadable,
      signal,
      ...(hints && { sameScene: hints.sameScene, cells: hints.cells }),
    });
    return { asked, answer };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    deps.log.warn({ err, pass, grid }, 'vision provider failed: the grid survives this pass unreviewed');
    return {
      asked,
      answer: { picks: [], votes: {}, reviewed: false, error: (err as Error).message, models: [], usage: NO_USAGE },
    };
  }
}

/** Each photo's verdict for this pass, and the votes of the picked ones (by photo index). */
export function buildVerdicts(
  read: ReadGrid,
  answer: GridAnswer,
): { verdicts: Map<number, CoarseVerdict | FineVerdict>; votes: Record<string, number> } {
  const failureOf = new Map(read.failures.map((f) => [f.index, f.reason]));
  const votes: Record<string, number> = {};
  const verdicts = new Map<number, CoarseVerdict | FineVerdict>();
  read.labels.forEach((label, i) => {
    const index = read.indexes[i]!;
    const thumb = read.reads[i]!.thumb;
    // A placeholder can never be picked, whatever an answer says.
    const v = thumb ? (answer.votes[label] ?? 0) : 0;
    if (v > 0) votes[String(index)] = v;
    const failure = failureOf.get(index);
    // A photo read in the coarse pass but not now is not lost: it stays in, unreviewed.
    const reviewed = read.pass === 'coarse' ? answer.reviewed : answer.reviewed && thumb !== null;
    verdicts.set(index, {
      votes: v,
      reviewed,
      quality: thumb ? round(thumb.signals.quality) : null,
      ...(thumb && recordedSignals(thumb, read.pass)),
      ...(read.pass === 'coarse' && read.reads[i]!.captured !== undefined && { captured: read.reads[i]!.captured }),
      ...(failure !== undefined && { failure }),
    });
  });
  return { verdicts, votes };
}

function recordedSignals(thumb: Thumbnail, pass: Pass): Partial<CoarseVerdict & FineVerdict> {
  const s = thumb.signals;
  const common = {
    sharpness: round(s.sharpness),
    exposure: round(s.exposure),
    noise: round(s.noise),
    brightness: round(s.brightness),
    clippedBright: round(s.clippedBright),
    clippedDark: round(s.clippedDark),
  };
  if (pass === 'coarse') return { ...common, hash: s.hash, layout: s.layout, signature: s.signature };
  return {
    ...common,
    ...(thumb.detail && { detail: { sharpness: round(thumb.detail.sharpness), noise: round(thumb.detail.noise) } }),
  };
}

export function buildRecord(
  read: ReadGrid,
  judged: Judged,
  votes: Record<string, number>,
  durationMs: number,
): GridRecord {
  const { answer } = judged;
  const sources: Record<string, number> = {};
  for (const r of read.reads) if (r.source) sources[r.source] = (sources[r.source] ?? 0) + 1;
  const errorText = answer.error ?? answer.models.find((m) => m.error)?.error;
  return {
    pass: read.pass,
    grid: read.grid,
    photos: read.indexes,
    labels: read.labels,
    votes,
    reviewed: answer.reviewed,
    ...(errorText !== undefined && { error: errorText }),
    failures: read.failures,
    usage: answer.usage,
    asked: judged.asked,
    models: answer.models.map((m) => m.model),
    durationMs: Math.round(durationMs),
    finishedAt: Date.now(),
    worker: WORKER_ID,
    bytesRead: read.reads.reduce((sum, r) => sum + r.bytes, 0),
    sources,
    readMs: read.reads.map((r) => Math.round(r.ms * 10) / 10),
  };
}

function round(n: number): number {
  return Math.round(n * 1e4) / 1e4;
}
