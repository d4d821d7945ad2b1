/**
 * Hostile photos (@triage/images' writeHostileSet: truncated, empty, text, decompression bombs, CMYK, 16-bit,
 * alpha, animated, 1 × 1, panorama, EXIF orientations 1–8 with and without an EXIF thumbnail, damaged and
 * out-of-bounds EXIF thumbnails, HEIC) through a whole two-pass triage: real Redis, real sharp, local
 * storage, the worker in this process as in pipeline.test.ts.
 *
 * Every photo must be accounted for — a verdict each, failures with their reasons, every photo in its
 * cell — every readable one must reach the grid upright and in its colours (checked on the cells the
 * worker composed), the worker must survive to run the next job, and the process's memory must stay
 * bounded while it works.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GridGeometry } from '@triage/core';
import { composeGrid, type GridCell } from '@triage/images';
import { colourDistance, quadrantColours, writeHostileSet, type HostilePhoto } from '@triage/images/testing';
import type { GridRecord } from '@triage/queue';
import { LocalStorage } from '@triage/storage';
import {
  BUCKET,
  ended,
  IMAGES,
  inProcessWorker,
  setup,
  submit,
  waitForStatus,
  type Env,
  type InProcessWorker,
} from './harness.js';

/**
 * Most this process's RSS may grow while the job runs: the worker's whole budget in the performance issue
 * (192 MB peak for a worker process). Coarse, but one decoded bomb would be 2.7 GB.
 */
const RSS_GROWTH_LIMIT = 192 * 1024 * 1024;

/** Coarse cells small enough (under 240 px) for the 320 × 240 EXIF thumbnails; 24 photos per coarse grid. */
const LAYOUTS = { coarse: { minThumb: 84, rows: 3, cols: 8 } };

/** The real local driver, noting which objects were fetched whole. */
class CountingStorage extends LocalStorage {
  readonly fetched: string[] = [];
  override async readToFile(...args: Parameters<LocalStorage['readToFile']>) {
    this.fetched.push(args[1]);
    return super.readToFile(...args);
  }
}

let env: Env;
let storage: CountingStorage;
let dir: string;
let photos: HostilePhoto[];
let worker: InProcessWorker | undefined;
/** What the worker drew, grid after grid: each cell's raw RGB, or null for a placeholder. */
const composed: { thumb: number; cells: (Buffer | null)[] }[] = [];

beforeAll(async () => {
  env = await setup();
  dir = await mkdtemp(join(tmpdir(), 'triage-hostile-'));
  photos = await writeHostileSet(dir);
  worker = await inProcessWorker(env, {
    storage: (storage = new CountingStorage({ root: env.storageDir })),
    images: {
      ...IMAGES,
      composeGrid: (geometry: GridGeometry, cells: readonly GridCell[], labels: readonly string[]) => {
        composed.push({ thumb: geometry.thumb, cells: cells.map((c) => (c.thumb ? Buffer.from(c.thumb) : null)) });
        return composeGrid(geometry, cells, labels);
      },
    },
  });
});

