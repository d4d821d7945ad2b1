/**
 * Sample photo set generator: procedural, deterministic "photos" with known defects.
 *
 * Powers `npm run demo` (a newcomer triages a generated sample set) and the tests. Every scene is built
 * as a raw RGB buffer in JS from a seeded PRNG (sky/ground gradient, shapes, a strongly coloured subject,
 * fine texture and mild sensor-like noise), then encoded to JPEG by sharp, one pipeline at a time.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sharp } from './sharp.js';
import { mulberry32 } from './random.js';

export type SampleKind = 'good' | 'blurred' | 'dark' | 'overexposed' | 'burst';

export interface SampleSpec {
  kind: SampleKind;
  seed: number;
  width?: number;
  height?: number;
  /** JPEG EXIF orientation 1-8 */
  orientation?: number;
  progressive?: boolean;
  /** for bursts: index within the burst, a tiny shift/noise per frame of the same scene */
  frame?: number;
}

export interface SampleFile {
  path: string;
  name: string;
  kind: SampleKind | 'unreadable';
  defect: string | null;
  burst?: number;
}

export const DEFAULT_SAMPLE_WIDTH = 1600;
export const DEFAULT_SAMPLE_HEIGHT = 1200;
export const DEFAULT_SAMPLE_COUNT = 60;
const JPEG_QUALITY = 90;
const MIN_SIDE = 16;
const MAX_SIDE = 12_000;

// ---------------------------------------------------------------------------------------------------------
// Randomness: mulberry32 for sequences, an integer hash for position-based texture.

