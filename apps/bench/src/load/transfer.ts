/**
 * Upload and download memory: N × 8 MB multipart POST /start, streamed from disk (fs.openAsBlob in a
 * FormData), then the ZIP of that job with N large picks, each through a fresh API process whose peak RSS
 * (VmHWM, reset once it is up) is the transfer's own.
 */
import { createWriteStream, openAsBlob, readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { memoryOf, MemorySampler, resetPeak } from '../proc.js';
import { queueOf } from '../prefix.js';
import { mb, sleep } from '../util.js';
import { samplePhotos } from './photos.js';
import { startApi, type Api, type Proc } from './processes.js';
import { API_PREFIX, openService, signHs256, type LoadContext, type Service } from './service.js';
import { loadWatch, type LoadSnapshot } from './stats.js';

const UPLOAD_BYTES = 8 * 1024 * 1024;

/**
 * N files of 8 MiB each: a small real JPEG (so the API's type sniffing and, later, the worker see an image)
 * followed by filler up to 8 MiB. The API streams bytes; what they show does not change its memory.
 */
export async function uploadFiles(ctx: LoadContext, count: number): Promise<string[]> {
  const dir = join(ctx.workDir, 'upload-8mb');
  await mkdir(dir, { recursive: true });
  const photos = await samplePhotos(ctx, 100);
  const readable = photos.filter((p) => p.kind !== 'unreadable');
  const paths: string[] = [];
  const filler = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < count; i++) {
    const path = join(dir, `upload-${String(i).padStart(4, '0')}.jpg`);
    paths.push(path);
    const exists = await stat(path).then(
      (s) => s.size === UPLOAD_BYTES,
      () => false,
    );
    if (exists) continue;
    const head = readFileSync(readable[i % readable.length]!.path);
    const out = createWriteStream(path);
    out.write(head);
    let left = UPLOAD_BYTES - head.length;
    for (let k = 0; left > 0; k++) {
      filler.fill((i * 31 + k) & 0xff);
      const n = Math.min(left, filler.length);
      if (!out.write(filler.subarray(0, n))) await once(out, 'drain');
      left -= n;
    }
    out.end();
    await once(out, 'finish');
  }
  return paths;
}

export interface MemoryRun {
  label: string;
  files: number;
  bytes: number;
  ms: number;
  status: number;
  detail: string;
  apiIdleRss: number;
  /** VmHWM of the process before the transfer (its start-up peak), then reset to the current RSS. */
  apiStartupPeak: number;
  /** VmHWM after the reset: the peak of the transfer itself (or since start, when the reset was refused). */
  apiPeakRss: number;
  peakReset: boolean;
  load: LoadSnapshot;
}

export interface TransferResult {
  upload: MemoryRun;
  download: MemoryRun | null;
}

/**
/**
 * A fresh API process takes N × 8 MiB as one multipart POST /start (a FormData of file-backed Blobs: fetch
 * streams each from disk). The accepted job is then marked completed with every photo picked, through the
 * store (no worker: the download route only reads the selection), and a second fresh API process serves its
 * ZIP, read and counted by this process. Each process's VmHWM is its peak for that transfer alone.
 */
export async function runTransfers(ctx: LoadContext, count: number): Promise<TransferResult> {
  const svc = await openService(ctx, 'xfer');
  const procs: Proc[] = [];
  try {
    const paths = await uploadFiles(ctx, count);
    const userId = 'load-user-xfer';
    const token = signHs256(svc.secret, userId);

    const api = await startApi(ctx, svc, { MAX_UPLOAD_MB: '50' });
    procs.push(api);
    const { upload, text } = await measureUpload(ctx, api, token, paths);
    await api.stop();
    procs.pop();
    if (upload.status !== 200) return { upload, download: null };

    const jobId = (JSON.parse(text) as { job_id: string }).job_id;
    await markAllPicked(svc, jobId, count);
    const api2 = await startApi(ctx, svc);
    procs.push(api2);
    return { upload, download: await measureDownload(ctx, api2, token, jobId, count) };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await svc.cleanup();
  }
}

/** Half a second after the API answers: its idle RSS, and its start-up peak before the peak is reset. */
async function settled(api: Api): Promise<Pick<MemoryRun, 'apiIdleRss' | 'apiStartupPeak' | 'peakReset'>> {
  await sleep(500);
  const apiIdleRss = memoryOf(api.pid)?.rss ?? 0;
  const apiStartupPeak = memoryOf(api.pid)?.hwm ?? 0;
  return { apiIdleRss, apiStartupPeak, peakReset: resetPeak(api.pid) };
}

