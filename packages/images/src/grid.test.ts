import {
  DEFAULT_LAYOUTS,
  GLYPH_HEIGHT,
  GLYPH_WIDTH,
  OFFLINE_PROFILE,
  capacity,
  cellRect,
  fitGeometry,
  labelsFor,
  planGeometry,
  rowLetters,
  type GridGeometry,
} from '@triage/core';
import { describe, expect, it } from 'vitest';
import { GLYPHS, textWidth } from './font.js';
import { composeGrid, decodeRaw, renderGridRaw, type GridCell } from './grid.js';

const YELLOW = [255, 221, 0];
const BLACK = [0, 0, 0];
const BACKGROUND = [32, 32, 32];
const HEADER = [200, 200, 200];

const coarse = planGeometry(OFFLINE_PROFILE, DEFAULT_LAYOUTS.coarse);
const fine = planGeometry(OFFLINE_PROFILE, DEFAULT_LAYOUTS.fine);

/** A thumbnail whose every pixel encodes its cell index and position, so misplaced copies are caught. */
function patternThumb(size: number, index: number): Buffer {
  const rgb = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      rgb[o] = (index * 37) % 128; // below the "red" threshold, so only placeholders count as red
      rgb[o + 1] = x;
      rgb[o + 2] = y;
    }
  }
  return rgb;
}

function cellsFor(geometry: GridGeometry, count: number, missing: readonly number[] = []): GridCell[] {
  return Array.from({ length: count }, (_, i) =>
    missing.includes(i) ? { thumb: null, reason: 'corrupt' } : { thumb: patternThumb(geometry.thumb, i) },
  );
}

function pixel(rgb: Buffer, width: number, x: number, y: number): number[] {
  const o = (y * width + x) * 3;
  return [rgb[o]!, rgb[o + 1]!, rgb[o + 2]!];
}

/** Whether font pixel (col, row) of `text` drawn at `scale` is ink; -1 col for the spacing between glyphs. */
function fontInk(text: string, scale: number, dx: number, dy: number): boolean {
  const advance = (GLYPH_WIDTH + 1) * scale;
  const glyph = GLYPHS[text[Math.floor(dx / advance)]!]!;
  const col = Math.floor((dx % advance) / scale);
  return col < GLYPH_WIDTH && glyph[Math.floor(dy / scale)]![col] === '#';
}

/** Checks a text box pixel by pixel: `ink` where the glyph has '#', `paper` elsewhere in the box. */
function expectText(
  rgb: Buffer,
  width: number,
  x0: number,
  y0: number,
  text: string,
  scale: number,
  ink: number[],
  paper: number[],
): void {
  const w = textWidth(text, scale);
  for (let dy = 0; dy < GLYPH_HEIGHT * scale; dy++) {
    for (let dx = 0; dx < w; dx++) {
      const expected = fontInk(text, scale, dx, dy) ? ink : paper;
      const actual = pixel(rgb, width, x0 + dx, y0 + dy);
      if (actual.join() !== expected.join())
        throw new Error(`"${text}" at (${dx}, ${dy}): got ${actual.join()}, expected ${expected.join()}`);
    }
  }
}

/** The label strip of cell `index` holds exactly its label, yellow on black, centred. */
function expectLabel(rgb: Buffer, geometry: GridGeometry, index: number, label: string): void {
  const rect = cellRect(geometry, index);
  const scale = geometry.labelScale;
  const tx = rect.x + Math.floor((geometry.thumb - textWidth(label, scale)) / 2);
  const ty = rect.labelY + Math.floor((geometry.labelHeight - GLYPH_HEIGHT * scale) / 2);
  expectText(rgb, geometry.width, tx, ty, label, scale, YELLOW, BLACK);
  // Outside the text box but inside the strip: black only.
  for (let y = rect.labelY; y < rect.labelY + geometry.labelHeight; y++) {
    for (let x = rect.x; x < rect.x + geometry.thumb; x++) {
      const inBox = x >= tx && x < tx + textWidth(label, scale) && y >= ty && y < ty + GLYPH_HEIGHT * scale;
      if (!inBox) expect(pixel(rgb, geometry.width, x, y)).toEqual(BLACK);
    }
  }
}