/** 32-bit integer hash of up to three integers (lowbias32 mixing). */
function hash3(a: number, b: number, c: number): number {
  let h = (Math.imul(a | 0, 0x9e3779b1) ^ Math.imul(b | 0, 0x85ebca77) ^ Math.imul(c | 0, 0xc2b2ae3d)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

type RGB = [number, number, number];

function hsv(h: number, s: number, v: number): RGB {
  const hh = (((h % 360) + 360) % 360) / 60;
  const c = v * s;
  const x = c * (1 - Math.abs((hh % 2) - 1));
  const m = v - c;
  let r = 0;
  let g = 0;
  let b = 0;
  if (hh < 1) [r, g, b] = [c, x, 0];
  else if (hh < 2) [r, g, b] = [x, c, 0];
  else if (hh < 3) [r, g, b] = [0, c, x];
  else if (hh < 4) [r, g, b] = [0, x, c];
  else if (hh < 5) [r, g, b] = [x, 0, c];
  else [r, g, b] = [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}

function mix(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

// ---------------------------------------------------------------------------------------------------------
// Scene description and rendering.

type Texture =
  | { type: 'solid' }
  | { type: 'stripes'; period: number; dir: 0 | 1 | 2; amp: number }
  | { type: 'checker'; cell: number; amp: number }
  | { type: 'speckle'; cell: number; amp: number; salt: number }
  | { type: 'windows'; cw: number; ch: number; amp: number };

interface Shape {
  form: 'rect' | 'ellipse';
  /** bounding box in scene coordinates */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  color: RGB;
  tex: Texture;
  /** darken towards the bottom (0 = flat) */
  shade: number;
}

interface Scene {
  skyTop: RGB;
  skyHorizon: RGB;
  groundFar: RGB;
  groundNear: RGB;
  horizon: number;
  hillAmp: number;
  hillFreq: number;
  hillPhase: number;
  groundTex: Texture;
  groundStripes: Texture;
  shapes: Shape[];
}

function texture(t: Texture, x: number, y: number): number {
  switch (t.type) {
    case 'solid':
      return 0;
    case 'stripes': {
      const u = t.dir === 0 ? x : t.dir === 1 ? y : x + y;
      return ((u % t.period) + t.period) % t.period < t.period / 2 ? t.amp : -t.amp;
    }
    case 'checker':
      return ((Math.floor(x / t.cell) + Math.floor(y / t.cell)) & 1) === 0 ? t.amp : -t.amp;
    case 'speckle':
      return (hash3(Math.floor(x / t.cell), Math.floor(y / t.cell), t.salt) / 4294967296 - 0.5) * 2 * t.amp;
    case 'windows': {
      const u = ((x % t.cw) + t.cw) % t.cw;
      const v = ((y % t.ch) + t.ch) % t.ch;
      const inside = u > t.cw * 0.25 && u < t.cw * 0.75 && v > t.ch * 0.2 && v < t.ch * 0.7;
      return inside ? -t.amp : t.amp * 0.25;
    }
  }
}

function pickTexture(rnd: () => number, k: number, amp: number): Texture {
  const r = rnd();
  const px = (lo: number, hi: number): number => Math.max(2, Math.round((lo + rnd() * (hi - lo)) * k));
  if (r < 0.15) return { type: 'solid' };
  if (r < 0.4) return { type: 'stripes', period: px(4, 14), dir: Math.floor(rnd() * 3) as 0 | 1 | 2, amp };
  if (r < 0.6) return { type: 'checker', cell: px(3, 10), amp };
  if (r < 0.8) return { type: 'speckle', cell: px(2, 6), amp, salt: Math.floor(rnd() * 1e9) };
  return { type: 'windows', cw: px(10, 24), ch: px(12, 28), amp };
}

/** What places each part of a scene: its random sequence (drawn in a fixed order), size, texture scale, horizon. */
interface Layout {
  rnd: () => number;
  w: number;
  h: number;
  /** texture scale for big images */
  k: number;
  horizon: number;
}

/** An ellipse centred on (cx, cy) with radii rx, ry. */
function ellipse(cx: number, cy: number, rx: number, ry: number, color: RGB, tex: Texture, shade: number): Shape {
  return { form: 'ellipse', x0: cx - rx, y0: cy - ry, x1: cx + rx, y1: cy + ry, color, tex, shade };
}

function buildScene(seed: number, w: number, h: number): Scene {
  const rnd = mulberry32(hash3(seed, 0x5ce4e, 1));
  const k = Math.max(1, Math.min(w, h) / 1200); // texture scale for big images
  const skyHue = rnd() < 0.7 ? 190 + rnd() * 45 : rnd() * 360; // mostly blue skies, sometimes sunsets
  const skyTop = hsv(skyHue, 0.35 + rnd() * 0.5, 0.45 + rnd() * 0.4);
  const skyHorizon = hsv(skyHue + (rnd() - 0.5) * 60, 0.1 + rnd() * 0.3, 0.75 + rnd() * 0.25);
  const groundHue = rnd() < 0.6 ? 70 + rnd() * 70 : rnd() * 360;
  const groundFar = hsv(groundHue, 0.25 + rnd() * 0.4, 0.35 + rnd() * 0.35);
  const groundNear = hsv(groundHue + (rnd() - 0.5) * 40, 0.35 + rnd() * 0.5, 0.2 + rnd() * 0.4);
  const layout: Layout = { rnd, w, h, k, horizon: h * (0.35 + rnd() * 0.25) };
  const shapes = [
    ...skyShapes(layout, skyHue),
    ...standingObjects(layout),
    ...groundDots(layout),
    ...subjectShapes(layout),
  ];
  return {
    skyTop,
    skyHorizon,
    groundFar,
    groundNear,
    horizon: layout.horizon,
    hillAmp: h * (0.01 + rnd() * 0.04),
    hillFreq: ((1 + rnd() * 4) * 2 * Math.PI) / w,
    hillPhase: rnd() * 2 * Math.PI,
    groundTex: {
      type: 'speckle',
      cell: Math.max(2, Math.round((2 + rnd() * 2) * k)),
      amp: 14 + rnd() * 12,
      salt: hash3(seed, 7, 7),
    },
    groundStripes: {
      type: 'stripes',
      period: Math.max(4, Math.round((6 + rnd() * 10) * k)),
      dir: rnd() < 0.5 ? 1 : 2,
      amp: 4 + rnd() * 8,
    },
    shapes,
  };
}

/** Clouds or a sun in the sky. */
function skyShapes({ rnd, w, h, k, horizon }: Layout, skyHue: number): Shape[] {
  const shapes: Shape[] = [];
  const clouds = Math.floor(rnd() * 4);
  for (let i = 0; i < clouds; i++) {
    const cx = rnd() * w;
    const cy = horizon * (0.15 + rnd() * 0.6);
    const rx = w * (0.05 + rnd() * 0.12);
    const ry = rx * (0.3 + rnd() * 0.3);
    const color = hsv(skyHue, 0.05, 0.9 + rnd() * 0.1);
    shapes.push(ellipse(cx, cy, rx, ry, color, { type: 'speckle', cell: Math.round(3 * k), amp: 6, salt: i }, 0.15));
  }
  if (rnd() < 0.5) {
    const r = Math.min(w, h) * (0.03 + rnd() * 0.05);
    const cx = rnd() * w;
    const cy = horizon * (0.2 + rnd() * 0.5);
    shapes.push(ellipse(cx, cy, r, r, hsv(40 + rnd() * 20, 0.5 + rnd() * 0.4, 1), { type: 'solid' }, 0));
  }
  return shapes;
}

/** "Buildings", "boxes" and "trees" standing on the horizon. */
function standingObjects(layout: Layout): Shape[] {
  const { rnd, w, h, k, horizon } = layout;
  const shapes: Shape[] = [];
  const objects = 2 + Math.floor(rnd() * 5);
  for (let i = 0; i < objects; i++) {
    const bw = w * (0.05 + rnd() * 0.15);
    const bh = h * (0.08 + rnd() * 0.3);
    const bx = rnd() * (w - bw);
    const by = horizon + h * (rnd() * 0.08) - bh;
    if (rnd() < 0.35) {
      shapes.push(...tree(layout, { x: bx, y: by, w: bw, h: bh }, i));
    } else {
      shapes.push({
        form: 'rect',
        x0: bx,
        y0: by,
        x1: bx + bw,
        y1: by + bh,
        color: hsv(rnd() * 360, rnd() * 0.6, 0.3 + rnd() * 0.6),
        tex: pickTexture(rnd, k, 18 + rnd() * 22),
        shade: rnd() * 0.4,
      });
    }
  }
  return shapes;
}

/** A tree in the box at (x, y), w × h: trunk + round canopy with leafy speckle. */
function tree({ rnd, k }: Layout, box: { x: number; y: number; w: number; h: number }, i: number): Shape[] {
  const { x: bx, y: by, w: bw, h: bh } = box;
  const tw = bw * 0.15;
  const trunk: Shape = {
    form: 'rect',
    x0: bx + bw / 2 - tw / 2,
    y0: by + bh * 0.5,
    x1: bx + bw / 2 + tw / 2,
    y1: by + bh,
    color: hsv(25 + rnd() * 15, 0.6, 0.3 + rnd() * 0.2),
    tex: { type: 'stripes', period: Math.round(5 * k), dir: 1, amp: 10 },
    shade: 0.2,
  };
  const canopy: Shape = {
    form: 'ellipse',
    x0: bx,
    y0: by,
    x1: bx + bw,
    y1: by + bh * 0.65,
    color: hsv(80 + rnd() * 60, 0.5 + rnd() * 0.4, 0.3 + rnd() * 0.4),
    tex: { type: 'speckle', cell: Math.max(2, Math.round((2 + rnd() * 3) * k)), amp: 35, salt: 1000 + i },
    shade: 0.3,
  };
  return [trunk, canopy];
}

/** Small pebbles / flowers scattered on the ground (fine detail). */
function groundDots({ rnd, w, h, k, horizon }: Layout): Shape[] {
  const shapes: Shape[] = [];
  const dots = 150 + Math.floor(rnd() * 350);
  const dotHue = rnd() * 360;
  for (let i = 0; i < dots; i++) {
    const r = (1.5 + rnd() * 3) * k;
    const cx = rnd() * w;
    const cy = horizon + (h - horizon) * (0.05 + rnd() * 0.95);
    const color = hsv(dotHue + (rnd() - 0.5) * 80, 0.3 + rnd() * 0.6, 0.5 + rnd() * 0.5);
    shapes.push(ellipse(cx, cy, r, r, color, { type: 'solid' }, 0));
  }
  return shapes;
}

/** The subject: a strongly coloured figure, roughly in the middle third, on the ground. */
function subjectShapes({ rnd, w, h, k, horizon }: Layout): Shape[] {
  const subjectHue = rnd() * 360;
  const sh = h * (0.3 + rnd() * 0.25);
  const sw = sh * (0.3 + rnd() * 0.2);
  const sx = w * (0.25 + rnd() * 0.5);
  const feet = Math.min(h * 0.97, horizon + (h - horizon) * (0.5 + rnd() * 0.4));
  const body: Shape = {
    form: rnd() < 0.5 ? 'ellipse' : 'rect',
    x0: sx - sw / 2,
    y0: feet - sh * 0.78,
    x1: sx + sw / 2,
    y1: feet,
    color: hsv(subjectHue, 0.85 + rnd() * 0.15, 0.75 + rnd() * 0.25),
    tex: pickTexture(rnd, k, 30 + rnd() * 20),
    shade: 0.25,
  };
  if (body.tex.type === 'solid') body.tex = { type: 'checker', cell: Math.max(2, Math.round(5 * k)), amp: 35 };
  const head = sh * 0.22;
  const face: Shape = {
    form: 'ellipse',
    x0: sx - head / 2,
    y0: feet - sh,
    x1: sx + head / 2,
    y1: feet - sh + head,
    color: hsv(20 + rnd() * 20, 0.3 + rnd() * 0.3, 0.6 + rnd() * 0.35),
    tex: { type: 'speckle', cell: Math.max(2, Math.round(2 * k)), amp: 8, salt: 77 },
    shade: 0.1,
  };
  // a contrasting accessory (bag / ball)
  const acc = sw * (0.25 + rnd() * 0.2);
  const ax = sx + (rnd() < 0.5 ? -1 : 1) * (sw / 2 + acc * 0.6);
  const ay = feet - acc * (1 + rnd() * 2);
  const color = hsv(subjectHue + 150 + rnd() * 60, 0.9, 0.9);
  const stripes: Texture = { type: 'stripes', period: Math.max(3, Math.round(6 * k)), dir: 2, amp: 40 };
  return [body, face, ellipse(ax, ay, acc / 2, acc / 2, color, stripes, 0)];
}

/** Renders the noise-free scene, shifted by (dx, dy) scene pixels, into an RGB buffer. */
function renderScene(scene: Scene, w: number, h: number, dx: number, dy: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(w * h * 3);
  const hills = new Float32Array(w);
  for (let x = 0; x < w; x++)
    hills[x] = scene.horizon + scene.hillAmp * Math.sin((x + dx) * scene.hillFreq + scene.hillPhase);
  // Background: sky gradient above a gently hilly horizon, textured ground below.
  for (let y = 0; y < h; y++) {
    const sy = y + dy;
    const tSky = Math.min(1, Math.max(0, sy / scene.horizon));
    const sky = mix(scene.skyTop, scene.skyHorizon, tSky);
    const tGround = Math.min(1, Math.max(0, (sy - scene.horizon) / (h - scene.horizon)));
    const ground = mix(scene.groundFar, scene.groundNear, tGround);
    let i = y * w * 3;
    for (let x = 0; x < w; x++, i += 3) {
      const sx = x + dx;
      if (sy < hills[x]!) {
        out[i] = sky[0];
        out[i + 1] = sky[1];
        out[i + 2] = sky[2];
      } else {
        const t = texture(scene.groundTex, sx, sy) + texture(scene.groundStripes, sx, sy);
        out[i] = ground[0] + t;
        out[i + 1] = ground[1] + t;
        out[i + 2] = ground[2] + t;
      }
    }
  }
  // Shapes, painter's order.
  for (const s of scene.shapes) {
    const px0 = Math.max(0, Math.floor(s.x0 - dx));
    const px1 = Math.min(w - 1, Math.ceil(s.x1 - dx));
    const py0 = Math.max(0, Math.floor(s.y0 - dy));
    const py1 = Math.min(h - 1, Math.ceil(s.y1 - dy));
    if (px0 > px1 || py0 > py1) continue;
    const cx = (s.x0 + s.x1) / 2;
    const cy = (s.y0 + s.y1) / 2;
    const rx = (s.x1 - s.x0) / 2;
    const ry = (s.y1 - s.y0) / 2;
    for (let y = py0; y <= py1; y++) {
      const sy = y + dy;
      if (sy < s.y0 || sy > s.y1) continue;
      const shade = 1 - s.shade * ((sy - s.y0) / Math.max(1, s.y1 - s.y0));
      const ey = (sy - cy) / ry;
      let i = (y * w + px0) * 3;
      for (let x = px0; x <= px1; x++, i += 3) {
        const sx = x + dx;
        if (sx < s.x0 || sx > s.x1) continue;
        if (s.form === 'ellipse') {
          const ex = (sx - cx) / rx;
          if (ex * ex + ey * ey > 1) continue;
        }
        const t = texture(s.tex, sx, sy);
        out[i] = s.color[0] * shade + t;
        out[i + 1] = s.color[1] * shade + t;
        out[i + 2] = s.color[2] * shade + t;
      }
    }
  }
  return out;
}

function meanLuma(rgb: Uint8ClampedArray | Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < rgb.length; i += 3) sum += 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
  return sum / (rgb.length / 3) / 255;
}

/**
 * Burst frames: a little camera shake per frame, up to ±0.25% of the frame (±4 × ±3 px at 1600×1200);
 * frame 0 / undefined is unshifted.
 */
function frameShift(seed: number, frame: number | undefined, w: number, h: number): [number, number] {
  if (!frame) return [0, 0];
  const rnd = mulberry32(hash3(seed, frame, 0xb0757));
  return [Math.round((rnd() - 0.5) * 2 * (w / 400)), Math.round((rnd() - 0.5) * 2 * (h / 400))];
}

/** 4096 samples of a unit normal distribution (inverse CDF at evenly spaced quantiles), for fast noise. */
const NORMAL_TABLE = ((): Float32Array => {
  const table = new Float32Array(4096);
  for (let i = 0; i < table.length; i++) {
    const u = (i + 0.5) / table.length;
    // Winitzki's approximation of the inverse error function, scaled to a standard normal quantile
    const x = 2 * u - 1;
    const a = 0.147;
    const ln = Math.log(1 - x * x);
    const t = 2 / (Math.PI * a) + ln / 2;
    table[i] = Math.SQRT2 * Math.sign(x) * Math.sqrt(Math.sqrt(t * t - ln / a) - t);
  }
  return table;
})();

/** Exposure change plus mild sensor noise: gaussian luma noise and a little per-channel (chroma) noise. */
function develop(
  src: Uint8Array | Uint8ClampedArray,
  kind: SampleKind,
  shift: number,
  noiseSeed: number,
): Uint8ClampedArray {
  const out = new Uint8ClampedArray(src.length);
  let gain = 1;
  let offset = 0;
  let sigma = 2.5;
  if (kind === 'dark') {
    gain = 0.12;
    sigma = 2;
  } else if (kind === 'overexposed') {
    gain = 2.6;
    offset = 110;
  }
  offset += shift * gain;
  const chroma = sigma / 64; // 6-bit uniform per channel, about ±sigma/2
  let state = noiseSeed | 1; // xorshift32: one step per pixel
  for (let i = 0; i < src.length; i += 3) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const lum = NORMAL_TABLE[state & 4095]! * sigma;
    out[i] = src[i]! * gain + offset + lum + (((state >>> 12) & 63) - 31.5) * chroma;
    out[i + 1] = src[i + 1]! * gain + offset + lum + (((state >>> 18) & 63) - 31.5) * chroma;
    out[i + 2] = src[i + 2]! * gain + offset + lum + (((state >>> 24) & 63) - 31.5) * chroma;
  }
  return out;
}

/**
 * Stores an upright w×h image so that a viewer applying EXIF `orientation` shows it upright again: the
 * stored pixel (sx, sy) is the upright pixel the orientation's display transform maps it to.
 */
function orientPixels(
  rgb: Uint8ClampedArray,
  w: number,
  h: number,
  orientation: number,
): { data: Uint8ClampedArray; width: number; height: number } {
  if (orientation === 1) return { data: rgb, width: w, height: h };
  const swap = orientation >= 5;
  const sw = swap ? h : w;
  const sh = swap ? w : h;
  const out = new Uint8ClampedArray(rgb.length);
  let o = 0;
  for (let sy = 0; sy < sh; sy++) {
    for (let sx = 0; sx < sw; sx++, o += 3) {
      let x: number;
      let y: number;
      switch (orientation) {
        case 2:
          x = sw - 1 - sx;
          y = sy;
          break; // mirror horizontal
        case 3:
          x = sw - 1 - sx;
          y = sh - 1 - sy;
          break; // rotate 180
        case 4:
          x = sx;
          y = sh - 1 - sy;
          break; // mirror vertical
        case 5:
          x = sy;
          y = sx;
          break; // transpose
        case 6:
          x = sh - 1 - sy;
          y = sx;
          break; // display rotates 90° clockwise
        case 7:
          x = sh - 1 - sy;
          y = sw - 1 - sx;
          break; // transverse
        default:
          x = sy;
          y = sw - 1 - sx;
          break; // 8: display rotates 270° clockwise
      }
      const i = (y * w + x) * 3;
      out[o] = rgb[i]!;
      out[o + 1] = rgb[i + 1]!;
      out[o + 2] = rgb[i + 2]!;
    }
  }
  return { data: out, width: sw, height: sh };
}

function checkSide(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < MIN_SIDE || v > MAX_SIDE)
    throw new RangeError(`${name} must be an integer from ${MIN_SIDE} to ${MAX_SIDE}, got ${v}`);
  return v;
}

const KINDS: readonly SampleKind[] = ['good', 'blurred', 'dark', 'overexposed', 'burst'];

/** Encodes one sample to JPEG bytes. */
async function encodeSample(spec: SampleSpec): Promise<Buffer> {
  if (!KINDS.includes(spec.kind)) throw new RangeError(`unknown sample kind: ${String(spec.kind)}`);
  if (!Number.isFinite(spec.seed)) throw new RangeError(`seed must be a finite number, got ${spec.seed}`);
  const w = checkSide(spec.width, DEFAULT_SAMPLE_WIDTH, 'width');
  const h = checkSide(spec.height, DEFAULT_SAMPLE_HEIGHT, 'height');
  const orientation = spec.orientation ?? 1;
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8)
    throw new RangeError(`orientation must be an integer from 1 to 8, got ${orientation}`);
  if (spec.frame !== undefined && (!Number.isInteger(spec.frame) || spec.frame < 0))
    throw new RangeError(`frame must be a non-negative integer, got ${spec.frame}`);
  const seed = Math.trunc(spec.seed) >>> 0;

  const scene = buildScene(seed, w, h);
  const [dx, dy] = frameShift(seed, spec.frame, w, h);
  let clean: Uint8Array | Uint8ClampedArray = renderScene(scene, w, h, dx, dy);
  // "Good" exposure: shift the scene so its mean luma is a comfortable mid-grey (0.44-0.56).
  const target = 0.44 + mulberry32(hash3(seed, 0xe7, 3))() * 0.12;
  const shift = (target - meanLuma(clean)) * 255;
  if (spec.kind === 'blurred') {
    const sigma = Math.max(4, w / 300);
    clean = await sharp(clean, { raw: { width: w, height: h, channels: 3 } })
      .blur(sigma)
      .raw()
      .toBuffer();
  }
  const developed = develop(clean, spec.kind, shift, hash3(seed, (spec.frame ?? 0) + 1, 0x40153));
  const stored = orientPixels(developed, w, h, orientation);
  let pipeline = sharp(stored.data, { raw: { width: stored.width, height: stored.height, channels: 3 } }).jpeg({
    quality: JPEG_QUALITY,
    progressive: spec.progressive === true,
  });
  if (spec.orientation !== undefined) pipeline = pipeline.withMetadata({ orientation });
  return pipeline.toBuffer();
}

