/**
 * `triage run <folder>`: a triage of a folder of photos through the same queue and worker the service
 * uses. The photos are linked (never copied, moved or changed) into the local storage folder, one job is
 * submitted, a worker is started for the run when none is consuming, and the picks come back as links.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, stat, symlink } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_PHOTOS } from '@triage/core';
import {
  connectRedis,
  createTriageQueue,
  describeRedis,
  eventsChannel,
  isRedisUnavailable,
  loadSelection,
  photoFates,
  prepareTriage,
  redisConnection,
  submitTriage,
  TriageStore,
  WORKER_NODE_ARGS,
  workerEnv,
  type FateSignals,
  type PreparedTriage,
  type RedisTarget,
  type SharedSettings,
  type TriageStatus,
} from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import { ensureRedis, NoRedisError, type RedisForRun } from './redis-server.js';
import { ProgressView } from './progress.js';

export const IMAGE_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.heic',
  '.heif',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
]);

export interface RunOptions {
  folder: string;
  top: string;
  criteria: string;
  passes: number;
  out?: string;
  grids: boolean;
  json: boolean;
}

export interface RunSummary {
  job_id: string;
  status: string;
  total_input: number;
  pass1_survivors: number;
  final_selected: number;
  failed: number;
  selected: string[];
  failures: { path: string; reason: string }[];
  /** Every photo's fate, in input order: its group of near-duplicates, its signals and the reason in words. */
  photos: CliPhotoFate[];
  seconds: number;
  grids: number;
  tokens: { input: number; output: number };
  cost_usd: number;
}

export interface CliPhotoFate {
  path: string;
  fate: 'selected' | 'not_selected' | 'failed';
  reason: string;
  /** The group's first photo (path), its size, and whether this photo is the group's pick. */
  group: { id: string; size: number; picked: boolean } | null;
  signals: FateSignals | null;
}

export class CliError extends Error {
  override name = 'CliError';
}

/** The triage ran but did not complete (failed, or cancelled from elsewhere): not the input's fault. */
export class TriageEndedError extends Error {
  override name = 'TriageEndedError';
}

/** The user pressed Ctrl-C and the triage was cancelled: exit 130, as a shell reports an interrupted command. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** Image files under `folder`, sorted by path so that a run is reproducible; hidden entries skipped. */
export async function listPhotos(folder: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if ((entry.isFile() || entry.isSymbolicLink()) && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase()))
        found.push(full);
    }
  }
  await walk(folder);
  return found.sort();
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-120) || 'photo';
}

/** `name.jpg`, then `name (2).jpg`, … for names already used. */
export function uniqueName(name: string, used: Set<string>): string {
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  let candidate = name;
  for (let n = 2; used.has(candidate.toLowerCase()); n++) candidate = `${stem} (${n})${ext}`;
  used.add(candidate.toLowerCase());
  return candidate;
}

const APPS = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The built entry points of the service's processes. */
export const APP_MAINS = { worker: join(APPS, 'worker/dist/main.js'), api: join(APPS, 'api/dist/server.js') };

