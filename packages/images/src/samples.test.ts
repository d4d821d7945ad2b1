import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleSet, writeSample, type SampleFile, type SampleSpec } from './samples.js';
import { INPUT_OPTIONS, sharp } from './sharp.js';

let dir: string;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'triage-samples-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a sample into the temp dir and returns its path. */
async function sample(spec: SampleSpec): Promise<string> {
  const path = join(dir, `s${++n}-${spec.kind}-${spec.seed}.jpg`);
  await writeSample(spec, path);
  return path;
}

/** Decoded, auto-oriented RGB pixels. */
async function rgb(path: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(path, INPUT_OPTIONS)
    .autoOrient()
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data, width: info.width, height: info.height };
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Mean Rec.601 luma of an RGB buffer, 0-1. */
function meanLuma(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 3) sum += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
  return sum / (data.length / 3) / 255;
}

/** Variance of the 4-neighbour Laplacian of a greyscale 400 px wide downsample: high-frequency energy. */
async function laplacianVariance(path: string): Promise<number> {
  const { data, info } = await sharp(path, INPUT_OPTIONS)
    .autoOrient()
    .resize({ width: 400 })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width: w, height: h, channels: c } = info;
  let sum = 0;
  let sum2 = 0;
  let count = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = (y * w + x) * c;
      const lap = data[i - c]! + data[i + c]! + data[i - w * c]! + data[i + w * c]! - 4 * data[i]!;
      sum += lap;
      sum2 += lap * lap;
      count++;
    }
  }
  const mean = sum / count;
  return sum2 / count - mean * mean;
}

