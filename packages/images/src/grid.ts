/**
 * Grid images: labelled thumbnails laid out exactly as @triage/core's geometry says, drawn into one raw
 * buffer and encoded once. sharp's composite() is never used: hundreds of overlays cost seconds and
 * hundreds of MB, while copying rows into a preallocated buffer costs milliseconds.
 */
import { cellLabel, cellRect, rowLetters, GLYPH_HEIGHT, type GridGeometry } from '@triage/core';
import { drawText, fillRect, textWidth, type Rgb } from './font.js';
import { INPUT_OPTIONS, sharp } from './sharp.js';
import { ImageReadError } from './thumbnail.js';

export interface GridCell {
  /** Raw RGB, geometry.thumb² × 3 bytes; null draws a placeholder (the photo could not be read). */
  thumb: Buffer | null;
  /** Why the thumbnail is missing; recorded by the caller, not drawn. */
  reason?: string;
}

const BACKGROUND: Rgb = [32, 32, 32];
const HEADER_TEXT: Rgb = [200, 200, 200];
/** Yellow on black: the highest-contrast pair that still reads as "label" rather than part of a photo. */
const LABEL_STRIP: Rgb = [0, 0, 0];
const LABEL_TEXT: Rgb = [255, 221, 0];
const PLACEHOLDER_FILL: Rgb = [128, 128, 128];
const PLACEHOLDER_CROSS: Rgb = [220, 0, 0];
const PLACEHOLDER_TEXT: Rgb = [255, 255, 255];
const PLACEHOLDER_TEXT_BOX: Rgb = [0, 0, 0];
const PLACEHOLDER_TEXT_CONTENT = 'N/A';

const JPEG_QUALITY = 85;

/**
 * The grid as raw RGB (geometry.width × geometry.height × 3). Cell i shows cells[i] with labels[i] under
 * it; positions are fixed by index, so a placeholder never shifts later photos. Cells past cells.length
 * stay background.
 */
export function renderGridRaw(geometry: GridGeometry, cells: readonly GridCell[], labels: readonly string[]): Buffer {
  validate(geometry, cells, labels);
  const { width, thumb, labelScale: scale } = geometry;
  const rgb = Buffer.alloc(width * geometry.height * 3);
  fillRect(rgb, width, 0, 0, width, geometry.height, BACKGROUND);
  drawHeaders(rgb, geometry);

  const rowBytes = thumb * 3;
  for (let i = 0; i < cells.length; i++) {
    const rect = cellRect(geometry, i);
    const cell = cells[i]!;
    if (cell.thumb) {
      for (let row = 0; row < thumb; row++) {
        cell.thumb.copy(rgb, ((rect.y + row) * width + rect.x) * 3, row * rowBytes, (row + 1) * rowBytes);
      }
    } else {
      drawPlaceholder(rgb, geometry, rect.x, rect.y);
    }
    fillRect(rgb, width, rect.x, rect.labelY, thumb, geometry.labelHeight, LABEL_STRIP);
    const label = labels[i]!;
    drawText(
      rgb,
      width,
      rect.x + Math.floor((thumb - textWidth(label, scale)) / 2),
      rect.labelY + Math.floor((geometry.labelHeight - GLYPH_HEIGHT * scale) / 2),
      label,
      scale,
      LABEL_TEXT,
    );
  }
  return rgb;
}

