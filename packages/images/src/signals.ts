/**
 * Cheap per-photo quality signals measured on the thumbnail the worker already holds: no extra decode.
 * Pure JS over raw RGB so they are deterministic and testable without sharp. They rank photos when the
 * model's votes tie or run out; they are hints, not verdicts.
 */

export interface QualitySignals {
  /** 0..1, normalised variance of a Laplacian on luma in the sharpest regions, the noise's share taken out (1 = crisp). */
  sharpness: number;
  /**
   * Noise σ in 8-bit luma levels, estimated in the flattest regions (Immerkær's operator, which cancels
   * edges and gradients): detail does not read as noise, and noise does not read as detail.
   */
  noise: number;
  /** Mean luma, 0..1. */
  brightness: number;
  /** Share of pixels with luma < 0.04. */
  clippedDark: number;
  /** Share of pixels with luma > 0.96. */
  clippedBright: number;
  /** Standard deviation of luma, 0..1 (0.5 at most). */
  contrast: number;
  /** 0..1, 1 = well exposed: mean near mid-tones and little clipping on either side. */
  exposure: number;
  /** 64-bit dHash of a 9 × 8 luma downsample, 16 lowercase hex chars; near-duplicates are a few bits apart. */
  hash: string;
  /**
   * Colour layout: the mean colour of a 4 × 4 grid of regions, each channel normalised over the frame (its
   * mean and spread taken out, so exposure changes leave it alone), one byte each: 96 hex chars.
   */
  layout: string;
  /** Mean luma of a 16 × 16 grid of regions, one byte each (512 hex chars): near-duplicates correlate. */
  signature: string;
  /** 0..1 overall technical score combining sharpness and exposure. */
  quality: number;
}

/**
 * Side (px) of the square image the signals are calibrated for; thumbnailFromFile measures at this size
 * whatever thumbnail it returns. Smaller images read as less sharp.
 */
export const SIGNAL_SIDE = 320;

const DARK_CLIP = 0.04;
const BRIGHT_CLIP = 0.96;

/**
 * Laplacian variance (in 8-bit luma units²) at which sharpness reads 0.5. Calibrated at SIGNAL_SIDE on
 * 1600 px synthetic scenes and the sample set: in-focus photos read 0.3–0.95, the same scenes blurred with
 * σ ≥ 3 read under 0.2.
 */
const SHARPNESS_HALF = 400;

/** Tiles per side for the local sharpness measure. */
const SHARPNESS_TILES = 4;

/** Mean luma range (inclusive) counted as fully well exposed; low-key and high-key shots stay unpunished. */
const MID_LOW = 0.3;
const MID_HIGH = 0.62;
/** Distance beyond the mid range at which the mean alone rules the exposure out. */
const MID_FALLOFF = 0.28;