describe('writeSample', () => {
  it('is deterministic: the same spec gives byte-identical files', async () => {
    const specs: SampleSpec[] = [
      { kind: 'good', seed: 42, width: 640, height: 480 },
      { kind: 'blurred', seed: 42, width: 640, height: 480 },
      { kind: 'burst', seed: 7, width: 640, height: 480, frame: 2, orientation: 6, progressive: true },
    ];
    for (const spec of specs) {
      const a = await readFile(await sample(spec));
      const b = await readFile(await sample({ ...spec }));
      expect(a.length).toBeGreaterThan(1000);
      expect(a.equals(b)).toBe(true);
    }
    const other = await readFile(await sample({ kind: 'good', seed: 43, width: 640, height: 480 }));
    expect(other.equals(await readFile(await sample(specs[0]!)))).toBe(false);
  });

  it('defaults to 1600×1200 baseline JPEG without an orientation tag', async () => {
    const meta = await sharp(await sample({ kind: 'good', seed: 1 })).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 1600, height: 1200, isProgressive: false });
    expect(meta.orientation).toBeUndefined();
  });

  it('respects the progressive flag', async () => {
    const progressive = await sharp(
      await sample({ kind: 'good', seed: 5, width: 640, height: 480, progressive: true }),
    ).metadata();
    const baseline = await sharp(
      await sample({ kind: 'good', seed: 5, width: 640, height: 480, progressive: false }),
    ).metadata();
    expect(progressive.isProgressive).toBe(true);
    expect(baseline.isProgressive).toBe(false);
  });

  it('stores pixels for the EXIF orientation so that auto-orient gives the upright scene', async () => {
    const spec = { kind: 'good' as const, seed: 11, width: 320, height: 240 };
    const upright = await rgb(await sample({ ...spec, orientation: 1 }));
    expect(upright).toMatchObject({ width: 320, height: 240 });
    for (const orientation of [6, 3, 2, 4, 5, 7, 8]) {
      const path = await sample({ ...spec, orientation });
      const meta = await sharp(path).metadata();
      expect(meta.orientation, `orientation ${orientation}`).toBe(orientation);
      // Stored (not auto-oriented) dimensions are swapped for the 90° orientations.
      expect([meta.width, meta.height], `orientation ${orientation}`).toEqual(
        orientation >= 5 ? [240, 320] : [320, 240],
      );
      const oriented = await rgb(path);
      expect([oriented.width, oriented.height], `orientation ${orientation}`).toEqual([320, 240]);
      // Same scene and noise; only JPEG rounding differs (about 0-2.3 here), while a 1 px misregistration
      // of this textured scene already costs about 11.
      expect(meanAbsDiff(oriented.data, upright.data), `orientation ${orientation}`).toBeLessThan(3);
    }
    // The stored pixels really are transformed: read without auto-orient, orientation 3 is upside down.
    const { data: stored } = await sharp(await sample({ ...spec, orientation: 3 }), INPUT_OPTIONS)
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(meanAbsDiff(stored, upright.data)).toBeGreaterThan(15);
  });

  it('blurred has much less high-frequency energy than good of the same seed', async () => {
    for (const seed of [3, 8]) {
      const good = await laplacianVariance(await sample({ kind: 'good', seed }));
      const blurred = await laplacianVariance(await sample({ kind: 'blurred', seed }));
      expect(blurred, `seed ${seed}: good ${good.toFixed(1)} vs blurred ${blurred.toFixed(1)}`).toBeLessThan(good / 10);
    }
  });

  it('exposes good photos at mid-grey, dark ones badly under and overexposed ones clipped', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const size = { width: 640, height: 480 };
      const good = meanLuma((await rgb(await sample({ kind: 'good', seed, ...size }))).data);
      const dark = meanLuma((await rgb(await sample({ kind: 'dark', seed, ...size }))).data);
      const over = meanLuma((await rgb(await sample({ kind: 'overexposed', seed, ...size }))).data);
      expect(good, `good seed ${seed}`).toBeGreaterThan(0.3);
      expect(good, `good seed ${seed}`).toBeLessThan(0.7);
      expect(dark, `dark seed ${seed}`).toBeLessThan(0.15);
      expect(over, `overexposed seed ${seed}`).toBeGreaterThan(0.85);
    }
  });

  it('makes good photos of different seeds clearly different and burst frames near-duplicates', async () => {
    const size = { width: 640, height: 480 };
    const a = (await rgb(await sample({ kind: 'good', seed: 100, ...size }))).data;
    const b = (await rgb(await sample({ kind: 'good', seed: 101, ...size }))).data;
    expect(meanAbsDiff(a, b)).toBeGreaterThan(25);

    const frames = [];
    for (const frame of [1, 2, 3, 4]) frames.push(await sample({ kind: 'burst', seed: 100, frame, ...size }));
    const bytes = await Promise.all(frames.map((path) => readFile(path)));
    expect(bytes[0]!.equals(bytes[1]!)).toBe(false);
    // Near-duplicates: at 64×48 the small shift and the noise almost vanish (about 1-4 here), while
    // different scenes stay far apart (about 35-40).
    const thumb = async (path: string): Promise<Buffer> => sharp(path, INPUT_OPTIONS).resize(64, 48).raw().toBuffer();
    const t = await Promise.all(frames.map(thumb));
    for (let i = 1; i < t.length; i++) expect(meanAbsDiff(t[0]!, t[i]!), `frame 1 vs ${i + 1}`).toBeLessThan(6);
    const other = await thumb(await sample({ kind: 'burst', seed: 101, frame: 1, ...size }));
    expect(meanAbsDiff(t[0]!, other)).toBeGreaterThan(20);
  });

  it('rejects bad specs', async () => {
    await expect(writeSample({ kind: 'good', seed: 1, width: 0 }, join(dir, 'bad.jpg'))).rejects.toThrow(RangeError);
    await expect(writeSample({ kind: 'good', seed: 1, orientation: 9 }, join(dir, 'bad.jpg'))).rejects.toThrow(
      RangeError,
    );
    await expect(writeSample({ kind: 'nope' as never, seed: 1 }, join(dir, 'bad.jpg'))).rejects.toThrow(RangeError);
  });
});

