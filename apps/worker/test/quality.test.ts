/**
 * What the picks are worth, from the outside: real jobs through the real worker (queue, Redis, sharp, local
 * storage, the offline judge) over photos with known near-duplicates and flaws, read back the way the API
 * reads them (photoFates).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSample, type SampleFile } from '@triage/images';
import { scene, withExif, writeJpeg, writeVariant, type Flaw } from '@triage/images/testing';
import { groupScenes, MAY_BE_NOISY } from '@triage/core';
import { photoFates } from '@triage/queue';
import { ended, inProcessWorker, setup, stageJob, waitForStatus, type Env, type InProcessWorker } from './harness.js';

let env: Env;
let dir: string;
let worker: InProcessWorker | undefined;

/** Six photos per coarse grid, so that a 12-photo job has two. */
const SIX_PER_GRID = { coarse: { minThumb: 84, rows: 2, cols: 3 } };

const scenes = new Set<number>();

/** A 1800 × 1200 copy of generated scene `seed`: clean, re-framed, or with a flaw. */
async function photo(
  seed: number,
  kind: string,
  options: { shift?: number; flaws?: Flaw[] } = {},
): Promise<SampleFile> {
  const base = join(dir, `scene-${seed}.jpg`);
  if (!scenes.has(seed)) await writeSample({ kind: 'good', seed, width: 2000, height: 1333 }, base);
  scenes.add(seed);
  const shift = options.shift ?? 0;
  const name = `${kind}-${seed}.jpg`;
  const path = join(dir, name);
  await writeVariant(
    base,
    {
      crop: { left: 100 + shift, top: 66, width: 1800, height: 1200 },
      longSide: 1800,
      ...(options.flaws && { flaws: options.flaws }),
    },
    path,
  );
  return { name, path, kind: 'good', defect: kind === 'clean' || kind === 'reframed' ? null : kind };
}

/** Gives `file` an EXIF DateTimeOriginal `minutes` after 2026-05-01 10:00; returns that time as recorded (ms). */
async function takenAt(file: SampleFile, minutes: number): Promise<number> {
  const time = new Date(Date.UTC(2026, 4, 1, 10, minutes));
  const text = time.toISOString().slice(0, 19).replace(/-/g, ':').replace('T', ' ');
  await writeFile(file.path, withExif(await readFile(file.path), { captured: text }));
  return time.getTime();
}

/** A noise-free photo of its own scene (smooth synthetic shapes): its thumbnail rules noise out. */
async function smooth(seed: number): Promise<SampleFile> {
  const name = `smooth-${seed}.jpg`;
  const path = await writeJpeg(join(dir, name), scene(seed, 1800, 1200), { quality: 92 });
  return { name, path, kind: 'good', defect: null };
}

/**
 * The full-size square (a second decode down to its bottom edge) is taken only where it decides something: for every
 * fine-pass photo with another survivor of its scene, and for a lone one only when its thumbnail leaves noise
 * open (thumbnail noise from MAY_BE_NOISY). Returns the fine-pass photos measured and those spared.
 */
async function expectSquaresWhereTheyDecide(
  job: Awaited<ReturnType<typeof stageJob>>,
): Promise<{ spared: string[]; measured: string[] }> {
  const status = (await env.store.status(job.triageId))!;
  const survivors = await env.store.survivors(job.triageId, 0, status.pass1_survivors);
  const groups = (await env.store.groups(job.triageId))!;
  const fine = await env.store.fineVerdicts(job.triageId);
  const survivorsOf = (g: number | null) => survivors.filter((i) => g !== null && groups[i] === g).length;
  const out = { spared: [] as string[], measured: [] as string[] };
  for (const i of survivors) {
    const v = fine.get(i)!;
    const name = job.files[i]!.name;
    if (survivorsOf(groups[i] ?? null) > 1) expect(v.detail, `${name}: twins survive`).toBeDefined();
    else expect(v.detail !== undefined, `${name}: alone`).toBe(v.noise! >= MAY_BE_NOISY);
    (v.detail ? out.measured : out.spared).push(name);
  }
  return out;
}

beforeAll(async () => {
  env = await setup();
  dir = await mkdtemp(join(tmpdir(), 'triage-quality-'));
});
afterAll(async () => {
  await worker?.close();
  await env.close();
  await rm(dir, { recursive: true, force: true });
});

