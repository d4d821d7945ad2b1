/**
 * Grid geometry: how many thumbnails fit in one grid image, how big each is, and where each cell and label
 * sits. Everything is derived from the vision profile, so a grid is built at exactly the size the model
 * sees — never larger (the model would scale it down and shrink every photo and label with it).
 */

/** What a vision model sees of one image. */
export interface VisionProfile {
  /** Model id, or `offline` for the embedded provider. */
  id: string;
  /** Longest edge in pixels the model accepts without rescaling. */
  maxEdge: number;
  /** Visual-token budget of one image; one token per `patch` × `patch` square. */
  maxTokens: number;
  /** Side of one visual token in pixels. */
  patch: number;
  /** USD per million input tokens (0 for the offline provider). */
  inputPerMTok: number;
  /** USD per million output tokens. */
  outputPerMTok: number;
}

/** The standard tier (Haiku 4.5, Sonnet 4.6, Opus 4.6): ≤ 1568 px and ≤ 1568 tokens, a square seen at 1092 px. */
export const STANDARD_PROFILE: VisionProfile = {
  id: 'standard',
  maxEdge: 1568,
  maxTokens: 1568,
  patch: 28,
  inputPerMTok: 1,
  outputPerMTok: 5,
};

/** The embedded offline provider judges grids at the standard tier's size, so its grids match a real model's. */
export const OFFLINE_PROFILE: VisionProfile = { ...STANDARD_PROFILE, id: 'offline', inputPerMTok: 0, outputPerMTok: 0 };

export type Pass = 'coarse' | 'fine';

/** Operator knobs for one pass: the smallest thumbnail the model can judge, or a fixed layout. */
export interface PassLayout {
  /** Smallest thumbnail side (px) worth showing the model in this pass. */
  minThumb: number;
  /** Force the number of rows (otherwise as many as fit). */
  rows?: number;
  /** Force the number of columns (otherwise as many as fit). */
  cols?: number;
}

/** Coarse: many small thumbnails (3 × 3 visual tokens each). Fine: a 4 × 4 grid of large ones. */
export const DEFAULT_LAYOUTS: Record<Pass, PassLayout> = {
  coarse: { minThumb: 84 },
  fine: { minThumb: 224 },
};

/** Height and width in font pixels of one glyph of the bitmap font the labels are drawn with. */
export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

export interface GridGeometry {
  rows: number;
  cols: number;
  /** Side of each square thumbnail, px. */
  thumb: number;
  /** Space between neighbouring cells, px. */
  gap: number;
  /** Integer scale of the 5 × 7 bitmap font: a glyph is 5·s × 7·s px. */
  labelScale: number;
  /** Height of the label strip under each thumbnail, px. */
  labelHeight: number;
  /** Band on the top (column numbers) and the left (row letters), px. */
  header: number;
  cellWidth: number;
  cellHeight: number;
  /** Size of the whole grid image, px. */
  width: number;
  height: number;
}

export class GeometryError extends Error {
  override name = 'GeometryError';
}

/** Visual tokens an image of w × h px costs. */
export function visualTokens(width: number, height: number, patch: number): number {
  return Math.ceil(width / patch) * Math.ceil(height / patch);
}

/** Side of the largest square the model sees without rescaling. */
export function canvasSide(profile: VisionProfile): number {
  const byTokens = profile.patch * Math.floor(Math.sqrt(profile.maxTokens));
  return Math.min(byTokens, profile.maxEdge);
}