/** The grid as a JPEG: one encode, 4:4:4 chroma so the yellow-on-black labels keep sharp edges. */
export async function composeGrid(
  geometry: GridGeometry,
  cells: readonly GridCell[],
  labels: readonly string[],
): Promise<Buffer> {
  const rgb = renderGridRaw(geometry, cells, labels);
  return sharp(rgb, { ...INPUT_OPTIONS, raw: { width: geometry.width, height: geometry.height, channels: 3 } })
    .jpeg({ quality: JPEG_QUALITY, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** Decodes an encoded image (a grid JPEG) back to raw 8-bit sRGB, 3 channels. */
export async function decodeRaw(image: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  try {
    const { data, info } = await sharp(image, INPUT_OPTIONS)
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n', 1)[0]! : String(error);
    throw new ImageReadError(`cannot decode image: ${message}`, { cause: error });
  }
}

/** Column numbers centred over each column, row letters centred beside each row's thumbnails. */
function drawHeaders(rgb: Buffer, geometry: GridGeometry): void {
  const { width, thumb, header, labelScale: scale } = geometry;
  const glyphHeight = GLYPH_HEIGHT * scale;
  for (let col = 0; col < geometry.cols; col++) {
    const rect = cellRect(geometry, col);
    const text = String(col + 1);
    drawText(
      rgb,
      width,
      rect.x + Math.floor((thumb - textWidth(text, scale)) / 2),
      Math.floor((header - glyphHeight) / 2),
      text,
      scale,
      HEADER_TEXT,
    );
  }
  for (let row = 0; row < geometry.rows; row++) {
    const rect = cellRect(geometry, row * geometry.cols);
    const text = rowLetters(row);
    drawText(
      rgb,
      width,
      Math.floor((header - textWidth(text, scale)) / 2),
      rect.y + Math.floor((thumb - glyphHeight) / 2),
      text,
      scale,
      HEADER_TEXT,
    );
  }
}

/** Mid grey with a red X and "N/A": unmistakably not a photo, even at thumbnail size. */
function drawPlaceholder(rgb: Buffer, geometry: GridGeometry, x: number, y: number): void {
  const { width, thumb, labelScale: scale } = geometry;
  fillRect(rgb, width, x, y, thumb, thumb, PLACEHOLDER_FILL);
  const stroke = Math.max(2, Math.round(thumb / 28));
  const half = Math.floor(stroke / 2);
  for (let i = 0; i < thumb; i++) {
    // Each stroke is clipped to the cell so it never touches a neighbour (stroke can exceed the gap).
    for (const centre of [i, thumb - 1 - i]) {
      const from = Math.max(0, centre - half);
      const to = Math.min(thumb, centre - half + stroke);
      fillRect(rgb, width, x + from, y + i, to - from, 1, PLACEHOLDER_CROSS);
    }
  }

  const textW = textWidth(PLACEHOLDER_TEXT_CONTENT, scale);
  const textH = GLYPH_HEIGHT * scale;
  const tx = x + Math.floor((thumb - textW) / 2);
  const ty = y + Math.floor((thumb - textH) / 2);
  fillRect(rgb, width, tx - scale, ty - scale, textW + 2 * scale, textH + 2 * scale, PLACEHOLDER_TEXT_BOX);
  drawText(rgb, width, tx, ty, PLACEHOLDER_TEXT_CONTENT, scale, PLACEHOLDER_TEXT);
}

function validate(geometry: GridGeometry, cells: readonly GridCell[], labels: readonly string[]): void {
  const { rows, cols, thumb, width, height } = geometry;
  const ints = [rows, cols, thumb, width, height, geometry.labelScale, geometry.labelHeight, geometry.header];
  if (!ints.every((v) => Number.isInteger(v) && v >= 0) || rows < 1 || cols < 1 || thumb < 1) {
    throw new Error(`invalid grid geometry ${JSON.stringify(geometry)}`);
  }
  const last = cellRect(geometry, rows * cols - 1);
  if (last.x + thumb > width || last.labelY + geometry.labelHeight > height) {
    throw new Error(`grid geometry ${rows} × ${cols} of ${thumb} px cells does not fit in ${width} × ${height}`);
  }
  if (cells.length > rows * cols) throw new Error(`${cells.length} cells do not fit in a ${rows} × ${cols} grid`);
  if (labels.length !== cells.length) throw new Error(`got ${labels.length} labels for ${cells.length} cells`);
  const expected = thumb * thumb * 3;
  cells.forEach((cell, i) => {
    if (cell.thumb && cell.thumb.length !== expected) {
      throw new Error(
        `cell ${cellLabel(i, cols)}: thumbnail has ${cell.thumb.length} bytes, expected ${expected} (${thumb} × ${thumb} × 3)`,
      );
    }
  });
}
