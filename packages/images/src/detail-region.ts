/**
 * Where the fine pass's full-resolution square (Thumbnail.detail) is cut from the stored image.
 *
 * A baseline JPEG cannot be entered mid-stream: libjpeg decodes every row above the square's bottom edge, so
 * the square's cost is set by how far down the stored frame it sits (measured on 24 MP files: about 0.15 × a
 * thumbnail's decode at the top, 0.64 × at the centre, 1.31 × at the bottom; see docs/benchmarks.md), not by
 * its size. And focus can only be told where the photo has detail: a square on blank sky or a smooth wall reads
 * "soft" however sharp the shot. So the square goes where the thumbnail shows detail, and among the places with
 * enough of it, the one fewest rows down the stored file.
 */
import { orientSquare } from './exif.js';
import { toLuma } from './signals.js';

export interface DetailRegion {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * A block qualifies when its detail contrast (root mean square of the thumbnail luma's Laplacian) is at least
 * this share of the frame's most detailed block: half the contrast of the best detail still shows focus at 1:1
 * plainly, and most frames have such a block well above the centre. The frames of a burst rank their blocks
 * alike (a soft frame loses contrast everywhere), so they are measured in the same place.
 */
export const DETAIL_CONTRAST_SHARE = 0.5;

/** EXIF orientation that undoes each orientation: 6 and 8 undo each other, every other one undoes itself. */
function inverseOrientation(orientation: number): number {
  return orientation === 6 ? 8 : orientation === 8 ? 6 : orientation;
}

/**
 * The `side` px square of the stored image (at most `side` px, the short side for a smaller image) to measure at
 * 1:1, from the photo's upright thumbnail: `square` is the centre-cropped upright square (`thumbSide` px, RGB)
 * that the thumbnail pipeline rendered, `orientation` the file's EXIF orientation, `stored` the stored size.
 *
 * The thumbnail is turned back to the stored orientation (the stored centre square, turned, is the upright
 * one), cut into a lattice of blocks each covering one square, and the square is centred on the qualifying
 * block (DETAIL_CONTRAST_SHARE) in the highest row; among a row's qualifying blocks, the most detailed. A frame
 * without detail anywhere gets the top row's centre block: nowhere tells focus, and a flat area is where
 * noise reads best.
 */
export function detailRegion(
  square: Uint8Array,
  thumbSide: number,
  orientation: number,
  stored: { width: number; height: number },
  side: number,
): DetailRegion {
  const d = Math.min(side, stored.width, stored.height);
  const short = Math.min(stored.width, stored.height);
  const centre = { left: Math.floor((stored.width - d) / 2), top: Math.floor((stored.height - d) / 2) };
  const block = Math.round((d * thumbSide) / short);
  const n = block >= 3 ? Math.floor(thumbSide / block) : 0;
  if (n < 2) return { ...centre, width: d, height: d };
  if (storedScratch.length !== square.length) storedScratch = Buffer.allocUnsafe(square.length);
  const storedSquare = orientSquare(square, thumbSide, inverseOrientation(orientation), storedScratch);
  const detail = blockDetail(storedSquare, thumbSide, block, n);
  const best = Math.max(...detail);
  const mid = (n - 1) / 2;
  let pick = -1;
  for (let k = 0; k < detail.length; k++) {
    if (detail[k]! < DETAIL_CONTRAST_SHARE ** 2 * best) continue;
    if (pick < 0 || rowOf(k, n) < rowOf(pick, n)) pick = k;
    else if (rowOf(k, n) === rowOf(pick, n) && better(detail, k, pick, n, mid)) pick = k;
  }
  // Block (bx, by) of the lattice, in stored pixels of the stored centre square.
  const scale = short / thumbSide;
  const at = (b: number) => (blockStart(b, thumbSide, block, n) + block / 2) * scale - d / 2;
  const x0 = (stored.width - short) / 2;
  const y0 = (stored.height - short) / 2;
  return {
    left: clamp(Math.round(x0 + at(pick % n)), 0, stored.width - d),
    top: clamp(Math.round(y0 + at(rowOf(pick, n))), 0, stored.height - d),
    width: d,
    height: d,
  };
}

/**
 * Where block `b` of a lattice of `n` starts in the thumbnail: spread from edge to edge (neighbours may overlap by
 * a pixel or two), so the first row is the top of the stored centre square, the cheapest place there is.
 */
function blockStart(b: number, side: number, block: number, n: number): number {
  return Math.round((b * (side - block)) / (n - 1));
}

function rowOf(k: number, n: number): number {
  return Math.floor(k / n);
}

/** Within a row: more detail first, then nearer the centre column. */
function better(detail: readonly number[], k: number, than: number, n: number, mid: number): boolean {
  if (detail[k] !== detail[than]) return detail[k]! > detail[than]!;
  return Math.abs((k % n) - mid) < Math.abs((than % n) - mid);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}

/**
 * The stored-orientation copy of the thumbnail, reused from photo to photo (one thumbnail size per worker): a
 * fresh one per photo would be allocated and left to the garbage collector in the middle of a decode. Its luma
 * goes in the signals' own scratch (toLuma).
 */
let storedScratch = Buffer.alloc(0);

/** Mean squared 4-neighbour Laplacian of luma inside each block of an n × n lattice (see blockStart). */
function blockDetail(rgb: Uint8Array, side: number, block: number, n: number): number[] {
  const luma = toLuma(rgb, side, side);
  const out: number[] = [];
  for (let by = 0; by < n; by++) {
    for (let bx = 0; bx < n; bx++) {
      let sum = 0;
      let count = 0;
      const y0 = blockStart(by, side, block, n);
      const x0 = blockStart(bx, side, block, n);
      for (let y = Math.max(1, y0); y < Math.min(side - 1, y0 + block); y++) {
        for (let x = Math.max(1, x0); x < Math.min(side - 1, x0 + block); x++) {
          const i = y * side + x;
          const v = 4 * luma[i]! - luma[i - 1]! - luma[i + 1]! - luma[i - side]! - luma[i + side]!;
          sum += v * v;
          count++;
        }
      }
      out.push(count > 0 ? sum / count : 0);
    }
  }
  return out;
}
