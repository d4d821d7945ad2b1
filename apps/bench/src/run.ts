/**
 * One benchmark job through the real worker: `node apps/worker/dist/main.js` as its own process on real
 * Redis (a private key prefix, removed afterwards), the local storage driver and the offline provider.
 * The photos are linked into the storage folder and one triage job is submitted; the worker's memory is
 * sampled from /proc/<pid>/status and the bytes it read from /proc/<pid>/io, never from inside V8.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OFFLINE_PROFILE, type VisionProfile } from '@triage/core';
import {
  prepareTriage,
  submitTriage,
  type TriageStore,
  WORKER_NODE_ARGS,
  workerEnv,
  type GridRecord,
  type TriageStatus,
} from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import type { CorpusFile } from './corpus.js';
import { openPrefix, queueOf, removePrefix, untilWorkersRegister } from './prefix.js';
import { bytesReadBy, memoryOf, MemorySampler, stopChild } from './proc.js';
import { mb, sleep } from './util.js';

const BUCKET = 'photos';

/** What the job needs of a photo file. */
export type RunPhoto = Pick<CorpusFile, 'name' | 'path' | 'size'>;

export interface RunOptions<F extends RunPhoto = CorpusFile> {
  repoRoot: string;
  redisUrl: string;
  /** Where the local driver's folder is (links to the corpus go there). */
  storageDir: string;
  /** The job's photos, in order (the corpus cycled to the job size). */
  photos: readonly F[];
  /** The job's target; default 10%. */
  target?: string;
  /** The profile grids are planned for; default the offline provider's (give the model's with VISION_PROVIDER=anthropic). */
  profile?: VisionProfile;
  /** STORAGE_READ_LATENCY_MS for the worker. */
  latencyMs: number;
  passes: 1 | 2;
  timeoutMs: number;
  log(line: string): void;
  /** Node flags of the worker; default WORKER_NODE_ARGS, as every start script uses. */
  nodeArgs?: readonly string[];
  /** Extra environment of the worker (e.g. malloc settings under test), over workerEnv()'s defaults. */
  env?: Record<string, string | undefined>;
}

export interface PassFigures<F extends RunPhoto = CorpusFile> {
  grids: number;
  photos: number;
  ms: number;
  msPerPhoto: number;
  /** File bytes of the photos this pass read, per photo (what a whole-file read would cost). */
  fileBytesPerPhoto: number;
  /** Bytes the worker says it read from storage (GridRecord.bytesRead), per photo; null if not recorded. */
  bytesReadPerPhoto: number | null;
  /** Where the thumbnails came from (GridRecord.sources summed), e.g. {embedded: 160, original: 40}. */
  sources: Record<string, number>;
  /** Each photo's thumbnail time (GridRecord.readMs) with its corpus file; `square`: the fine pass measured it at 1:1 too. */
  reads: { file: F; ms: number; square: boolean }[];
  /** The pass's time outside the photos' thumbnails (waiting for storage, grid, judge, Redis), per photo. */
  overheadMsPerPhoto: number;
}

export interface RunResult<F extends RunPhoto = CorpusFile> {
  status: TriageStatus['status'];
  photos: number;
  wallMs: number;
  photosPerSecond: number;
  /** Worker's peak RSS (VmHWM) over the whole job, and its RSS when idle before the job. */
  peakRss: number;
  idleRss: number;
  /** rchar of the worker during the job (files, Redis replies), per photo read (coarse + fine). */
  bytesReadPerPhoto: number;
  coarse: PassFigures<F>;
  fine: PassFigures<F> | null;
  failed: number;
  selected: number;
  /** The picks, by photo index, best first. */
  selectedIndexes: number[];
  samples: number;
}