function expectThumbAt(rgb: Buffer, geometry: GridGeometry, index: number): void {
  const rect = cellRect(geometry, index);
  const expected = patternThumb(geometry.thumb, index);
  const rowBytes = geometry.thumb * 3;
  for (let row = 0; row < geometry.thumb; row++) {
    const start = ((rect.y + row) * geometry.width + rect.x) * 3;
    if (!rgb.subarray(start, start + rowBytes).equals(expected.subarray(row * rowBytes, (row + 1) * rowBytes))) {
      throw new Error(`cell ${index}: row ${row} of the thumbnail is not at (${rect.x}, ${rect.y + row})`);
    }
  }
}

function countRed(rgb: Buffer, geometry: GridGeometry, index: number): number {
  const rect = cellRect(geometry, index);
  let red = 0;
  for (let y = rect.y; y < rect.y + rect.size; y++) {
    for (let x = rect.x; x < rect.x + rect.size; x++) {
      const [r, g, b] = pixel(rgb, geometry.width, x, y);
      if (r! > 180 && g! < 60 && b! < 60) red++;
    }
  }
  return red;
}

describe('renderGridRaw', () => {
  it('plans the coarse grid this suite expects (at least 2 rows of 7 columns)', () => {
    expect(coarse.cols).toBeGreaterThanOrEqual(7);
    expect(coarse.rows).toBeGreaterThanOrEqual(2);
    expect(coarse.labelScale).toBe(2);
    expect(fine.labelScale).toBe(3);
  });

  it('draws the B7 label yellow on black, pixel-exact, at the coarse geometry', () => {
    const count = capacity(coarse);
    const rgb = renderGridRaw(coarse, cellsFor(coarse, count), labelsFor(count, coarse.cols));
    expect(rgb.length).toBe(coarse.width * coarse.height * 3);
    const b7 = coarse.cols + 6;
    expectLabel(rgb, coarse, b7, 'B7');
    expectLabel(rgb, coarse, 0, 'A1');
    expectLabel(rgb, coarse, count - 1, `${rowLetters(coarse.rows - 1)}${coarse.cols}`);
  });

  it('draws labels at scale 3 for the fine geometry', () => {
    const count = capacity(fine);
    const rgb = renderGridRaw(fine, cellsFor(fine, count), labelsFor(count, fine.cols));
    for (let i = 0; i < count; i++) expectLabel(rgb, fine, i, labelsFor(count, fine.cols)[i]!);
  });

  it('copies every thumbnail exactly into its cellRect', () => {
    const count = capacity(coarse);
    const rgb = renderGridRaw(coarse, cellsFor(coarse, count), labelsFor(count, coarse.cols));
    for (let i = 0; i < count; i++) expectThumbAt(rgb, coarse, i);
  });

  it('draws column numbers and row letters in the header bands', () => {
    const count = capacity(coarse);
    const rgb = renderGridRaw(coarse, cellsFor(coarse, count), labelsFor(count, coarse.cols));
    const s = coarse.labelScale;
    const col = 11;
    const rect = cellRect(coarse, col);
    expectText(
      rgb,
      coarse.width,
      rect.x + Math.floor((coarse.thumb - textWidth('12', s)) / 2),
      Math.floor((coarse.header - GLYPH_HEIGHT * s) / 2),
      '12',
      s,
      HEADER,
      BACKGROUND,
    );
    const b = cellRect(coarse, coarse.cols);
    expectText(
      rgb,
      coarse.width,
      Math.floor((coarse.header - textWidth('B', s)) / 2),
      b.y + Math.floor((coarse.thumb - GLYPH_HEIGHT * s) / 2),
      'B',
      s,
      HEADER,
      BACKGROUND,
    );
  });

  it('draws a visible placeholder for a missing photo and keeps every later photo in place', () => {
    const geometry = fitGeometry(coarse, 30);
    const missing = [3, 17];
    const rgb = renderGridRaw(geometry, cellsFor(geometry, 30, missing), labelsFor(30, geometry.cols));
    for (const i of missing) {
      expect(countRed(rgb, geometry, i)).toBeGreaterThan(geometry.thumb * 2);
      expectLabel(rgb, geometry, i, labelsFor(30, geometry.cols)[i]!);
    }
    for (let i = 0; i < 30; i++) {
      if (missing.includes(i)) continue;
      expectThumbAt(rgb, geometry, i);
      expect(countRed(rgb, geometry, i)).toBe(0);
    }
  });

  it('keeps a placeholder cross inside its cell, even when its stroke is wider than the gap', () => {
    const geometry = fitGeometry(fine, 3);
    const rgb = renderGridRaw(geometry, cellsFor(geometry, 3, [1]), labelsFor(3, geometry.cols));
    expectThumbAt(rgb, geometry, 0);
    expectThumbAt(rgb, geometry, 2);
    const rect = cellRect(geometry, 1);
    for (let y = rect.y; y < rect.y + rect.size; y++) {
      expect(pixel(rgb, geometry.width, rect.x - 1, y)).toEqual(BACKGROUND);
      expect(pixel(rgb, geometry.width, rect.x + rect.size, y)).toEqual(BACKGROUND);
    }
  });

  it('leaves unused cells as plain background, without a label', () => {
    const geometry = fitGeometry(coarse, coarse.cols + 2);
    const count = coarse.cols + 2;
    const rgb = renderGridRaw(geometry, cellsFor(geometry, count), labelsFor(count, geometry.cols));
    const rect = cellRect(geometry, count);
    for (let y = rect.y; y < rect.labelY + geometry.labelHeight; y++) {
      for (let x = rect.x; x < rect.x + rect.size; x++) expect(pixel(rgb, geometry.width, x, y)).toEqual(BACKGROUND);
    }
  });

  it('rejects a thumbnail of the wrong size, mismatched labels and too many cells', () => {
    const geometry = fitGeometry(coarse, 4);
    const cells = cellsFor(geometry, 4);
    cells[2] = { thumb: Buffer.alloc(10) };
    expect(() => renderGridRaw(geometry, cells, labelsFor(4, geometry.cols))).toThrow(
      /cell A3: thumbnail has 10 bytes, expected 21168/,
    );
    expect(() => renderGridRaw(geometry, cellsFor(geometry, 4), labelsFor(3, geometry.cols))).toThrow(
      /3 labels for 4 cells/,
    );
    expect(() => renderGridRaw(geometry, cellsFor(geometry, 5), labelsFor(5, geometry.cols))).toThrow(/do not fit/);
  });
});

