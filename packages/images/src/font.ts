/**
 * A hand-drawn 5 × 7 bitmap font for grid labels. The prebuilt sharp has no fonts, so SVG text would render
 * as empty boxes without an error; a bitmap drawn straight into the raw buffer is crisp at any integer
 * scale, costs nothing and looks the same on every machine.
 */
import { GLYPH_HEIGHT, GLYPH_WIDTH } from '@triage/core';

export type Rgb = readonly [number, number, number];

/** Each glyph: GLYPH_HEIGHT rows of GLYPH_WIDTH chars, '#' = ink, '.' = background. */
export const GLYPHS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  A: ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  B: ['####.', '#...#', '#...#', '####.', '#...#', '#...#', '####.'],
  C: ['.###.', '#...#', '#....', '#....', '#....', '#...#', '.###.'],
  D: ['###..', '#..#.', '#...#', '#...#', '#...#', '#..#.', '###..'],
  E: ['#####', '#....', '#....', '####.', '#....', '#....', '#####'],
  F: ['#####', '#....', '#....', '####.', '#....', '#....', '#....'],
  G: ['.###.', '#...#', '#....', '#.###', '#...#', '#...#', '.####'],
  H: ['#...#', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  I: ['.###.', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  J: ['..###', '...#.', '...#.', '...#.', '...#.', '#..#.', '.##..'],
  K: ['#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'],
  L: ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  M: ['#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'],
  N: ['#...#', '#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#'],
  O: ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  P: ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  Q: ['.###.', '#...#', '#...#', '#...#', '#.#.#', '#..#.', '.##.#'],
  R: ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
  S: ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  T: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'],
  U: ['#...#', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  V: ['#...#', '#...#', '#...#', '#...#', '#...#', '.#.#.', '..#..'],
  W: ['#...#', '#...#', '#...#', '#.#.#', '#.#.#', '#.#.#', '.#.#.'],
  X: ['#...#', '#...#', '.#.#.', '..#..', '.#.#.', '#...#', '#...#'],
  Y: ['#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'],
  Z: ['#####', '....#', '...#.', '..#..', '.#...', '#....', '#####'],
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '3': ['#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '5': ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  '6': ['..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'],
  '7': ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  '8': ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  '9': ['.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'],
  '?': ['.###.', '#...#', '....#', '...#.', '..#..', '.....', '..#..'],
  '!': ['..#..', '..#..', '..#..', '..#..', '..#..', '.....', '..#..'],
  '-': ['.....', '.....', '.....', '#####', '.....', '.....', '.....'],
  '+': ['.....', '..#..', '..#..', '#####', '..#..', '..#..', '.....'],
  '/': ['.....', '....#', '...#.', '..#..', '.#...', '#....', '.....'],
  '.': ['.....', '.....', '.....', '.....', '.....', '.##..', '.##..'],
  ',': ['.....', '.....', '.....', '.....', '.##..', '..#..', '.#...'],
  ':': ['.....', '.##..', '.##..', '.....', '.##..', '.##..', '.....'],
  '%': ['##...', '##..#', '...#.', '..#..', '.#...', '#..##', '...##'],
  '#': ['.#.#.', '.#.#.', '#####', '.#.#.', '#####', '.#.#.', '.#.#.'],
  '(': ['...#.', '..#..', '.#...', '.#...', '.#...', '..#..', '...#.'],
  ')': ['.#...', '..#..', '...#.', '...#.', '...#.', '..#..', '.#...'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
});

/** Characters without a glyph are drawn as this one, so a bad label is visible rather than silently blank. */
const FALLBACK = '?';

function glyphOf(ch: string): readonly string[] {
  return GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()] ?? GLYPHS[FALLBACK]!;
}

/** Width in px of `text` drawn at `scale`: glyphs 5·scale wide with 1·scale between them. */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : n * GLYPH_WIDTH * scale + (n - 1) * scale;
}

/**
 * Draws `text` with its top-left corner at (x, y), each font pixel a scale × scale square (nearest
 * neighbour, so edges stay crisp). Only ink pixels are written: the caller paints the background. Pixels
 * outside the image are clipped.
 */
export function drawText(
  rgb: Buffer,
  imageWidth: number,
  x: number,
  y: number,
  text: string,
  scale: number,
  color: Rgb,
): void {
  if (!(Number.isInteger(scale) && scale >= 1))
    throw new RangeError(`font scale must be a positive integer, got ${scale}`);
  let left = x;
  for (const ch of text) {
    const glyph = glyphOf(ch);
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      const line = glyph[row]!;
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (line[col] === '#') fillRect(rgb, imageWidth, left + col * scale, y + row * scale, scale, scale, color);
      }
    }
    left += (GLYPH_WIDTH + 1) * scale;
  }
}

/** Fills a w × h rectangle at (x, y), clipped to the image. */
export function fillRect(
  rgb: Buffer,
  imageWidth: number,
  x: number,
  y: number,
  w: number,
  h: number,
  color: Rgb,
): void {
  const imageHeight = Math.floor(rgb.length / (imageWidth * 3));
  const x0 = Math.max(0, Math.floor(x));
  const y0 = Math.max(0, Math.floor(y));
  const x1 = Math.min(imageWidth, Math.floor(x + w));
  const y1 = Math.min(imageHeight, Math.floor(y + h));
  if (x1 <= x0 || y1 <= y0) return;
  const [r, g, b] = color;
  for (let row = y0; row < y1; row++) {
    let o = (row * imageWidth + x0) * 3;
    for (let col = x0; col < x1; col++, o += 3) {
      rgb[o] = r;
      rgb[o + 1] = g;
      rgb[o + 2] = b;
    }
  }
}