/** Deterministic for a seed: same spec → byte-identical file. */
export async function writeSample(spec: SampleSpec, path: string): Promise<void> {
  const bytes = await encodeSample(spec);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

// ---------------------------------------------------------------------------------------------------------
// Sample sets.

type Unit =
  | { type: 'photo'; kind: Exclude<SampleKind, 'burst'>; seed: number; orientation?: number; progressive?: boolean }
  | { type: 'burst'; id: number; seed: number; frames: number }
  | { type: 'unreadable'; what: 'truncated' | 'empty' | 'text'; seed: number };

const DEFECTS: Record<SampleKind, string | null> = {
  good: null,
  blurred: 'blurred',
  dark: 'underexposed',
  overexposed: 'overexposed',
  burst: 'near-duplicate',
};

const UNREADABLE: Record<'truncated' | 'empty' | 'text', string> = {
  truncated: 'truncated file',
  empty: 'empty file',
  text: 'not an image',
};

/** How many files of each kind a set holds. */
interface SampleMix {
  good: number;
  bursts: number;
  burstFrames: number;
  /** blurred, dark and overexposed photos, each */
  each: number;
  unreadable: number;
}

/** Mix for `count` files: 60 → 27 good (3 EXIF-rotated, 7 progressive), 3 bursts × 4, 6 blurred, 6 dark, 6 overexposed, 3 unreadable. */
function planMix(count: number, unreadable: boolean): SampleMix {
  const burstFrames = 4;
  const bursts = Math.floor(count / 20);
  const each = Math.round(count / 10);
  const bad = unreadable ? Math.min(3, Math.floor(count / 10)) : 0;
  const good = count - bursts * burstFrames - 3 * each - bad;
  return { good, bursts, burstFrames, each, unreadable: bad };
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** A folder of photos with known defects, named so a human sees what each is, e.g. 007-good.jpg, 012-blurred.jpg, 020-burst3-frame2.jpg, 058-unreadable-truncated.jpg. */
export async function generateSampleSet(
  dir: string,
  options: { count?: number; width?: number; height?: number; seed?: number; unreadable?: boolean } = {},
): Promise<SampleFile[]> {
  const count = options.count ?? DEFAULT_SAMPLE_COUNT;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const width = checkSide(options.width, DEFAULT_SAMPLE_WIDTH, 'width');
  const height = checkSide(options.height, DEFAULT_SAMPLE_HEIGHT, 'height');
  const setSeed = Math.trunc(options.seed ?? 1) >>> 0;
  const units = placeUnits(planMix(count, options.unreadable !== false), setSeed);

  await mkdir(dir, { recursive: true });
  const digits = Math.max(3, String(count).length);
  const files: SampleFile[] = [];
  let index = 0;
  const nameFor = (suffix: string): { name: string; path: string } => {
    const name = `${String(++index).padStart(digits, '0')}-${suffix}.jpg`;
    return { name, path: join(dir, name) };
  };
  for (const unit of units) files.push(...(await writeUnit(unit, nameFor, { width, height })));
  return files;
}

/** The set's units in file order: each kind spread evenly over the set, from the set's seed. */
function placeUnits(mixPlan: SampleMix, setSeed: number): Unit[] {
  const rnd = mulberry32(hash3(setSeed, 0x5e7, 11));
  let nextSeed = 0;
  const seedFor = (): number => hash3(setSeed, ++nextSeed, 0x9a11e);
  const groups = unitGroups(mixPlan, rnd, seedFor);
  // Spread each kind evenly over the set: unit i of m gets a jittered position (i + u) / m, then sort.
  const placed: { key: number; unit: Unit }[] = [];
  for (const group of groups) {
    group.forEach((unit, i) => placed.push({ key: (i + 0.1 + 0.8 * rnd()) / group.length, unit }));
  }
  placed.sort((a, b) => a.key - b.key);
  return placed.map(({ unit }) => unit);
}

/** Units of each kind; a burst is one unit so its frames stay consecutive like a camera's. */
function unitGroups(mixPlan: SampleMix, rnd: () => number, seedFor: () => number): Unit[][] {
  const groups: Unit[][] = [];
  const rotations = [6, 8, 3];
  const rotated = Math.min(rotations.length, Math.floor(mixPlan.good / 9));
  groups.push(
    shuffle(
      Array.from(
        { length: mixPlan.good },
        (_, i): Unit => ({
          type: 'photo',
          kind: 'good',
          seed: seedFor(),
          ...(i < rotated ? { orientation: rotations[i] } : {}),
          ...(i % 4 === 1 ? { progressive: true } : {}),
        }),
      ),
      rnd,
    ),
  );
  groups.push(
    Array.from(
      { length: mixPlan.bursts },
      (_, i): Unit => ({ type: 'burst', id: i + 1, seed: seedFor(), frames: mixPlan.burstFrames }),
    ),
  );
  for (const kind of ['blurred', 'dark', 'overexposed'] as const) {
    groups.push(
      Array.from(
        { length: mixPlan.each },
        (_, i): Unit => ({ type: 'photo', kind, seed: seedFor(), ...(i % 3 === 2 ? { progressive: true } : {}) }),
      ),
    );
  }
  groups.push(
    shuffle(
      (['truncated', 'empty', 'text'] as const)
        .slice(0, mixPlan.unreadable)
        .map((what): Unit => ({ type: 'unreadable', what, seed: seedFor() })),
      rnd,
    ),
  );
  return groups;
}

/** Writes a unit's file(s), named by `nameFor` in order: a photo, a burst's frames, or an unreadable file. */
async function writeUnit(
  unit: Unit,
  nameFor: (suffix: string) => { name: string; path: string },
  common: { width: number; height: number },
): Promise<SampleFile[]> {
  if (unit.type === 'photo') {
    const { name, path } = nameFor(unit.kind);
    await writeSample(
      { kind: unit.kind, seed: unit.seed, ...common, orientation: unit.orientation, progressive: unit.progressive },
      path,
    );
    return [{ path, name, kind: unit.kind, defect: DEFECTS[unit.kind] }];
  }
  if (unit.type === 'burst') {
    const files: SampleFile[] = [];
    for (let frame = 1; frame <= unit.frames; frame++) {
      const { name, path } = nameFor(`burst${unit.id}-frame${frame}`);
      await writeSample({ kind: 'burst', seed: unit.seed, ...common, frame }, path);
      files.push({ path, name, kind: 'burst', defect: DEFECTS.burst, burst: unit.id });
    }
    return files;
  }
  const { name, path } = nameFor(`unreadable-${unit.what}`);
  await writeFile(path, await unreadableBytes(unit, common));
  return [{ path, name, kind: 'unreadable', defect: UNREADABLE[unit.what] }];
}

/** What an unreadable sample holds: the first 40% of a good photo, nothing, or a line of text. */
async function unreadableBytes(
  unit: Extract<Unit, { type: 'unreadable' }>,
  common: { width: number; height: number },
): Promise<Buffer> {
  if (unit.what === 'truncated') {
    const full = await encodeSample({ kind: 'good', seed: unit.seed, ...common });
    return full.subarray(0, Math.floor(full.length * 0.4));
  }
  if (unit.what === 'empty') return Buffer.alloc(0);
  return Buffer.from(
    'This is not a photo. It is a text file that happens to be named .jpg,\nlike the ones people find in real folders.\n',
    'utf8',
  );
}