export async function runWorkerJob<F extends RunPhoto>(options: RunOptions<F>): Promise<RunResult<F>> {
  const triageId = randomUUID();
  const onRedis = openPrefix(options.redisUrl, `bench-${randomUUID().slice(0, 8)}`);
  const queue = queueOf(onRedis);
  const jobDir = `bench/${triageId}`;
  const worker = startWorker(options, onRedis.prefix);
  try {
    const stagedPhotos = await linkPhotos(options, jobDir);
    await untilWorkersRegister(queue, 1, 20_000, {
      exited: () => (worker.child.exitCode !== null ? `worker exited at start:\n${worker.stderr()}` : null),
      timedOut: () => `worker did not register within 20 s:\n${worker.stderr()}`,
    });
    await sleep(500);
    const pid = worker.child.pid!;
    const idleRss = memoryOf(pid)?.rss ?? 0;
    const readBefore = bytesReadBy(pid) ?? 0;
    const sampler = new MemorySampler(pid, 50);
    const started = performance.now();
    const prepared = prepareTriage(
      {
        triageId,
        userId: 'bench',
        bucket: BUCKET,
        photos: stagedPhotos,
        target: options.target ?? '10%',
        passes: options.passes,
      },
      options.profile ?? OFFLINE_PROFILE,
      {},
    );
    await submitTriage(queue, onRedis.store, prepared);
    options.log(
      `worker ${pid}: job ${triageId} submitted (${options.photos.length} photos, latency ${options.latencyMs} ms)`,
    );
    const status = await untilJobEnds(options, onRedis.store, triageId, { worker, sampler, started });
    const wallMs = performance.now() - started;
    sampler.stop();
    const readAfter = bytesReadBy(pid) ?? readBefore;
    return await jobFigures(options, onRedis.store, triageId, {
      status,
      wallMs,
      peakRss: sampler.peak(),
      idleRss,
      bytesRead: readAfter - readBefore,
      samples: sampler.samples,
    });
  } finally {
    await stopChild(worker.child, worker.exited);
    await removePrefix(onRedis, queue);
    await rm(join(options.storageDir, BUCKET, jobDir), { recursive: true, force: true });
  }
}

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  /** The last 4,000 characters the worker wrote to stderr. */
  stderr(): string;
}

function startWorker(options: RunOptions<RunPhoto>, prefix: string): WorkerProcess {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? WORKER_NODE_ARGS), join(options.repoRoot, 'apps/worker/dist/main.js')],
    {
      // The worker's own start settings (Node flags, malloc), as the start scripts give them.
      env: definedOnly(
        workerEnv({
          PATH: process.env.PATH ?? '',
          REDIS_URL: options.redisUrl,
          TRIAGE_PREFIX: prefix,
          STORAGE_DIR: options.storageDir,
          // Only when set: the shared settings refuse an explicit 0 (see the report).
          ...(options.latencyMs > 0 && { STORAGE_READ_LATENCY_MS: String(options.latencyMs) }),
          LOG_LEVEL: 'warn',
          ...options.env,
        }),
      ),
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited, stderr: () => stderr };
}

/** The job's photos linked into the storage folder, in order. */
async function linkPhotos(options: RunOptions<RunPhoto>, jobDir: string): Promise<{ name: string; path: string }[]> {
  const storage = new LocalStorage({ root: options.storageDir });
  const stagedPhotos = [];
  for (const [i, file] of options.photos.entries()) {
    const path = `${jobDir}/${String(i).padStart(5, '0')}-${file.name}`;
    const target = storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(file.path, target);
    stagedPhotos.push({ name: file.name, path });
  }
  return stagedPhotos;
}