describe('composeGrid', () => {
  it('encodes a JPEG of exactly the geometry size whose labels survive encoding', async () => {
    const count = capacity(coarse) - 5;
    const geometry = fitGeometry(coarse, count);
    const jpeg = await composeGrid(geometry, cellsFor(geometry, count, [0]), labelsFor(count, geometry.cols));
    expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const decoded = await decodeRaw(jpeg);
    expect({ width: decoded.width, height: decoded.height }).toEqual({
      width: geometry.width,
      height: geometry.height,
    });
    expect(decoded.data.length).toBe(geometry.width * geometry.height * 3);

    const scale = geometry.labelScale;
    for (const [index, label] of [
      [geometry.cols + 6, 'B7'],
      [count - 1, labelsFor(count, geometry.cols)[count - 1]!],
    ] as const) {
      const rect = cellRect(geometry, index);
      const tx = rect.x + Math.floor((geometry.thumb - textWidth(label, scale)) / 2);
      const ty = rect.labelY + Math.floor((geometry.labelHeight - GLYPH_HEIGHT * scale) / 2);
      // Sample the centre of each font pixel: JPEG blurs edges, not the middle of a 2 × 2 block.
      for (let fy = 0; fy < GLYPH_HEIGHT; fy++) {
        for (let fx = 0; fx * scale < textWidth(label, scale); fx++) {
          const [r, g, b] = pixel(
            decoded.data,
            geometry.width,
            tx + fx * scale + Math.floor(scale / 2),
            ty + fy * scale + Math.floor(scale / 2),
          );
          if (fontInk(label, scale, fx * scale, fy * scale)) {
            expect(r, `${label} ink at (${fx}, ${fy})`).toBeGreaterThan(180);
            expect(g).toBeGreaterThan(150);
            expect(b).toBeLessThan(110);
          } else {
            expect(Math.max(r!, g!, b!), `${label} paper at (${fx}, ${fy})`).toBeLessThan(90);
          }
        }
      }
    }
  });
});

describe('decodeRaw', () => {
  it('throws a readable error for bytes that are not an image', async () => {
    await expect(decodeRaw(Buffer.from('not a jpeg'))).rejects.toMatchObject({
      name: 'ImageReadError',
      reason: expect.stringMatching(/cannot decode image/),
    });
  });
});
