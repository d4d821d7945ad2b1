/**
 * Copies of a real photograph with the flaws a camera produces, for the selection-quality benchmark: a crop
 * (re-framing), out of focus, camera shake, under- and over-exposure, high-ISO noise. Strengths are given
 * as a 24 MP camera would show them (6000 px on the long side) and scaled to the copy's own size, so a
 * 2400 px copy carries the blur and noise a 24 MP original shows once seen at 2400 px.
 */
import { mulberry32 } from '../random.js';
import { sharp } from '../sharp.js';

/** Long side, px, of the 24 MP frame that flaw strengths are expressed at. */
export const CAMERA_LONG_SIDE = 6000;

export type Flaw =
  /** Gaussian defocus, σ in px at 24 MP. */
  | { kind: 'defocus'; sigma: number }
  /** Straight camera shake, length in px at 24 MP. */
  | { kind: 'motion'; length: number; direction: 'horizontal' | 'vertical' }
  /** Exposure times `factor` in linear light, clipped: < 1 under-exposed, > 1 blown out. */
  | { kind: 'exposure'; factor: number }
  /** Sensor noise, σ in 8-bit levels per channel at 24 MP (ISO 6400 on a 24 MP sensor: about 12–16). */
  | { kind: 'noise'; sigma: number; seed: number };

export interface VariantSpec {
  /** The region of the source, px. */
  crop: { left: number; top: number; width: number; height: number };
  /** Long side of the copy, px. */
  longSide: number;
  /** Exposure change of a "slightly different moment" (linear factor), applied before any flaw. */
  exposure?: number;
  flaws?: readonly Flaw[];
  quality?: number;
}

/** Writes one copy of `source` as a baseline JPEG at `out`. */
export async function writeVariant(source: string, spec: VariantSpec, out: string): Promise<void> {
  const { crop, longSide } = spec;
  const scale = longSide / Math.max(crop.width, crop.height);
  const width = Math.round(crop.width * scale);
  const height = Math.round(crop.height * scale);
  const atCamera = longSide / CAMERA_LONG_SIDE;
  let image = sharp(source).autoOrient().extract(crop).resize(width, height, { kernel: 'lanczos3' }).removeAlpha();
  for (const flaw of spec.flaws ?? []) {
    if (flaw.kind === 'defocus')
      image = sharp(await image.raw().toBuffer(), rawOf(width, height)).blur(Math.max(0.3, flaw.sigma * atCamera));
    if (flaw.kind === 'motion')
      image = sharp(await image.raw().toBuffer(), rawOf(width, height)).convolve(
        lineKernel(flaw.length * atCamera, flaw.direction),
      );
  }
  const rgb = await image.raw().toBuffer();
  const exposure =
    (spec.exposure ?? 1) * (spec.flaws ?? []).reduce((f, x) => (x.kind === 'exposure' ? f * x.factor : f), 1);
  if (exposure !== 1) applyExposure(rgb, exposure);
  for (const flaw of spec.flaws ?? [])
    if (flaw.kind === 'noise') addNoise(rgb, flaw.sigma * Math.sqrt(atCamera), flaw.seed);
  await sharp(rgb, rawOf(width, height))
    .jpeg({ quality: spec.quality ?? 90 })
    .toFile(out);
}

function rawOf(width: number, height: number) {
  return { raw: { width, height, channels: 3 as const } };
}

/** A normalised line of odd length ≥ 3, in the middle of a band 3 px wide (sharp's kernels are ≥ 3 × 3). */
function lineKernel(length: number, direction: 'horizontal' | 'vertical') {
  const n = Math.max(3, 2 * Math.round(length / 2) + 1);
  const kernel = new Array<number>(3 * n).fill(0);
  for (let i = 0; i < n; i++) kernel[direction === 'horizontal' ? n + i : 3 * i + 1] = 1 / n;
  return { width: direction === 'horizontal' ? n : 3, height: direction === 'horizontal' ? 3 : n, kernel, scale: 1 };
}

/** Multiplies light (sRGB decoded to linear, then encoded again), clipping at white. */
function applyExposure(rgb: Buffer, factor: number): void {
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) {
    const linear = Math.pow(v / 255, 2.2) * factor;
    lut[v] = Math.round(255 * Math.pow(Math.min(1, linear), 1 / 2.2));
  }
  for (let i = 0; i < rgb.length; i++) rgb[i] = lut[rgb[i]!]!;
}

/**
 * Gaussian noise per channel (luminance and chroma noise alike), seeded. Its σ at the copy's size is the
 * 24 MP σ times √scale: a downscale averages pixels, but a camera's noise is not white at 1:1 (demosaicing
 * and in-camera noise reduction correlate neighbours), so it does not fall as fast as for white noise.
 */
function addNoise(rgb: Buffer, sigma: number, seed: number): void {
  const random = mulberry32(seed);
  for (let i = 0; i < rgb.length; i += 2) {
    // Box–Muller: two normal deviates per pair of uniforms.
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const t = 2 * Math.PI * random();
    rgb[i] = clampByte(rgb[i]! + sigma * r * Math.cos(t));
    if (i + 1 < rgb.length) rgb[i + 1] = clampByte(rgb[i + 1]! + sigma * r * Math.sin(t));
  }
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
