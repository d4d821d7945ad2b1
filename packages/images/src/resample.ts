/**
 * Lanczos-3 downscaling of a square raw RGB image in plain JS, the same kernel sharp's resize uses, so a
 * thumbnail derived here looks like one sharp would have made directly.
 */

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  width: number;
}

/** Normalised filter taps for each output index; the kernel is stretched by the scale to low-pass first. */
function taps(from: number, to: number): Taps {
  const scale = from / to;
  const support = 3 * Math.max(1, scale);
  const width = Math.ceil(2 * support) + 1;
  const start = new Int32Array(to);
  const count = new Int32Array(to);
  const weights = new Float64Array(to * width);
  for (let i = 0; i < to; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const first = Math.max(0, Math.ceil(centre - support));
    const last = Math.min(from - 1, Math.floor(centre + support));
    let total = 0;
    for (let j = first; j <= last; j++) {
      const w = lanczos3((j - centre) / Math.max(1, scale));
      weights[i * width + (j - first)] = w;
      total += w;
    }
    for (let j = first; j <= last; j++) weights[i * width + (j - first)]! /= total;
    start[i] = first;
    count[i] = last - first + 1;
  }
  return { start, count, weights, width };
}

/** Taps of the last few (from, to) pairs: a worker resizes between the same two or three sizes all day. */
const tapsCache = new Map<string, Taps>();

function cachedTaps(from: number, to: number): Taps {
  const key = `${from}:${to}`;
  let t = tapsCache.get(key);
  if (!t) {
    if (tapsCache.size >= 8) tapsCache.delete(tapsCache.keys().next().value!);
    t = taps(from, to);
    tapsCache.set(key, t);
  }
  return t;
}

/**
 * The horizontal pass's output, reused from call to call (calls are synchronous): a fresh 0.6–1.8 MB array
 * per photo would be mapped, faulted in and unmapped each time, and left for the garbage collector between.
 */
let rowsScratch = new Float32Array(0);

/** Resizes a `from` × `from` RGB image to `to` × `to`, horizontally then vertically. */
export function resampleSquare(rgb: Uint8Array, from: number, to: number): Buffer {
  if (rgb.length !== from * from * 3) throw new RangeError(`expected ${from * from * 3} bytes, got ${rgb.length}`);
  if (from === to) return Buffer.from(rgb);
  const t = cachedTaps(from, to);
  if (rowsScratch.length < from * to * 3) rowsScratch = new Float32Array(from * to * 3);
  const rows = rowsScratch;
  const { start, count, weights, width } = t;
  for (let y = 0; y < from; y++) {
    const row = y * from * 3;
    for (let x = 0; x < to; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const n = count[x]!;
      const w0 = x * width;
      let p = row + start[x]! * 3;
      for (let k = 0; k < n; k++, p += 3) {
        const w = weights[w0 + k]!;
        r += w * rgb[p]!;
        g += w * rgb[p + 1]!;
        b += w * rgb[p + 2]!;
      }
      const o = (y * to + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  const out = Buffer.allocUnsafe(to * to * 3);
  const stride = to * 3;
  for (let y = 0; y < to; y++) {
    const n = count[y]!;
    const w0 = y * width;
    const first = start[y]! * stride;
    for (let x = 0; x < to; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let p = first + x * 3;
      for (let k = 0; k < n; k++, p += stride) {
        const w = weights[w0 + k]!;
        r += w * rows[p]!;
        g += w * rows[p + 1]!;
        b += w * rows[p + 2]!;
      }
      const o = (y * to + x) * 3;
      out[o] = clampByte(r);
      out[o + 1] = clampByte(g);
      out[o + 2] = clampByte(b);
    }
  }
  return out;
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