afterAll(async () => {
  await worker?.close();
  await env?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Links the photos into storage under the names a user gave them and submits a triage over them. */
async function stage(files: readonly HostilePhoto[], options: { target: string }): Promise<string> {
  const triageId = randomUUID();
  const inputs = [];
  for (const [i, photo] of files.entries()) {
    const path = `triage/user-1/${triageId}/${String(i).padStart(4, '0')}-${photo.name}`;
    const target = env.storage.filePath(BUCKET, path);
    await mkdir(dirname(target), { recursive: true });
    await symlink(photo.path, target);
    inputs.push({ name: photo.name, path });
  }
  return submit(env, triageId, inputs, { target: options.target, passes: 2, layouts: LAYOUTS });
}

/** The grids in the order one job's worker composed them: coarse grids in order, then fine ones. */
function inComposeOrder(records: GridRecord[]): GridRecord[] {
  const rank = (r: GridRecord) => (r.pass === 'coarse' ? 0 : 1_000_000) + r.grid;
  return [...records].sort((a, b) => rank(a) - rank(b));
}

describe('a two-pass triage of hostile photos', () => {
  it('accounts for every photo, thumbnails the readable ones upright and refuses the rest with reasons', async () => {
    composed.length = 0;
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    let status;
    try {
      const triageId = await stage(photos, { target: '25%' });
      status = await waitForStatus(env, triageId, ended);
      peak = Math.max(peak, process.memoryUsage.rss());

      const refused = photos.flatMap((p, i) => (p.expected.outcome === 'refused' ? [i] : []));
      expect(status.status).toBe('completed');
      expect(status.total_input).toBe(photos.length);
      expect(status.photos_failed).toBe(refused.length);
      expect(status.grids_done).toBe(status.grids_total);

      // A verdict per photo; a failure, with the expected reason, exactly for the refused ones.
      const coarse = await env.store.coarseVerdicts(triageId);
      expect([...coarse.keys()].sort((a, b) => a - b)).toEqual(photos.map((_, i) => i));
      const matrix: string[] = [];
      photos.forEach((photo, i) => {
        const verdict = coarse.get(i)!;
        if (photo.expected.outcome === 'refused') {
          expect(verdict.failure, `${photo.name} must be recorded as failed`).toBeDefined();
          expect(verdict.failure, photo.name).toMatch(photo.expected.reason);
          expect(verdict.votes, `${photo.name} is never picked`).toBe(0);
          expect(verdict.quality).toBeNull();
        } else {
          expect(verdict.failure, `${photo.name} must be readable`).toBeUndefined();
          expect(verdict.quality, photo.name).toEqual(expect.any(Number));
        }
        matrix.push(`${photo.label.padEnd(64)} ${verdict.failure ? `failed: ${verdict.failure}` : 'thumbnailed'}`);
      });
      console.info(`hostile photos, coarse pass:\n${matrix.join('\n')}`);

      // A JPEG bomb is refused from its head (one range read): its bytes are never fetched whole.
      const bombs = photos.flatMap((p, i) => (p.name.startsWith('bomb') && p.name.endsWith('.jpg') ? [i] : []));
      expect(bombs.length).toBeGreaterThan(0);
      const inputs = await env.store.photos(triageId, bombs);
      for (const input of inputs) expect(storage.fetched, input.name).not.toContain(input.path);

      // Every photo in its own cell, in order; failures listed in their grid, never voted for.
      const records = inComposeOrder(await env.store.gridRecords(triageId));
      const coarseRecords = records.filter((r) => r.pass === 'coarse');
      expect(coarseRecords.flatMap((r) => r.photos)).toEqual(photos.map((_, i) => i));
      for (const record of coarseRecords) {
        expect(record.failures.map((f) => f.index).sort((a, b) => a - b)).toEqual(
          record.photos.filter((i) => refused.includes(i)),
        );
        for (const failure of record.failures) expect(record.votes[String(failure.index)]).toBeUndefined();
      }

      // The cells the worker drew: a placeholder for each refused photo, the upright picture for the others.
      expect(composed).toHaveLength(records.length);
      records.forEach((record, g) => {
        const { thumb, cells } = composed[g]!;
        expect(cells).toHaveLength(record.photos.length);
        record.photos.forEach((index, cell) => {
          const photo = photos[index]!;
          const rgb = cells[cell];
          const what = `${record.pass} grid ${record.grid}, cell ${record.labels[cell]}: ${photo.name}`;
          if (photo.expected.outcome === 'refused') {
            expect(rgb, what).toBeNull();
            return;
          }
          expect(rgb, what).not.toBeNull();
          const got = quadrantColours(rgb!, thumb);
          const worst = Math.max(
            ...got.map((c, q) =>
              colourDistance(c, photo.expected.outcome === 'thumbnail' ? photo.expected.quadrants[q]! : c),
            ),
          );
          expect(worst, `${what}: quadrants ${JSON.stringify(got)}`).toBeLessThanOrEqual(photo.expected.tolerance);
        });
      });

      // The EXIF-thumbnail fast path was taken where it could be, and fell back where it had to.
      const coarseThumb = composed[0]!.thumb;
      const sources: Record<string, number> = {};
      for (const r of coarseRecords) for (const [k, v] of Object.entries(r.sources)) sources[k] = (sources[k] ?? 0) + v;
      const usable = photos.filter((p) => p.embedded === 'usable').length;
      expect(coarseThumb).toBeLessThanOrEqual(240);
      expect(sources.embedded).toBe(usable);
      expect(Object.values(sources).reduce((a, b) => a + b, 0)).toBe(photos.length - refused.length);

      // The fine pass: survivors only, each read again from the file (or refused again), none lost.
      const fineRecords = records.filter((r) => r.pass === 'fine');
      expect(fineRecords.length).toBeGreaterThan(0);
      const fine = await env.store.fineVerdicts(triageId);
      const survivors = fineRecords.flatMap((r) => r.photos);
      expect([...fine.keys()].sort((a, b) => a - b)).toEqual([...survivors].sort((a, b) => a - b));
      for (const index of survivors) expect(fine.get(index)!.failure, photos[index]!.name).toBeUndefined();
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - before;
    console.info(
      `RSS ${Math.round(before / 2 ** 20)} MB before the job, peak ${Math.round(peak / 2 ** 20)} MB (+${Math.round(growth / 2 ** 20)} MB)`,
    );
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  });

  it('keeps the worker running: a plain job after the hostile one completes', async () => {
    expect(worker!.worker.worker.isRunning()).toBe(true);
    const plain = photos.filter((p) => p.name.startsWith('orientation-'));
    const triageId = await stage(plain, { target: '25%' });
    const status = await waitForStatus(env, triageId, ended);
    expect(status.status).toBe('completed');
    expect(status.photos_failed).toBe(0);
    expect(status.total_input).toBe(plain.length);
  });
});