/** Polls the job's status until it has ended; logs each change of the grid count. */
async function untilJobEnds(
  options: RunOptions<RunPhoto>,
  store: TriageStore,
  triageId: string,
  run: { worker: WorkerProcess; sampler: MemorySampler; started: number },
): Promise<TriageStatus> {
  let lastLine = '';
  for (;;) {
    const status = await store.status(triageId);
    if (status && ['completed', 'failed', 'cancelled'].includes(status.status)) return status;
    if (run.worker.child.exitCode !== null) throw new Error(`worker died mid-job:\n${run.worker.stderr()}`);
    if (performance.now() - run.started > options.timeoutMs)
      throw new Error(`job not done within ${options.timeoutMs / 1000} s`);
    const line = status ? `grids ${status.grids_done}/${status.grids_total}` : '';
    if (line !== lastLine) {
      options.log(
        `  ${line} (${Math.round((performance.now() - run.started) / 1000)} s, RSS ${mb(run.sampler.peakRss)} MB peak)`,
      );
      lastLine = line;
    }
    await sleep(200);
  }
}

/** The ended job's figures: each pass's from its grid records, the picks, and the worker's memory and reads. */
async function jobFigures<F extends RunPhoto>(
  options: RunOptions<F>,
  store: TriageStore,
  triageId: string,
  run: { status: TriageStatus; wallMs: number; peakRss: number; idleRss: number; bytesRead: number; samples: number },
): Promise<RunResult<F>> {
  const { photos } = options;
  const records = await store.gridRecords(triageId);
  const coarse = passFigures(
    records.filter((r) => r.pass === 'coarse'),
    photos,
  );
  const fineRecords = records.filter((r) => r.pass === 'fine');
  // Photos whose fine verdict carries the full-size square's figures (Thumbnail.detail).
  const squares = new Set([...(await store.fineVerdicts(triageId))].filter(([, v]) => v.detail).map(([i]) => i));
  const fine = fineRecords.length > 0 ? passFigures(fineRecords, photos, squares) : null;
  const photosRead = coarse.photos + (fine?.photos ?? 0);
  return {
    status: run.status.status,
    photos: photos.length,
    wallMs: run.wallMs,
    photosPerSecond: photos.length / (run.wallMs / 1000),
    peakRss: run.peakRss,
    idleRss: run.idleRss,
    bytesReadPerPhoto: run.bytesRead / Math.max(1, photosRead),
    coarse,
    fine,
    failed: run.status.photos_failed,
    selected: run.status.final_selected,
    selectedIndexes: await store.selected(triageId),
    samples: run.samples,
  };
}

function passFigures<F extends RunPhoto>(
  records: readonly GridRecord[],
  files: readonly F[],
  squares?: ReadonlySet<number>,
): PassFigures<F> {
  const sizeOf = (index: number) => files[index]!.size;
  const photos = records.reduce((n, r) => n + r.photos.length, 0);
  const reads = records.flatMap((r) =>
    r.photos.map((index, k) => ({ file: files[index]!, ms: r.readMs?.[k] ?? 0, square: squares?.has(index) ?? false })),
  );
  const readMs = reads.reduce((n, r) => n + r.ms, 0);
  const ms = records.reduce((n, r) => n + r.durationMs, 0);
  const bytes = records.reduce((n, r) => n + r.photos.reduce((m, i) => m + sizeOf(i), 0), 0);
  const withBytes = records.filter((r) => typeof (r as { bytesRead?: unknown }).bytesRead === 'number');
  const bytesRead = withBytes.reduce((n, r) => n + (r as { bytesRead: number }).bytesRead, 0);
  const sources: Record<string, number> = {};
  for (const r of records) {
    for (const [k, v] of Object.entries((r as { sources?: Record<string, number> }).sources ?? {}))
      sources[k] = (sources[k] ?? 0) + v;
  }
  return {
    grids: records.length,
    photos,
    ms,
    msPerPhoto: ms / Math.max(1, photos),
    fileBytesPerPhoto: bytes / Math.max(1, photos),
    bytesReadPerPhoto: withBytes.length === records.length && photos > 0 ? bytesRead / photos : null,
    sources,
    reads,
    overheadMsPerPhoto: (ms - readMs) / Math.max(1, photos),
  };
}

/** An environment without the variables set to undefined (to leave one of the defaults out). */
function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}
