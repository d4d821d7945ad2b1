/**
 * A labelled set of real photographs for the selection-quality benchmark, generated once per (size, seed,
 * strengths) and kept in .bench/ (never in git). Every scene — one region of one source photograph, used
 * once per set — has a clean version, and may have flawed copies, near-duplicates (re-framed, a slightly
 * different moment), or be a burst of 4–8 frames of which exactly one is sharp. Flawed copies and
 * near-duplicates are scattered through the set, so they fall in different grids; a burst's frames stay
 * consecutive, as a camera writes them. The labels say what an editor would do with each file.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32, sharp } from '@triage/images';
import { writeVariant, type Flaw, type VariantSpec } from '@triage/images/testing';
import type { SourcePhoto } from './sources.js';

export type Role = 'clean' | 'near-duplicate' | 'flawed' | 'burst-sharp' | 'burst-blurred';

export interface LabelledPhoto {
  name: string;
  path: string;
  scene: number;
  role: Role;
  /** The flaw in words, for flawed and blurred burst frames. */
  flaw?: string;
  /** Burst id (the scene's), for burst frames. */
  burst?: number;
}

/** Ranges flaw strengths are drawn from, at 24 MP. */
export interface Strengths {
  name: string;
  defocus: [number, number];
  motion: [number, number];
  dark: [number, number];
  bright: [number, number];
  noise: [number, number];
}

/** The strengths the judge was tuned on: the "realistic" ranges. */
export const TUNED: Strengths = {
  name: 'tuned',
  defocus: [8, 16],
  motion: [30, 60],
  dark: [0.2, 0.3],
  bright: [2, 3],
  noise: [12, 16],
};
/** Other strengths, wider on both sides, to check the judge is not fitted to its own set. */
export const OTHER: Strengths = {
  name: 'other',
  defocus: [6, 20],
  motion: [20, 80],
  dark: [0.15, 0.35],
  bright: [1.8, 3.5],
  noise: [10, 20],
};

export interface SetOptions {
  dir: string;
  sources: readonly SourcePhoto[];
  photos: number;
  seed: number;
  strengths: Strengths;
  log(line: string): void;
}

/** Long side of every photo in the set, px (flaw strengths are scaled from 24 MP to it). */
const LONG_SIDE = 2400;
/** A scene's base image: a little larger than the photos, so re-framing stays inside it. */
const BASE_SIDE = 2880;

interface Scene {
  id: number;
  source: SourcePhoto;
  tile: { left: number; top: number; width: number; height: number };
}

export async function ensureSet(options: SetOptions): Promise<LabelledPhoto[]> {
  const dir = join(options.dir, `${options.photos}-seed${options.seed}-${options.strengths.name}`);
  const labelsFile = join(dir, 'labels.json');
  const cached = await readFile(labelsFile, 'utf8').catch(() => null);
  if (cached) return JSON.parse(cached) as LabelledPhoto[];
  await mkdir(dir, { recursive: true });
  const random = mulberry32(options.seed);
  const scenes = await pickScenes(options.sources, options.photos, random);
  const counts = splitCount(options.photos, scenes.length, random);
  const units: { scene: Scene; specs: PlannedPhoto[] }[][] = scenes.map((scene, i) =>
    planScene(scene, counts[i]!, options.strengths, random),
  );
  const ordered = shuffle(units.flat(), random);
  const labelled: LabelledPhoto[] = [];
  let n = 0;
  const bases = new Map<number, string>();
  for (const unit of ordered) {
    const base = bases.get(unit.scene.id) ?? (await writeBase(dir, unit.scene));
    bases.set(unit.scene.id, base);
    for (const planned of unit.specs) {
      const name = `IMG_${String(1000 + n++).padStart(4, '0')}.jpg`;
      const path = join(dir, name);
      await writeVariant(base, planned.spec, path);
      labelled.push({
        name,
        path,
        scene: unit.scene.id,
        role: planned.role,
        ...(planned.flaw && { flaw: planned.flaw }),
        ...(planned.role.startsWith('burst') && { burst: unit.scene.id }),
      });
    }
    if (n % 50 < unit.specs.length) options.log(`  set: ${n}/${options.photos} photos`);
  }
  await writeFile(labelsFile, JSON.stringify(labelled, null, 1));
  return labelled;
}

/**
 * Scenes: each source split into non-overlapping tiles (more tiles for larger sets, since a set uses each
 * scene once), in a seeded order, as many as the set can give at least one photo each with room for
 * copies.
 */
async function pickScenes(sources: readonly SourcePhoto[], photos: number, random: () => number): Promise<Scene[]> {
  const split = photos > 300;
  const scenes: Scene[] = [];
  for (const source of sources) {
    const meta = await sharp(source.path).metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    const cols = !split ? 1 : width >= 4000 ? 3 : width >= 2000 ? 2 : 1;
    const rows = split && height >= 3000 ? 2 : 1;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const w = Math.floor(width / cols);
        const h = Math.floor(height / rows);
        scenes.push({ id: 0, source, tile: { left: c * w, top: r * h, width: w, height: h } });
      }
    }
  }
  const wanted = Math.min(scenes.length, Math.max(1, Math.round(photos / 3.2)));
  return shuffle(scenes, random)
    .slice(0, wanted)
    .map((s, id) => ({ ...s, id }));
}

/** `total` photos over `scenes` scenes, each at least one, uneven as real shoots are. */
function splitCount(total: number, scenes: number, random: () => number): number[] {
  const weights = Array.from({ length: scenes }, () => 0.3 + random() * random() * 3);
  const sum = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => 1 + Math.floor(((total - scenes) * w) / sum));
  for (let left = total - counts.reduce((a, b) => a + b, 0), i = 0; left > 0; left--, i++) counts[i % scenes]!++;
  return counts;
}