describe('job-wide near-duplicates and honest signals', () => {
  it('keeps one photo of a scene whose copies fell in different coarse grids, and never a noisy or blown-out copy', async () => {
    const made = [
      await photo(101, 'clean'),
      await photo(102, 'clean'),
      await photo(103, 'clean'),
      await photo(104, 'clean'),
      await photo(105, 'clean'),
      await photo(106, 'clean'),
      await photo(101, 'reframed', { shift: 60 }), // grid 2: the same scene as photo 0
      await photo(103, 'noisy', { flaws: [{ kind: 'noise', sigma: 16, seed: 7 }] }), // grid 2: photo 2, ISO 6400
      await photo(104, 'blown', { flaws: [{ kind: 'exposure', factor: 2.5 }] }), // grid 2: photo 3, over-exposed
      await photo(107, 'clean'),
      await photo(108, 'clean'),
      await photo(109, 'clean'),
    ];
    const job = await stageJob(env, made, { target: '75%', layouts: SIX_PER_GRID });
    worker = await inProcessWorker(env);
    const status = await waitForStatus(env, job.triageId, ended, 120_000);
    expect(status.status).toBe('completed');
    expect(status.grids_done).toBeGreaterThanOrEqual(3);

    const fates = await photoFates(env.store, job.triageId);
    const byName = new Map(fates.map((f) => [f.name, f]));
    const of = (name: string) => byName.get(name)!;
    // The same scene across the two coarse grids is one group of the job; at most one of it is kept.
    expect(of('clean-101.jpg').group).toMatchObject({ id: 0, size: 2 });
    expect(of('reframed-101.jpg').group).toMatchObject({ id: 0, size: 2 });
    expect([of('clean-101.jpg'), of('reframed-101.jpg')].filter((f) => f.selected).length).toBeLessThanOrEqual(1);
    // Each flawed copy is grouped with its clean twin, is never picked, and says why.
    expect(of('noisy-103.jpg').group?.id).toBe(2);
    expect(of('blown-104.jpg').group?.id).toBe(3);
    for (const name of ['noisy-103.jpg', 'blown-104.jpg']) {
      expect(of(name).selected, name).toBe(false);
      expect(of(name).flaw, name).not.toBeNull();
      expect(of(name).reason, name).toContain(of(name).flaw!);
    }
    expect(of('blown-104.jpg').flaw).toMatch(/blown highlights|too bright/);
    // The picks: clean photos only, each of its own scene.
    const picks = fates.filter((f) => f.selected);
    expect(picks.length).toBeGreaterThanOrEqual(3);
    for (const f of picks) expect(f.name).toMatch(/^(clean|reframed)-/);
    const scenesPicked = new Set(picks.map((f) => f.name.replace(/^\w+-/, '')));
    expect(scenesPicked.size).toBe(picks.length);
    // A photo whose twin was kept says so, by name.
    for (const f of fates.filter(
      (x) => !x.selected && x.group && fates.some((y) => y.selected && y.group?.id === x.group!.id),
    )) {
      const kept = fates.find((y) => y.selected && y.group?.id === f.group!.id)!;
      expect(f.reason).toContain(`near-duplicate of ${kept.name}, which was kept`);
    }
    // Signals are reported for every readable photo: noise apart from sharpness, clipped shares.
    for (const f of fates) {
      expect(f.signals).not.toBeNull();
      expect(f.signals!.clipped_highlights).toBeGreaterThanOrEqual(0);
    }
    expect(of('blown-104.jpg').signals!.clipped_highlights!).toBeGreaterThan(
      of('clean-104.jpg').signals!.clipped_highlights!,
    );

    // Both shots of scene 101 reach the fine pass, where only a look at full size can tell them apart.
    const squares = await expectSquaresWhereTheyDecide(job);
    expect(squares.measured).toEqual(expect.arrayContaining(['clean-101.jpg', 'reframed-101.jpg', 'noisy-103.jpg']));
  }, 180_000);

  it('spares the full-size square to lone photos whose thumbnail rules noise out', async () => {
    const made = [
      await smooth(201),
      await smooth(202),
      await smooth(203),
      await smooth(204),
      await smooth(205),
      await smooth(206),
    ];
    const job = await stageJob(env, made, { target: '75%', layouts: SIX_PER_GRID });
    worker ??= await inProcessWorker(env);
    const status = await waitForStatus(env, job.triageId, ended, 120_000);
    expect(status.status).toBe('completed');
    const { spared, measured } = await expectSquaresWhereTheyDecide(job);
    expect(status.pass1_survivors).toBeGreaterThan(0);
    expect(measured).toEqual([]);
    expect(spared).toHaveLength(status.pass1_survivors);
  }, 180_000);

  it('fills the fine grids in capture order, not input order, and never groups alike shots taken hours apart', async () => {
    const made: SampleFile[] = [];
    for (const seed of [301, 302, 303, 304, 305, 306]) made.push(await photo(seed, 'clean'));
    made.push(await photo(301, 'reframed', { shift: 60 })); // the scene of photo 0, re-framed: alike enough to group
    for (const seed of [307, 308, 309, 310, 311]) made.push(await photo(seed, 'clean'));
    // Input order is not capture order; the re-framed shot was taken three hours after its twin.
    const minutes = [7, 3, 10, 0, 5, 8, 190, 1, 9, 2, 6, 4];
    const captured = await Promise.all(made.map((file, i) => takenAt(file, minutes[i]!)));
    const job = await stageJob(env, made, { target: '75%', layouts: SIX_PER_GRID });
    worker ??= await inProcessWorker(env);
    const status = await waitForStatus(env, job.triageId, ended, 120_000);
    expect(status.status).toBe('completed');

    // The capture time was read from the head the coarse pass reads anyway, and recorded with the verdict.
    const coarse = await env.store.coarseVerdicts(job.triageId);
    made.forEach((_, i) => expect(coarse.get(i)!.captured, made[i]!.name).toBe(captured[i]));
    // The two shots of scene 301 match by their pixels alone, but three hours apart they are not one group.
    const keys = [0, 6].map((i) => ({ signature: coarse.get(i)!.signature!, layout: coarse.get(i)!.layout! }));
    expect(groupScenes(keys)).toEqual([0, 0]);
    const groups = (await env.store.groups(job.triageId))!;
    expect(groups[0]).not.toBe(groups[6]);

    // The fine grids take the survivors in capture order (a group's shots side by side, in capture order too).
    const order = await env.store.survivors(job.triageId, 0, status.pass1_survivors);
    expect(order.length).toBeGreaterThan(2);
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
    const firsts = order.filter(
      (index, k) => k === 0 || groups[order[k - 1]!] === null || groups[order[k - 1]!] !== groups[index],
    );
    for (let k = 1; k < firsts.length; k++) expect(captured[firsts[k]!]!).toBeGreaterThan(captured[firsts[k - 1]!]!);
    for (let k = 1; k < order.length; k++) {
      const [a, b] = [order[k - 1]!, order[k]!];
      if (groups[a] !== null && groups[a] === groups[b]) expect(captured[b]!).toBeGreaterThan(captured[a]!);
    }
  }, 180_000);
});