/** The API's memory and the machine's load from now until stop(). */
function watchApi(api: Api): { stop(): Pick<MemoryRun, 'apiPeakRss' | 'load'> } {
  const sampler = new MemorySampler(api.pid, 50);
  const watch = loadWatch();
  return {
    stop() {
      sampler.stop();
      return { apiPeakRss: sampler.peak(), load: watch.stop() };
    },
  };
}

/** The transfer's figures with the API's memory before and during it (in the order the saved results keep). */
function memoryRun(
  transfer: Pick<MemoryRun, 'label' | 'files' | 'bytes' | 'ms' | 'status' | 'detail'>,
  before: Pick<MemoryRun, 'apiIdleRss' | 'apiStartupPeak' | 'peakReset'>,
  during: Pick<MemoryRun, 'apiPeakRss' | 'load'>,
): MemoryRun {
  return {
    ...transfer,
    apiIdleRss: before.apiIdleRss,
    apiStartupPeak: before.apiStartupPeak,
    apiPeakRss: during.apiPeakRss,
    peakReset: before.peakReset,
    load: during.load,
  };
}

async function measureUpload(
  ctx: LoadContext,
  api: Api,
  token: string,
  paths: readonly string[],
): Promise<{ upload: MemoryRun; text: string }> {
  const count = paths.length;
  const before = await settled(api);
  const form = new FormData();
  form.append('target', '100%');
  form.append('passes', '1');
  for (const [i, path] of paths.entries())
    form.append('files', await openAsBlob(path, { type: 'image/jpeg' }), `photo-${String(i + 1).padStart(4, '0')}.jpg`);
  const watch = watchApi(api);
  ctx.log(`upload: ${count} × 8 MiB multipart to POST /start`);
  const t0 = performance.now();
  const res = await fetch(`${api.base}${API_PREFIX}/start`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  const during = watch.stop();
  const upload = memoryRun(
    {
      label: `POST /start, ${count} × 8 MiB multipart`,
      files: count,
      bytes: count * UPLOAD_BYTES,
      ms,
      status: res.status,
      detail: text.slice(0, 200),
    },
    before,
    during,
  );
  ctx.log(
    `  ${res.status} in ${(ms / 1000).toFixed(1)} s; API peak RSS ${mb(upload.apiPeakRss)} MB (idle ${mb(before.apiIdleRss)} MB)`,
  );
  return { upload, text };
}

/** The uploaded job completed with every photo picked, through the store: the download route only reads that. */
async function markAllPicked(svc: Service, jobId: string, count: number): Promise<void> {
  const queue = queueOf(svc);
  await queue.remove(jobId).catch(() => 0);
  await queue.close();
  const all = Array.from({ length: count }, (_, i) => i);
  const finished = await svc.store.finish(jobId, {
    status: 'completed',
    selected: all,
    ranks: new Map(all.map((i) => [i, i + 1])),
    pass1Survivors: count,
  });
  if (!finished) throw new Error('could not mark the uploaded job completed');
}

async function measureDownload(
  ctx: LoadContext,
  api: Api,
  token: string,
  jobId: string,
  count: number,
): Promise<MemoryRun> {
  const before = await settled(api);
  const watch = watchApi(api);
  ctx.log(`download: ZIP of ${count} picks of 8 MiB`);
  const t1 = performance.now();
  const zipRes = await fetch(`${api.base}${API_PREFIX}/${jobId}/download`, {
    headers: { authorization: `Bearer ${token}` },
  });
  let bytes = 0;
  if (zipRes.body) for await (const chunk of zipRes.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
  const ms = performance.now() - t1;
  const during = watch.stop();
  const download = memoryRun(
    {
      label: `GET /{id}/download, ZIP of ${count} × 8 MiB picks`,
      files: count,
      bytes,
      ms,
      status: zipRes.status,
      detail: zipRes.headers.get('content-type') ?? '',
    },
    before,
    during,
  );
  ctx.log(
    `  ${zipRes.status}, ${mb(bytes)} MB in ${(ms / 1000).toFixed(1)} s; API peak RSS ${mb(download.apiPeakRss)} MB (idle ${mb(before.apiIdleRss)} MB)`,
  );
  return download;
}