export async function runTriage(options: RunOptions, settings: SharedSettings): Promise<RunSummary> {
  const folder = resolve(options.folder);
  const files = await folderPhotos(folder, options.folder);
  const { triageId, photos, prepared } = prepareRun(folder, files, options, settings);
  const storage = new LocalStorage({ root: settings.storageDir });
  const redisForRun = await ensureRedis(settings.redis);
  const cleanups: Cleanup[] = [() => redisForRun.stop()];
  try {
    const { store, final, seconds } = await submitAndFollow(
      { redisForRun, storage, settings, json: options.json, cleanups },
      prepared,
      photos,
    );
    const { selected, failures, fates } = await outcome(store, triageId, photos);
    if (options.out)
      await writeOut(
        resolve(options.out),
        selected,
        options.grids ? await gridFiles(storage, settings, photos[0]!.path) : [],
      );
    if (options.grids) cleanups.unshift(() => removeGrids(storage, settings, photos[0]!.path));

    return {
      job_id: triageId,
      status: final.status,
      total_input: final.total_input,
      pass1_survivors: final.pass1_survivors,
      final_selected: selected.length,
      failed: final.photos_failed,
      selected,
      failures,
      photos: fates,
      seconds,
      grids: final.grids_done,
      tokens: final.tokens,
      cost_usd: final.cost_usd,
    };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

/** Undoes one thing a run did; run in the reverse order of doing. */
type Cleanup = () => Promise<unknown>;

/** A photo of the folder and where it is linked in the local storage. */
interface RunPhoto {
  name: string;
  path: string;
  original: string;
}

/** What a run works with once Redis is there; each thing it sets up puts its undoing first in `cleanups`. */
interface RunContext {
  redisForRun: RedisForRun;
  storage: LocalStorage;
  settings: SharedSettings;
  json: boolean;
  cleanups: Cleanup[];
}

/** The photos under `folder`, or why the folder cannot be triaged (`given` is the folder as the user wrote it). */
async function folderPhotos(folder: string, given: string): Promise<string[]> {
  const info = await stat(folder).catch(() => null);
  if (!info?.isDirectory()) throw new CliError(`not a folder: ${given}`);
  const files = await listPhotos(folder);
  if (files.length === 0) throw new CliError(`no photos in ${given} (looked for ${[...IMAGE_EXTENSIONS].join(' ')})`);
  if (files.length > MAX_PHOTOS) {
    throw new CliError(`${files.length} photos in ${given}: at most ${MAX_PHOTOS} per triage; split the folder`);
  }
  return files;
}

/** The triage's id, its photos' places in the storage and the job, validated before touching anything. */
function prepareRun(folder: string, files: string[], options: RunOptions, settings: SharedSettings) {
  const triageId = randomUUID();
  const userId = 'local';
  const photos: RunPhoto[] = files.map((file, i) => ({
    name: relative(folder, file),
    path: `triage/${userId}/${triageId}/${String(i).padStart(4, '0')}-${safeName(basename(file))}`,
    original: file,
  }));
  const prepared = prepareTriage(
    {
      triageId,
      userId,
      bucket: settings.bucket,
      photos: photos.map(({ name, path }) => ({ name, path })),
      target: options.top,
      criteria: options.criteria,
      passes: options.passes,
      saveGrids: options.grids,
    },
    settings.profile,
    settings.layouts,
  );
  return { triageId, photos, prepared };
}

/**
 * Links the photos into the storage, submits the triage (starting a worker when none is consuming) and
 * follows it to its end; Ctrl-C cancels it. Throws unless it completed.
 */
async function submitAndFollow(run: RunContext, prepared: PreparedTriage, photos: RunPhoto[]) {
  const { redisForRun, settings, cleanups } = run;
  const { triageId } = prepared.request;
  const progress = new ProgressView(process.stderr, run.json);
  const { store, queue } = await openQueue(run);
  await linkPhotos(run, photos);

  const started = Date.now();
  await submitTriage(queue, store, prepared);

  if ((await queue.getWorkersCount()) === 0) {
    const worker = await startWorkerProcess(redisForRun, settings);
    cleanups.unshift(() => worker.stop());
  }

  const interrupted = cancelOnInterrupt(run, store, triageId, progress);
  const final = await follow(redisForRun.target, settings, store, triageId, (s) => progress.update(s));
  progress.done();
  const seconds = (Date.now() - started) / 1000;
  if (interrupted() && final.status === 'cancelled')
    throw new InterruptedError('interrupted: the triage was cancelled');
  if (final.status !== 'completed') {
    throw new TriageEndedError(`triage ${final.status}${final.error_message ? `: ${final.error_message}` : ''}`);
  }
  return { store, final, seconds };
}

/** The run's own Redis connection, its store and the queue it submits to. */
async function openQueue({ redisForRun, settings, cleanups }: RunContext) {
  const redis = await connectRedis(redisForRun.target, 'producer');
  cleanups.unshift(async () => redis.quit().catch(() => redis.disconnect()));
  const store = new TriageStore(redis, { prefix: settings.prefix, retentionSeconds: settings.retentionSeconds });
  const queue = createTriageQueue({
    connection: redis,
    prefix: settings.prefix,
    retentionSeconds: settings.retentionSeconds,
  });
  cleanups.unshift(() => queue.close());
  return { store, queue };
}

/** The photos linked (never copied) where the worker reads them; unlinked when the run ends. */
async function linkPhotos({ storage, settings, cleanups }: RunContext, photos: RunPhoto[]): Promise<void> {
  for (const p of photos) {
    const target = storage.filePath(settings.bucket, p.path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(p.original, target);
  }
  cleanups.unshift(() =>
    storage.remove(
      settings.bucket,
      photos.map((p) => p.path),
    ),
  );
}

/** Ctrl-C asks for the triage's cancel (once); the answer says whether it was pressed. */
function cancelOnInterrupt(
  { cleanups }: RunContext,
  store: TriageStore,
  triageId: string,
  progress: ProgressView,
): () => boolean {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) return;
    interrupted = true;
    progress.note('interrupted: cancelling the triage…');
    void store.requestCancel(triageId);
  };
  process.on('SIGINT', onSigint);
  cleanups.unshift(async () => process.off('SIGINT', onSigint));
  return () => interrupted;
}

/** The picks, the photos that could not be read and every photo's fate, by the photos' own paths. */
async function outcome(store: TriageStore, triageId: string, photos: RunPhoto[]) {
  const selection = await loadSelection(store, triageId);
  const byPath = new Map(photos.map((p) => [p.path, p.original]));
  const selected = selection.map((s) => byPath.get(s.path)!);
  const coarse = await store.coarseVerdicts(triageId);
  const failures = [...coarse]
    .filter(([, v]) => v.failure !== undefined)
    .sort(([a], [b]) => a - b)
    .map(([index, v]) => ({ path: photos[index]!.original, reason: v.failure! }));

  const fates: CliPhotoFate[] = (await photoFates(store, triageId)).map((f) => ({
    path: photos[f.index]!.original,
    fate: f.selected ? 'selected' : f.coarse?.failure || f.fine?.failure ? 'failed' : 'not_selected',
    reason: f.reason,
    group: f.group && { id: photos[f.group.id]!.original, size: f.group.size, picked: f.group.picked },
    signals: f.signals,
  }));
  return { selected, failures, fates };
}

/**
 * Follows a triage's progress by its events, with a slow poll as a safety net, until it ends. While no
 * master answers (a failover) it keeps waiting, for at most REDIS_FAILOVER_TIMEOUT_MS at a stretch.
 */
async function follow(
  target: RedisTarget,
  settings: Pick<SharedSettings, 'prefix' | 'redisFailoverTimeoutMs'>,
  store: TriageStore,
  triageId: string,
  onStatus: (status: TriageStatus) => void,
): Promise<TriageStatus> {
  const subscriber = redisConnection(target, 'subscriber', { failoverTimeoutMs: settings.redisFailoverTimeoutMs });
  subscriber.on('error', () => {}); // the poll below keeps going and reports a Redis that stays away
  let timer: NodeJS.Timeout | undefined;
  let awaySince: number | undefined;
  try {
    return await new Promise<TriageStatus>((resolvePromise, reject) => {
      // Checks overlap (an event and the poll): once the end is seen, later answers are not shown again.
      let ended = false;
      const check = async () => {
        const status = await store.status(triageId);
        if (ended) return;
        awaySince = undefined;
        if (!status) return reject(new CliError(`triage ${triageId} disappeared from Redis`));
        ended = ['completed', 'failed', 'cancelled'].includes(status.status);
        onStatus(status);
        if (ended) resolvePromise(status);
      };
      const away = (err: unknown) => {
        if (!isRedisUnavailable(err)) return reject(err instanceof Error ? err : new Error(String(err)));
        awaySince ??= Date.now();
        if (Date.now() - awaySince < settings.redisFailoverTimeoutMs) return;
        reject(
          new NoRedisError(
            `Redis (${describeRedis(target)}) stopped answering for over ${settings.redisFailoverTimeoutMs} ms (REDIS_FAILOVER_TIMEOUT_MS): ${(err as Error).message}`,
          ),
        );
      };
      const checkOrWait = () => void check().catch(away);
      subscriber.on('message', checkOrWait);
      subscriber.subscribe(eventsChannel(settings.prefix, triageId)).then(checkOrWait, away);
      timer = setInterval(checkOrWait, 1000);
    });
  } finally {
    clearInterval(timer);
    subscriber.disconnect();
  }
}

interface WorkerProcess {
  stop(): Promise<void>;
}

async function startWorkerProcess(redis: RedisForRun, settings: SharedSettings): Promise<WorkerProcess> {
  const logPath = join(settings.storageDir, '..', 'worker.log');
  await mkdir(dirname(logPath), { recursive: true });
  const logStream = createWriteStream(logPath, { flags: 'a' });
  await new Promise((r) => logStream.once('open', r));
  // The worker's start settings (Node flags, malloc) measured in docs/benchmarks.md; the environment's win.
  const child: ChildProcess = spawn(process.execPath, [...WORKER_NODE_ARGS, APP_MAINS.worker], {
    env: workerEnv({
      ...process.env,
      ...redis.env,
      STORAGE_DIR: settings.storageDir,
      TRIAGE_PREFIX: settings.prefix,
    }),
    stdio: ['ignore', logStream, logStream],
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  return {
    async stop() {
      if (!exited) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await done;
      }
      logStream.end();
    },
  };
}

async function writeOut(out: string, selected: string[], grids: { name: string; file: string }[]): Promise<void> {
  await mkdir(out, { recursive: true });
  const used = new Set((await readdir(out)).map((n) => n.toLowerCase()));
  for (const original of selected) {
    await symlink(original, join(out, uniqueName(basename(original), used)));
  }
  if (grids.length > 0) {
    await mkdir(join(out, 'grids'), { recursive: true });
    for (const g of grids) await copyFile(g.file, join(out, 'grids', g.name));
  }
}

function gridsFolder(storage: LocalStorage, settings: SharedSettings, anyPhotoPath: string): string {
  return join(dirname(storage.filePath(settings.bucket, anyPhotoPath)), 'grids');
}

async function gridFiles(storage: LocalStorage, settings: SharedSettings, anyPhotoPath: string) {
  const dir = gridsFolder(storage, settings, anyPhotoPath);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.jpg')).sort();
  return names.map((name) => ({ name, file: join(dir, name) }));
}

async function removeGrids(storage: LocalStorage, settings: SharedSettings, anyPhotoPath: string): Promise<void> {
  const prefix = dirname(anyPhotoPath);
  const files = await gridFiles(storage, settings, anyPhotoPath);
  await storage.remove(
    settings.bucket,
    files.map((f) => `${prefix}/grids/${f.name}`),
  );
}