/** Plans the full-capacity grid of one pass. */
export function planGeometry(profile: VisionProfile, layout: PassLayout): GridGeometry {
  if (!(Number.isInteger(layout.minThumb) && layout.minThumb >= 16)) {
    throw new GeometryError(`minimum thumbnail size must be a whole number, at least 16 px, got ${layout.minThumb}`);
  }
  for (const key of ['rows', 'cols'] as const) {
    const v = layout[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1))
      throw new GeometryError(`${key} must be a positive integer, got ${v}`);
  }
  const side = canvasSide(profile);
  const labelScale = layout.minThumb >= 160 ? 3 : 2;
  const labelHeight = (GLYPH_HEIGHT + 2) * labelScale;
  const header = (2 * GLYPH_WIDTH + 3) * labelScale;
  const gap = 4;
  const avail = side - header;
  const cols = layout.cols ?? Math.floor(avail / (layout.minThumb + gap));
  const rows = layout.rows ?? Math.floor(avail / (layout.minThumb + labelHeight + gap));
  if (cols < 1 || rows < 1) {
    throw new GeometryError(
      `a ${layout.minThumb} px thumbnail does not fit in the ${side} px image model ${profile.id} sees`,
    );
  }
  const thumb = Math.min(Math.floor(avail / cols) - gap, Math.floor(avail / rows) - labelHeight - gap);
  if (thumb < 16) {
    throw new GeometryError(
      `${rows} × ${cols} cells leave ${thumb} px thumbnails in a ${side} px image: too small to judge`,
    );
  }
  const cellWidth = thumb + gap;
  const cellHeight = thumb + labelHeight + gap;
  return {
    rows,
    cols,
    thumb,
    gap,
    labelScale,
    labelHeight,
    header,
    cellWidth,
    cellHeight,
    width: header + cols * cellWidth,
    height: header + rows * cellHeight,
  };
}

export function capacity(geometry: GridGeometry): number {
  return geometry.rows * geometry.cols;
}

/** The geometry of a grid holding only `count` photos: same cell size, fewer rows (and columns). */
export function fitGeometry(full: GridGeometry, count: number): GridGeometry {
  if (!(Number.isInteger(count) && count >= 1 && count <= capacity(full))) {
    throw new GeometryError(`a grid of ${full.rows} × ${full.cols} cannot hold ${count} photos`);
  }
  const cols = Math.min(full.cols, count);
  const rows = Math.ceil(count / cols);
  return {
    ...full,
    rows,
    cols,
    width: full.header + cols * full.cellWidth,
    height: full.header + rows * full.cellHeight,
  };
}

/**
 * Splits `count` photos into the fewest grids of at most `perGrid` photos, as evenly as possible, so the
 * last grid is never a lonely handful. Returns the size of each grid in order.
 */
export function splitIntoGrids(count: number, perGrid: number): number[] {
  if (count <= 0) return [];
  const grids = Math.ceil(count / perGrid);
  const base = Math.floor(count / grids);
  const extra = count % grids;
  return Array.from({ length: grids }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Index of the first photo of each grid, plus the total at the end: grid g holds [starts[g], starts[g+1]). */
export function gridStarts(sizes: readonly number[]): number[] {
  const starts = [0];
  for (const size of sizes) starts.push(starts[starts.length - 1]! + size);
  return starts;
}

/** Row letters: A…Z, then AA, AB… */
export function rowLetters(row: number): string {
  let s = '';
  let n = row + 1;
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

/** Label of cell `index` in a grid with `cols` columns, filled row by row: A1, A2, … B1 … */
export function cellLabel(index: number, cols: number): string {
  return `${rowLetters(Math.floor(index / cols))}${(index % cols) + 1}`;
}

export function labelsFor(count: number, cols: number): string[] {
  return Array.from({ length: count }, (_, i) => cellLabel(i, cols));
}

export interface CellRect {
  /** Top-left corner of the thumbnail. */
  x: number;
  y: number;
  /** Thumbnail side. */
  size: number;
  /** Top of the label strip (same x and width as the thumbnail). */
  labelY: number;
}

export function cellRect(geometry: GridGeometry, index: number): CellRect {
  const row = Math.floor(index / geometry.cols);
  const col = index % geometry.cols;
  const x = geometry.header + col * geometry.cellWidth + geometry.gap / 2;
  const y = geometry.header + row * geometry.cellHeight + geometry.gap / 2;
  return { x, y, size: geometry.thumb, labelY: y + geometry.thumb };
}