export function computeSignals(rgb: Uint8Array, width: number, height: number): QualitySignals {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`image size must be positive integers, got ${width} × ${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new RangeError(`expected ${width * height * 3} bytes of RGB for ${width} × ${height}, got ${rgb.length}`);
  }
  const luma = toLuma(rgb, width, height);
  const n = width * height;

  let sum = 0;
  let sumSq = 0;
  let dark = 0;
  let bright = 0;
  for (let i = 0; i < n; i++) {
    const v = luma[i]!;
    sum += v;
    sumSq += v * v;
    if (v < DARK_CLIP * 255) dark++;
    else if (v > BRIGHT_CLIP * 255) bright++;
  }
  const mean = sum / n;
  const variance = Math.max(0, sumSq / n - mean * mean);
  const brightness = mean / 255;
  const contrast = Math.sqrt(variance) / 255;
  const clippedDark = dark / n;
  const clippedBright = bright / n;

  const noise = noiseOf(luma, width, height);
  const sharpness = sharpnessOf(luma, width, height, noise);
  const exposure = exposureOf(brightness, clippedDark, clippedBright);
  // Weighted geometric mean: a photo that fails badly on either axis scores low whatever the other says,
  // which an average would hide. Sharpness weighs more because the model judges light and colour itself
  // but cannot see focus errors at thumbnail size.
  const quality = Math.pow(sharpness, 0.6) * Math.pow(exposure, 0.4);

  return {
    sharpness: round(sharpness),
    noise: round(noise),
    brightness: round(brightness),
    clippedDark: round(clippedDark),
    clippedBright: round(clippedBright),
    contrast: round(contrast),
    exposure: round(exposure),
    hash: dHash(luma, width, height),
    layout: colourLayout(rgb, width, height),
    signature: lumaSignature(luma, width, height),
    quality: round(quality),
  };
}

/**
 * Sharpness in the softer of the two directions, on luma at 1:1: the variance of the second difference
 * along rows and along columns, each over the sharpest quarter of tiles, the smaller of the two mapped to
 * 0..1 as `sharpness` is. Camera shake smears one direction and leaves the other crisp, so a plain Laplacian
 * barely moves; this one falls. Noise (σ) is taken out as in `sharpness` (a 1-D second difference of white
 * noise has variance 6σ²).
 */
export function directionalSharpness(rgb: Uint8Array, width: number, height: number, noise: number): number {
  return softerSharpness(toLuma(rgb, width, height), width, height, noise);
}

/**
 * Focus and noise of a full-resolution square (Thumbnail.detail): noise as QualitySignals.noise measures it,
 * and directionalSharpness, from one luma plane and nothing else (no hash, layout or exposure: not needed).
 */
export function detailSignals(rgb: Uint8Array, width: number, height: number): { sharpness: number; noise: number } {
  const luma = toLuma(rgb, width, height);
  const noise = round(noiseOf(luma, width, height));
  return { sharpness: softerSharpness(luma, width, height, noise), noise };
}

function softerSharpness(luma: Float64Array, width: number, height: number, noise: number): number {
  const along = (dx: number, dy: number) => {
    const tiles = 4;
    const variances: number[] = [];
    for (let ty = 0; ty < tiles; ty++) {
      for (let tx = 0; tx < tiles; tx++) {
        let sum = 0;
        let sumSq = 0;
        let n = 0;
        const y1 = Math.min(height - 1, Math.floor(((ty + 1) * height) / tiles));
        const x1 = Math.min(width - 1, Math.floor(((tx + 1) * width) / tiles));
        for (let y = Math.max(1, Math.floor((ty * height) / tiles)); y < y1; y++) {
          for (let x = Math.max(1, Math.floor((tx * width) / tiles)); x < x1; x++) {
            const i = y * width + x;
            const d = luma[i - dy * width - dx]! - 2 * luma[i]! + luma[i + dy * width + dx]!;
            sum += d;
            sumSq += d * d;
            n++;
          }
        }
        if (n > 0) variances.push(Math.max(0, sumSq / n - (sum / n) ** 2));
      }
    }
    variances.sort((a, b) => b - a);
    const top = variances.slice(0, Math.max(1, Math.ceil(variances.length / 4)));
    return Math.max(0, top.reduce((a, b) => a + b, 0) / top.length - 6 * noise * noise);
  };
  const v = Math.min(along(1, 0), along(0, 1));
  return round(v / (v + SHARPNESS_HALF / 4));
}

/** Hamming distance of two hex hashes of the same length (0..64 for the 16-char hashes made here). */
export function hashDistance(a: string, b: string): number {
  if (a.length !== b.length || !/^[0-9a-f]*$/i.test(a) || !/^[0-9a-f]*$/i.test(b)) {
    throw new RangeError(`cannot compare hashes "${a}" and "${b}": need hex strings of equal length`);
  }
  let distance = 0;
  for (let i = 0; i < a.length; i++) {
    let x = parseInt(a[i]!, 16) ^ parseInt(b[i]!, 16);
    while (x) {
      distance += x & 1;
      x >>= 1;
    }
  }
  return distance;
}

/**
 * The luma plane, reused from call to call (computeSignals, detailSignals and detailRegion are synchronous and
 * keep nothing of it): a fresh 0.8 MB array per photo would be mapped, faulted in and unmapped each time, and
 * left for the garbage collector between.
 */
let lumaScratch = new Float64Array(0);

/**
 * BT.601 luma on the gamma-encoded values, the same weights JPEG uses; 0..255 floats. The array is the shared
 * scratch: valid until the next call, so read it before anything else asks for luma.
 */
export function toLuma(rgb: Uint8Array, width: number, height: number): Float64Array {
  if (lumaScratch.length < width * height) lumaScratch = new Float64Array(width * height);
  const luma = lumaScratch.subarray(0, width * height);
  for (let i = 0, p = 0; i < luma.length; i++, p += 3) {
    luma[i] = 0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!;
  }
  return luma;
}

/**
 * Variance of the 4-neighbour Laplacian, taken per tile and averaged over the sharpest quarter of tiles.
 * A whole-image variance would call a sharp subject on a creamy bokeh background "blurred"; the sharpest
 * regions say whether anything is in focus. v / (v + SHARPNESS_HALF) maps the unbounded variance to 0..1.
 */
function sharpnessOf(luma: Float64Array, width: number, height: number, noise: number): number {
  if (width < 3 || height < 3) return 0;
  const tilesX = Math.min(SHARPNESS_TILES, width - 2);
  const tilesY = Math.min(SHARPNESS_TILES, height - 2);
  const sums = new Float64Array(tilesX * tilesY);
  const sumsSq = new Float64Array(tilesX * tilesY);
  const counts = new Uint32Array(tilesX * tilesY);
  // Tile columns as runs of x, so the inner loop accumulates in locals.
  const columnEnds: number[] = [];
  for (let tx = 0; tx < tilesX; tx++) {
    let x = 1;
    while (x < width - 1 && Math.min(tilesX - 1, Math.floor(((x - 1) * tilesX) / (width - 2))) <= tx) x++;
    columnEnds.push(x);
  }
  for (let y = 1; y < height - 1; y++) {
    const ty = Math.min(tilesY - 1, Math.floor(((y - 1) * tilesY) / (height - 2)));
    let x = 1;
    for (let tx = 0; tx < tilesX; tx++) {
      const end = columnEnds[tx]!;
      let sum = 0;
      let sumSq = 0;
      const from = x;
      for (let i = y * width + x; x < end; x++, i++) {
        const lap = luma[i - 1]! + luma[i + 1]! + luma[i - width]! + luma[i + width]! - 4 * luma[i]!;
        sum += lap;
        sumSq += lap * lap;
      }
      const t = ty * tilesX + tx;
      sums[t] = sums[t]! + sum;
      sumsSq[t] = sumsSq[t]! + sumSq;
      counts[t] = counts[t]! + (end - from);
    }
  }
  const variances: number[] = [];
  for (let t = 0; t < counts.length; t++) {
    const c = counts[t]!;
    if (c === 0) continue;
    const m = sums[t]! / c;
    variances.push(Math.max(0, sumsSq[t]! / c - m * m));
  }
  variances.sort((a, b) => b - a);
  const top = variances.slice(0, Math.max(1, Math.ceil(variances.length / 4)));
  // White noise of σ adds 20σ² to the 4-neighbour Laplacian's variance (1 + 1 + 1 + 1 + 16): take it out.
  const v = Math.max(0, top.reduce((s, x) => s + x, 0) / top.length - 20 * noise * noise);
  return v / (v + SHARPNESS_HALF);
}

/** Tiles per side for the noise estimate, and the share of flattest tiles it is taken from. */
const NOISE_TILES = 8;
const NOISE_FLAT_SHARE = 0.25;
/** Tiles whose mean luma lies outside these levels are left out of the noise estimate. */
const NOISE_CLIPPED_LOW = 12;
const NOISE_CLIPPED_HIGH = 243;

/**
 * Immerkær's fast noise estimate (σ = √(π/2) / 6 · mean |I ∗ N|, N = [1 −2 1; −2 4 −2; 1 −2 1]) per tile,
 * averaged over the flattest quarter of tiles (fewest strong edges, by the same operator): texture raises
 * the operator too, so only where the frame is smooth does it read the noise alone.
 */
function noiseOf(luma: Float64Array, width: number, height: number): number {
  if (width < 3 || height < 3) return 0;
  const tilesX = Math.min(NOISE_TILES, width - 2);
  const tilesY = Math.min(NOISE_TILES, height - 2);
  const sums = new Float64Array(tilesX * tilesY);
  const levels = new Float64Array(tilesX * tilesY);
  const counts = new Uint32Array(tilesX * tilesY);
  for (let y = 1; y < height - 1; y++) {
    const ty = Math.min(tilesY - 1, Math.floor(((y - 1) * tilesY) / (height - 2)));
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      levels[ty * tilesX + Math.min(tilesX - 1, Math.floor(((x - 1) * tilesX) / (width - 2)))]! += luma[i]!;
      const v =
        luma[i - width - 1]! -
        2 * luma[i - width]! +
        luma[i - width + 1]! -
        2 * luma[i - 1]! +
        4 * luma[i]! -
        2 * luma[i + 1]! +
        luma[i + width - 1]! -
        2 * luma[i + width]! +
        luma[i + width + 1]!;
      const t = ty * tilesX + Math.min(tilesX - 1, Math.floor(((x - 1) * tilesX) / (width - 2)));
      sums[t] = sums[t]! + Math.abs(v);
      counts[t] = counts[t]! + 1;
    }
  }
  const means: number[] = [];
  for (let t = 0; t < counts.length; t++) {
    if (counts[t] === 0) continue;
    // Clipped highlights and crushed shadows are flat because the noise was clipped away with the light.
    const level = levels[t]! / counts[t]!;
    if (level > NOISE_CLIPPED_LOW && level < NOISE_CLIPPED_HIGH) means.push(sums[t]! / counts[t]!);
  }
  if (means.length === 0) return 0;
  means.sort((a, b) => a - b);
  const flat = means.slice(0, Math.max(1, Math.ceil(means.length * NOISE_FLAT_SHARE)));
  return (Math.sqrt(Math.PI / 2) / 6) * (flat.reduce((a, b) => a + b, 0) / flat.length);
}

/** See QualitySignals.layout. */
function colourLayout(rgb: Uint8Array, width: number, height: number): string {
  const side = 4;
  const cells = new Float64Array(side * side * 3);
  for (let ch = 0; ch < 3; ch++)
    areaMeans(rgb, width, height, side, side, 3, ch).forEach((v, k) => (cells[k * 3 + ch] = v));
  let hex = '';
  const normalised = new Float64Array(cells.length);
  for (let ch = 0; ch < 3; ch++) {
    let mean = 0;
    for (let k = ch; k < cells.length; k += 3) mean += cells[k]!;
    mean /= side * side;
    let spread = 0;
    for (let k = ch; k < cells.length; k += 3) spread += (cells[k]! - mean) ** 2;
    spread = Math.max(4, Math.sqrt(spread / (side * side)));
    for (let k = ch; k < cells.length; k += 3) normalised[k] = (cells[k]! - mean) / spread;
  }
  for (const v of normalised)
    hex += Math.round(Math.max(0, Math.min(255, 128 + v * 40)))
      .toString(16)
      .padStart(2, '0');
  return hex;
}

/**
 * meanScore is 1 for a mean luma in [MID_LOW, MID_HIGH] and falls linearly to 0 MID_FALLOFF beyond it.
 * Clipping multiplies in: shadows may block up a little (silhouettes, night shots) before it counts, blown
 * highlights count sooner because they are unrecoverable and more visible.
 */
function exposureOf(brightness: number, clippedDark: number, clippedBright: number): number {
  const off = brightness < MID_LOW ? MID_LOW - brightness : brightness > MID_HIGH ? brightness - MID_HIGH : 0;
  const meanScore = clamp01(1 - off / MID_FALLOFF);
  const darkScore = 1 - clamp01((clippedDark - 0.05) / 0.45);
  const brightScore = 1 - clamp01((clippedBright - 0.02) / 0.3);
  return meanScore * darkScore * brightScore;
}

/** See QualitySignals.signature. */
function lumaSignature(luma: Float64Array, width: number, height: number): string {
  let hex = '';
  for (const v of areaMeans(luma, width, height, 16, 16))
    hex += Math.min(255, Math.round(v)).toString(16).padStart(2, '0');
  return hex;
}

/**
 * Means of a `cols` × `rows` grid of areas of one channel of an interleaved plane (`channels` values per
 * pixel), row by row.
 */
function areaMeans(
  plane: ArrayLike<number>,
  width: number,
  height: number,
  cols: number,
  rows: number,
  channels = 1,
  channel = 0,
): Float64Array {
  const means = new Float64Array(cols * rows);
  for (let r = 0; r < rows; r++) {
    const y0 = Math.floor((r * height) / rows);
    const y1 = Math.max(y0 + 1, Math.floor(((r + 1) * height) / rows));
    for (let c = 0; c < cols; c++) {
      const x0 = Math.floor((c * width) / cols);
      const x1 = Math.max(x0 + 1, Math.floor(((c + 1) * width) / cols));
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += plane[(y * width + x) * channels + channel]!;
      means[r * cols + c] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  return means;
}

/**
 * dHash: area-average luma down to 9 × 8, then one bit per horizontal neighbour pair (left brighter than
 * right), row by row, most significant bit first. Robust to scaling, mild noise and re-encoding.
 */
function dHash(luma: Float64Array, width: number, height: number): string {
  const cols = 9;
  const rows = 8;
  const small = areaMeans(luma, width, height, cols, rows);
  let hex = '';
  for (let r = 0; r < rows; r++) {
    let byte = 0;
    for (let c = 0; c < cols - 1; c++) {
      byte = (byte << 1) | (small[r * cols + c]! > small[r * cols + c + 1]! ? 1 : 0);
    }
    hex += byte.toString(16).padStart(2, '0');
  }
  return hex;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Rounded so the signals are stable to store and compare (no float noise in JSON). */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
