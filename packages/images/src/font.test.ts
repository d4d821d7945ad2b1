import { GLYPH_HEIGHT, GLYPH_WIDTH } from '@triage/core';
import { describe, expect, it } from 'vitest';
import { GLYPHS, drawText, fillRect, textWidth } from './font.js';

const INK = [255, 221, 0] as const;

/** Reads back which pixels of a w × h RGB buffer carry `color`. */
function inkAt(rgb: Buffer, width: number, x: number, y: number): boolean {
  const o = (y * width + x) * 3;
  return rgb[o] === INK[0] && rgb[o + 1] === INK[1] && rgb[o + 2] === INK[2];
}

describe('GLYPHS', () => {
  it('has 7 rows of 5 "#"/"." for every glyph', () => {
    for (const [ch, glyph] of Object.entries(GLYPHS)) {
      expect(glyph, ch).toHaveLength(GLYPH_HEIGHT);
      for (const row of glyph) expect(row, ch).toMatch(new RegExp(`^[#.]{${GLYPH_WIDTH}}$`));
    }
  });

  it('covers every character a label, header or placeholder uses', () => {
    const needed = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789?- /';
    for (const ch of needed) expect(GLYPHS[ch], ch).toBeDefined();
  });

  it('gives distinct glyphs to distinct characters, and only the space is blank', () => {
    const drawn = Object.entries(GLYPHS).map(([ch, g]) => [ch, g.join('')] as const);
    expect(new Set(drawn.map(([, g]) => g)).size).toBe(drawn.length);
    for (const [ch, g] of drawn) expect(g.includes('#'), ch).toBe(ch !== ' ');
  });
});

describe('textWidth', () => {
  it('counts 5·scale per glyph and 1·scale between glyphs', () => {
    expect(textWidth('', 2)).toBe(0);
    expect(textWidth('A', 2)).toBe(10);
    expect(textWidth('B7', 2)).toBe(22);
    expect(textWidth('AB12', 3)).toBe(4 * 15 + 3 * 3);
  });
});

describe('drawText', () => {
  for (const scale of [1, 2, 3]) {
    it(`writes exactly the glyph pixels of "B7" at scale ${scale} and nothing outside its box`, () => {
      const width = 60;
      const height = 40;
      const rgb = Buffer.alloc(width * height * 3);
      const x0 = 7;
      const y0 = 5;
      drawText(rgb, width, x0, y0, 'B7', scale, INK);
      const boxW = textWidth('B7', scale);
      const boxH = GLYPH_HEIGHT * scale;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          let expected = false;
          if (x >= x0 && x < x0 + boxW && y >= y0 && y < y0 + boxH) {
            const advance = (GLYPH_WIDTH + 1) * scale;
            const glyphIndex = Math.floor((x - x0) / advance);
            const col = Math.floor(((x - x0) % advance) / scale);
            const row = Math.floor((y - y0) / scale);
            expected = col < GLYPH_WIDTH && GLYPHS['B7'[glyphIndex]!]![row]![col] === '#';
          }
          if (inkAt(rgb, width, x, y) !== expected)
            throw new Error(`pixel (${x}, ${y}) at scale ${scale}: expected ink ${expected}`);
          if (!expected) expect(rgb.readUIntBE((y * width + x) * 3, 3)).toBe(0);
        }
      }
    });
  }

  it('draws lowercase as uppercase and unknown characters as "?"', () => {
    const a = Buffer.alloc(20 * 10 * 3);
    const b = Buffer.alloc(20 * 10 * 3);
    drawText(a, 20, 1, 1, 'b', 1, INK);
    drawText(b, 20, 1, 1, 'B', 1, INK);
    expect(a.equals(b)).toBe(true);
    drawText(a.fill(0), 20, 1, 1, '€', 1, INK);
    drawText(b.fill(0), 20, 1, 1, '?', 1, INK);
    expect(a.equals(b)).toBe(true);
  });

  it('clips at the image edges instead of wrapping or throwing', () => {
    const rgb = Buffer.alloc(8 * 8 * 3);
    drawText(rgb, 8, 6, 5, 'W', 2, INK);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(inkAt(rgb, 8, x, y)).toBe(x >= 6 && y >= 5);
    rgb.fill(0);
    // From (-1, -2), image pixel (0, 0) is font column 0, row 1 of "W": ink.
    drawText(rgb, 8, -1, -2, 'W', 2, INK);
    expect(inkAt(rgb, 8, 0, 0)).toBe(true);
  });

  it('rejects a non-integer scale', () => {
    expect(() => drawText(Buffer.alloc(30), 10, 0, 0, 'A', 1.5, INK)).toThrow(/scale/);
  });
});

describe('fillRect', () => {
  it('fills exactly the rectangle, clipped to the image', () => {
    const rgb = Buffer.alloc(10 * 6 * 3);
    fillRect(rgb, 10, 8, 4, 5, 5, INK);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 10; x++) expect(inkAt(rgb, 10, x, y)).toBe(x >= 8 && y >= 4);
  });
});