describe('generateSampleSet', () => {
  const width = 480;
  const height = 360;
  let setDir: string;
  let files: SampleFile[];

  beforeAll(async () => {
    setDir = join(dir, 'set');
    files = await generateSampleSet(setDir, { width, height, seed: 7 });
  });

  it('writes the promised mix of 60 files, named by kind, in listing order', async () => {
    expect(files).toHaveLength(60);
    const count = (kind: string): number => files.filter((f) => f.kind === kind).length;
    expect({
      good: count('good'),
      burst: count('burst'),
      blurred: count('blurred'),
      dark: count('dark'),
      overexposed: count('overexposed'),
      unreadable: count('unreadable'),
    }).toEqual({ good: 27, burst: 12, blurred: 6, dark: 6, overexposed: 6, unreadable: 3 });

    // Listing order = numeric prefix order = returned order.
    expect((await readdir(setDir)).sort()).toEqual(files.map((f) => f.name));
    files.forEach((f, i) => {
      expect(f.path).toBe(join(setDir, f.name));
      expect(f.name.startsWith(`${String(i + 1).padStart(3, '0')}-`)).toBe(true);
      const suffix = f.name.slice(4, -'.jpg'.length);
      switch (f.kind) {
        case 'good':
          expect(suffix).toBe('good');
          expect(f.defect).toBeNull();
          break;
        case 'blurred':
        case 'overexposed':
          expect(suffix).toBe(f.kind);
          expect(f.defect).toBe(f.kind);
          break;
        case 'dark':
          expect(suffix).toBe('dark');
          expect(f.defect).toBe('underexposed');
          break;
        case 'burst':
          expect(suffix).toMatch(new RegExp(`^burst${f.burst}-frame[1-4]$`));
          expect(f.defect).toBe('near-duplicate');
          break;
        case 'unreadable':
          expect(suffix).toMatch(/^unreadable-(truncated|empty|text)$/);
          break;
      }
    });
    expect(
      files
        .filter((f) => f.kind === 'unreadable')
        .map((f) => `${f.name.slice(4)}: ${f.defect}`)
        .sort(),
    ).toEqual([
      'unreadable-empty.jpg: empty file',
      'unreadable-text.jpg: not an image',
      'unreadable-truncated.jpg: truncated file',
    ]);

    // Three bursts of four consecutive frames each.
    for (const id of [1, 2, 3]) {
      const frames = files.map((f, i) => ({ f, i })).filter(({ f }) => f.kind === 'burst' && f.burst === id);
      expect(frames.map(({ f }) => f.name.slice(4))).toEqual([1, 2, 3, 4].map((k) => `burst${id}-frame${k}.jpg`));
      expect(frames[3]!.i - frames[0]!.i).toBe(3);
    }

    // Defects are spread over the set, not grouped: each kind appears in the first and the last third.
    for (const kind of ['blurred', 'dark', 'overexposed', 'good'] as const) {
      const at = files.flatMap((f, i) => (f.kind === kind ? [i] : []));
      expect(at[0], kind).toBeLessThan(20);
      expect(at[at.length - 1], kind).toBeGreaterThanOrEqual(40);
    }
  });

  it('every readable file decodes at the promised size; the unreadable ones do not decode', async () => {
    let rotated = 0;
    let progressive = 0;
    for (const f of files) {
      if (f.kind === 'unreadable') {
        await expect(sharp(f.path, INPUT_OPTIONS).raw().toBuffer(), f.name).rejects.toThrow();
        continue;
      }
      const meta = await sharp(f.path).metadata();
      if ((meta.orientation ?? 1) !== 1) rotated++;
      if (meta.isProgressive) progressive++;
      const { info } = await sharp(f.path, INPUT_OPTIONS).autoOrient().raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels], f.name).toEqual([width, height, 3]);
    }
    expect(rotated).toBe(3);
    expect(progressive).toBeGreaterThan(0);
    const unreadable = Object.fromEntries(
      await Promise.all(
        files
          .filter((f) => f.kind === 'unreadable')
          .map(async (f) => [f.defect, (await readFile(f.path)).length] as const),
      ),
    );
    expect(unreadable['empty file']).toBe(0);
    expect(unreadable['not an image']).toBeGreaterThan(0);
    expect(unreadable['truncated file']).toBeGreaterThan(1000);
  });

  it('is deterministic for a seed and honours count and unreadable: false', async () => {
    const again = await generateSampleSet(join(dir, 'again'), {
      width: 160,
      height: 120,
      seed: 7,
      count: 12,
      unreadable: false,
    });
    const once = await generateSampleSet(join(dir, 'once'), {
      width: 160,
      height: 120,
      seed: 7,
      count: 12,
      unreadable: false,
    });
    expect(again.map((f) => f.name)).toEqual(once.map((f) => f.name));
    expect(again).toHaveLength(12);
    expect(again.some((f) => f.kind === 'unreadable')).toBe(false);
    for (let i = 0; i < again.length; i++) {
      expect((await readFile(again[i]!.path)).equals(await readFile(once[i]!.path))).toBe(true);
    }
    expect(await generateSampleSet(join(dir, 'none'), { count: 0 })).toEqual([]);
  });
});