interface PlannedPhoto {
  role: Role;
  flaw?: string;
  spec: VariantSpec;
}

/** A scene's photos as units: each single photo is its own unit, a burst one unit of consecutive frames. */
function planScene(
  scene: Scene,
  count: number,
  strengths: Strengths,
  random: () => number,
): { scene: Scene; specs: PlannedPhoto[] }[] {
  const units: { scene: Scene; specs: PlannedPhoto[] }[] = [];
  const frame = baseFrame(scene);
  let left = count;
  if (count >= 4 && random() < 0.45) {
    const frames = Math.min(left, 4 + Math.floor(random() * 5));
    units.push({ scene, specs: burst(frame, frames, strengths, random) });
    left -= frames;
  } else {
    units.push({ scene, specs: [{ role: 'clean', spec: { crop: frame, longSide: LONG_SIDE } }] });
    left -= 1;
  }
  for (let near = 0; left > 0; left--) {
    if (near < 2 && random() < 0.35) {
      near++;
      units.push({
        scene,
        specs: [
          {
            role: 'near-duplicate',
            spec: { crop: reframe(frame, 0.05, random), longSide: LONG_SIDE, exposure: 0.85 + random() * 0.3 },
          },
        ],
      });
    } else {
      const { flaw, words } = drawFlaw(strengths, random);
      units.push({
        scene,
        specs: [
          {
            role: 'flawed',
            flaw: words,
            spec: { crop: reframe(frame, 0.01, random), longSide: LONG_SIDE, flaws: [flaw] },
          },
        ],
      });
    }
  }
  return units;
}

/** The frame of the clean photo within the scene's base image (inset, so re-framing has room). */
function baseFrame(scene: Scene): VariantSpec['crop'] {
  const { width, height } = baseSize(scene);
  const inset = 0.06;
  return {
    left: Math.round(width * inset),
    top: Math.round(height * inset),
    width: Math.round(width * (1 - 2 * inset)),
    height: Math.round(height * (1 - 2 * inset)),
  };
}

function baseSize(scene: Scene): { width: number; height: number } {
  const scale = Math.min(1, BASE_SIDE / Math.max(scene.tile.width, scene.tile.height));
  return { width: Math.round(scene.tile.width * scale), height: Math.round(scene.tile.height * scale) };
}

/** The scene's tile, once, at BASE_SIDE: every photo of the scene is cut from it. */
async function writeBase(dir: string, scene: Scene): Promise<string> {
  const path = join(dir, `.scene-${scene.id}.jpg`);
  if (await stat(path).catch(() => null)) return path;
  const { width, height } = baseSize(scene);
  await sharp(scene.source.path)
    .autoOrient()
    .extract(scene.tile)
    .resize(width, height)
    .jpeg({ quality: 97 })
    .toFile(path);
  return path;
}

/** Shifted by up to `amount` of the frame and zoomed in by up to that much, inside the base image. */
function reframe(frame: VariantSpec['crop'], amount: number, random: () => number): VariantSpec['crop'] {
  const zoom = 1 - random() * amount;
  const width = Math.round(frame.width * zoom);
  const height = Math.round(frame.height * zoom);
  const slackX = frame.left + (frame.width - width) / 2;
  const slackY = frame.top + (frame.height - height) / 2;
  const dx = (random() * 2 - 1) * amount * frame.width;
  const dy = (random() * 2 - 1) * amount * frame.height;
  return {
    left: Math.max(0, Math.round(slackX + dx)),
    top: Math.max(0, Math.round(slackY + dy)),
    width,
    height,
  };
}

function burst(frame: VariantSpec['crop'], frames: number, strengths: Strengths, random: () => number): PlannedPhoto[] {
  const sharpAt = Math.floor(random() * frames);
  return Array.from({ length: frames }, (_, i) => {
    const crop = reframe(frame, 0.015, random);
    if (i === sharpAt) return { role: 'burst-sharp' as const, spec: { crop, longSide: LONG_SIDE } };
    const motion = random() < 0.7;
    const flaw: Flaw = motion
      ? {
          kind: 'motion',
          length: between(strengths.motion, random),
          direction: random() < 0.5 ? 'horizontal' : 'vertical',
        }
      : { kind: 'defocus', sigma: between(strengths.defocus, random) };
    return {
      role: 'burst-blurred' as const,
      flaw: motion ? 'camera shake' : 'out of focus',
      spec: { crop, longSide: LONG_SIDE, flaws: [flaw] },
    };
  });
}

function drawFlaw(s: Strengths, random: () => number): { flaw: Flaw; words: string } {
  const kind = Math.floor(random() * 5);
  if (kind === 0) return { flaw: { kind: 'defocus', sigma: between(s.defocus, random) }, words: 'out of focus' };
  if (kind === 1)
    return {
      flaw: {
        kind: 'motion',
        length: between(s.motion, random),
        direction: random() < 0.5 ? 'horizontal' : 'vertical',
      },
      words: 'camera shake',
    };
  if (kind === 2) return { flaw: { kind: 'exposure', factor: between(s.dark, random) }, words: 'under-exposed' };
  if (kind === 3) return { flaw: { kind: 'exposure', factor: between(s.bright, random) }, words: 'blown out' };
  return {
    flaw: { kind: 'noise', sigma: between(s.noise, random), seed: Math.floor(random() * 2 ** 31) },
    words: 'high-ISO noise',
  };
}

function between([lo, hi]: [number, number], random: () => number): number {
  return lo + random() * (hi - lo);
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
