import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LAYOUTS,
  GeometryError,
  OFFLINE_PROFILE,
  STANDARD_PROFILE,
  canvasSide,
  capacity,
  cellLabel,
  cellRect,
  fitGeometry,
  gridStarts,
  labelsFor,
  planGeometry,
  rowLetters,
  splitIntoGrids,
  visualTokens,
  type GridGeometry,
  type PassLayout,
  type VisionProfile,
} from './geometry.js';

const HIGH_RES: VisionProfile = {
  id: 'high-res',
  maxEdge: 2576,
  maxTokens: 4784,
  patch: 28,
  inputPerMTok: 5,
  outputPerMTok: 25,
};

const PROFILES: VisionProfile[] = [STANDARD_PROFILE, OFFLINE_PROFILE, HIGH_RES];

function expectFits(g: GridGeometry, profile: VisionProfile): void {
  const side = canvasSide(profile);
  expect(g.width).toBeLessThanOrEqual(side);
  expect(g.height).toBeLessThanOrEqual(side);
  expect(g.width).toBeLessThanOrEqual(profile.maxEdge);
  expect(g.height).toBeLessThanOrEqual(profile.maxEdge);
  expect(visualTokens(g.width, g.height, profile.patch)).toBeLessThanOrEqual(profile.maxTokens);
  // The stated size is consistent with the cells it is made of.
  expect(g.width).toBe(g.header + g.cols * g.cellWidth);
  expect(g.height).toBe(g.header + g.rows * g.cellHeight);
  expect(g.cellWidth).toBe(g.thumb + g.gap);
  expect(g.cellHeight).toBe(g.thumb + g.labelHeight + g.gap);
  expect(g.thumb).toBeGreaterThanOrEqual(16);
  expect(Number.isInteger(g.thumb)).toBe(true);
}

describe('visualTokens', () => {
  it('counts one token per started patch in each direction', () => {
    expect(visualTokens(28, 28, 28)).toBe(1);
    expect(visualTokens(29, 28, 28)).toBe(2);
    expect(visualTokens(1092, 1092, 28)).toBe(39 * 39);
    expect(visualTokens(1093, 1092, 28)).toBe(40 * 39);
    expect(visualTokens(1932, 1932, 28)).toBe(69 * 69);
    expect(visualTokens(1, 1, 28)).toBe(1);
  });
});

describe('canvasSide', () => {
  it('gives 1092 px for the standard profile (1568 px, 1568 tokens, 28 px patches)', () => {
    expect(canvasSide(STANDARD_PROFILE)).toBe(1092);
    expect(canvasSide(OFFLINE_PROFILE)).toBe(1092);
  });

  it('gives 1932 px for a high-resolution profile (2576 px, 4784 tokens)', () => {
    expect(canvasSide(HIGH_RES)).toBe(1932);
  });

  it('is limited by the longest edge when that is the tighter bound', () => {
    expect(canvasSide({ ...STANDARD_PROFILE, maxEdge: 800 })).toBe(800);
  });

  it('never costs more than the token budget', () => {
    for (const p of [...PROFILES, { ...STANDARD_PROFILE, maxEdge: 1000 }, { ...STANDARD_PROFILE, maxTokens: 1000 }]) {
      const side = canvasSide(p);
      expect(visualTokens(side, side, p.patch)).toBeLessThanOrEqual(p.maxTokens);
      expect(side).toBeLessThanOrEqual(p.maxEdge);
    }
  });
});

describe('planGeometry', () => {
  it('plans the standard coarse grid: 10 × 12 cells of 84 px in a 1082 × 1086 image', () => {
    const g = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse);
    expect(g).toMatchObject({ rows: 10, cols: 12, thumb: 84, gap: 4, width: 1082, height: 1086 });
    expect(capacity(g)).toBe(120);
    expectFits(g, STANDARD_PROFILE);
  });

  it('plans the standard fine grid: 4 × 4 large thumbnails', () => {
    const g = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.fine);
    expect(g.rows).toBe(4);
    expect(g.cols).toBe(4);
    expect(capacity(g)).toBe(16);
    expect(g.thumb).toBeGreaterThanOrEqual(224);
    expectFits(g, STANDARD_PROFILE);
  });

  it('uses the larger canvas of a high-resolution model for more cells', () => {
    const std = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse);
    const hi = planGeometry(HIGH_RES, DEFAULT_LAYOUTS.coarse);
    expect(capacity(hi)).toBeGreaterThan(capacity(std));
    expect(hi.thumb).toBeGreaterThanOrEqual(84);
    expectFits(hi, HIGH_RES);
  });

  const minThumbs = [16, 24, 32, 48, 64, 84, 100, 128, 159, 160, 200, 224, 256, 300, 400, 500, 600];
  for (const profile of PROFILES) {
    for (const pass of ['coarse', 'fine'] as const) {
      it(`default ${pass} layout fits the ${profile.id} profile`, () => {
        const g = planGeometry(profile, DEFAULT_LAYOUTS[pass]);
        expectFits(g, profile);
        expect(g.thumb).toBeGreaterThanOrEqual(DEFAULT_LAYOUTS[pass].minThumb);
      });
    }
    it(`every minThumb fits the ${profile.id} profile with thumbnails at least minThumb`, () => {
      for (const minThumb of minThumbs) {
        if (minThumb + 60 > canvasSide(profile)) continue;
        const g = planGeometry(profile, { minThumb });
        expectFits(g, profile);
        expect(g.thumb, `minThumb ${minThumb}`).toBeGreaterThanOrEqual(minThumb);
        expect(g.rows).toBeGreaterThanOrEqual(1);
        expect(g.cols).toBeGreaterThanOrEqual(1);
      }
    });
    it(`packs as many cells as fit in the ${profile.id} profile (one more column or row would not fit)`, () => {
      for (const minThumb of minThumbs) {
        if (minThumb + 60 > canvasSide(profile)) continue;
        const g = planGeometry(profile, { minThumb });
        const side = canvasSide(profile);
        expect(g.header + (g.cols + 1) * (minThumb + g.gap)).toBeGreaterThan(side);
        expect(g.header + (g.rows + 1) * (minThumb + g.labelHeight + g.gap)).toBeGreaterThan(side);
      }
    });
  }

  it('uses a larger label font for large thumbnails', () => {
    const small = planGeometry(STANDARD_PROFILE, { minThumb: 84 });
    const large = planGeometry(STANDARD_PROFILE, { minThumb: 224 });
    expect(large.labelScale).toBeGreaterThan(small.labelScale);
    expect(large.labelHeight).toBeGreaterThan(small.labelHeight);
    // The header band holds two glyphs (row letters AA.., column numbers 10..).
    expect(small.header).toBeGreaterThanOrEqual(2 * 5 * small.labelScale);
    expect(large.header).toBeGreaterThanOrEqual(2 * 5 * large.labelScale);
  });

  it('honours rows and columns overrides and still fits', () => {
    const layouts: PassLayout[] = [
      { minThumb: 84, rows: 5, cols: 5 },
      { minThumb: 84, rows: 1, cols: 1 },
      { minThumb: 84, rows: 20, cols: 20 },
      { minThumb: 224, rows: 3, cols: 5 },
      { minThumb: 84, rows: 2 },
      { minThumb: 84, cols: 3 },
      { minThumb: 84, cols: 40 },
      { minThumb: 300, rows: 8, cols: 8 },
    ];
    for (const profile of PROFILES) {
      for (const layout of layouts) {
        const g = planGeometry(profile, layout);
        if (layout.rows !== undefined) expect(g.rows).toBe(layout.rows);
        if (layout.cols !== undefined) expect(g.cols).toBe(layout.cols);
        expectFits(g, profile);
      }
    }
  });

  it('fills the free dimension from minThumb when only one is overridden', () => {
    const auto = planGeometry(STANDARD_PROFILE, { minThumb: 84 });
    expect(planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 2 }).cols).toBe(auto.cols);
    expect(planGeometry(STANDARD_PROFILE, { minThumb: 84, cols: 3 }).rows).toBe(auto.rows);
  });

  it('grows thumbnails when an override asks for fewer cells', () => {
    const g = planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 2, cols: 2 });
    expect(g.thumb).toBeGreaterThan(400);
    expectFits(g, STANDARD_PROFILE);
  });

  it('throws a clear GeometryError for a thumbnail bigger than the canvas', () => {
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 1100 })).toThrow(GeometryError);
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 1100 })).toThrow(
      /1100 px thumbnail does not fit in the 1092 px/,
    );
  });

  it('throws a clear GeometryError for a too-small minimum thumbnail', () => {
    for (const minThumb of [0, 10, 15, -5, Number.NaN]) {
      expect(() => planGeometry(STANDARD_PROFILE, { minThumb })).toThrow(GeometryError);
      expect(() => planGeometry(STANDARD_PROFILE, { minThumb })).toThrow(/at least 16 px/);
    }
  });

  it('refuses a fractional minimum thumbnail rather than drawing thumbnails below it', () => {
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84.5 })).toThrow(/whole number/);
  });

  it('throws a clear GeometryError for bad rows/cols overrides', () => {
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 0 })).toThrow(
      /rows must be a positive integer, got 0/,
    );
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, cols: -2 })).toThrow(
      /cols must be a positive integer, got -2/,
    );
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, cols: 2.5 })).toThrow(GeometryError);
  });

  it('throws when an override leaves thumbnails too small to judge', () => {
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 100, cols: 100 })).toThrow(GeometryError);
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 100, cols: 100 })).toThrow(
      /100 × 100 cells leave .* px thumbnails in a 1092 px image: too small to judge/,
    );
    expect(() => planGeometry(STANDARD_PROFILE, { minThumb: 84, cols: 300 })).toThrow(GeometryError);
  });

  it('is the same error class, catchable by instanceof and named', () => {
    try {
      planGeometry(STANDARD_PROFILE, { minThumb: 5000 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GeometryError);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('GeometryError');
    }
  });
});

describe('fitGeometry', () => {
  const full = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse);

  it('keeps the cell size and shrinks rows and columns', () => {
    const g = fitGeometry(full, 13);
    expect(g.thumb).toBe(full.thumb);
    expect(g.cellWidth).toBe(full.cellWidth);
    expect(g.cellHeight).toBe(full.cellHeight);
    expect(g.labelScale).toBe(full.labelScale);
    expect(g.cols).toBe(12);
    expect(g.rows).toBe(2);
    expect(g.width).toBe(full.header + 12 * full.cellWidth);
    expect(g.height).toBe(full.header + 2 * full.cellHeight);
  });

  it('uses a single row narrower than the full grid for a few photos', () => {
    const g = fitGeometry(full, 5);
    expect(g).toMatchObject({ rows: 1, cols: 5 });
    expect(g.width).toBe(full.header + 5 * full.cellWidth);
  });

  it('returns the full layout for a full grid', () => {
    expect(fitGeometry(full, capacity(full))).toEqual(full);
  });

  it('holds every count from 1 to capacity within the full grid', () => {
    for (let n = 1; n <= capacity(full); n++) {
      const g = fitGeometry(full, n);
      expect(capacity(g)).toBeGreaterThanOrEqual(n);
      expect(g.rows).toBeLessThanOrEqual(full.rows);
      expect(g.cols).toBeLessThanOrEqual(full.cols);
      // No empty last row.
      expect((g.rows - 1) * g.cols).toBeLessThan(n);
      expect(g.width).toBeLessThanOrEqual(full.width);
      expect(g.height).toBeLessThanOrEqual(full.height);
    }
  });

  it('rejects counts it cannot hold', () => {
    for (const n of [0, -1, 121, 1.5, Number.NaN]) {
      expect(() => fitGeometry(full, n)).toThrow(GeometryError);
    }
    expect(() => fitGeometry(full, 121)).toThrow(/10 × 12 cannot hold 121 photos/);
  });
});

describe('splitIntoGrids', () => {
  function checkBalanced(count: number, perGrid: number): number[] {
    const sizes = splitIntoGrids(count, perGrid);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(count);
    expect(sizes.length).toBe(Math.ceil(count / perGrid));
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (const s of sizes) {
      expect(s).toBeLessThanOrEqual(perGrid);
      expect(s).toBeGreaterThanOrEqual(1);
    }
    return sizes;
  }

  it('splits 2000 photos over 120-cell grids into 17 balanced grids', () => {
    const sizes = checkBalanced(2000, 120);
    expect(sizes).toHaveLength(17);
    expect(sizes.filter((s) => s === 118)).toHaveLength(11);
    expect(sizes.filter((s) => s === 117)).toHaveLength(6);
    // Larger grids first.
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
  });

  it('never leaves a lonely handful in the last grid', () => {
    expect(splitIntoGrids(121, 120)).toEqual([61, 60]);
    expect(splitIntoGrids(17, 16)).toEqual([9, 8]);
  });

  it('is balanced for many counts and capacities', () => {
    for (const perGrid of [1, 16, 56, 120, 357]) {
      for (const count of [1, 2, 15, 16, 17, 119, 120, 121, 239, 240, 241, 999, 1000, 2000]) {
        checkBalanced(count, perGrid);
      }
    }
  });

  it('gives one grid when everything fits, and nothing for no photos', () => {
    expect(splitIntoGrids(120, 120)).toEqual([120]);
    expect(splitIntoGrids(1, 120)).toEqual([1]);
    expect(splitIntoGrids(0, 120)).toEqual([]);
  });
});

describe('gridStarts', () => {
  it('gives the first index of each grid and the total', () => {
    expect(gridStarts([3, 2, 2])).toEqual([0, 3, 5, 7]);
    expect(gridStarts([])).toEqual([0]);
    const sizes = splitIntoGrids(2000, 120);
    const starts = gridStarts(sizes);
    expect(starts).toHaveLength(sizes.length + 1);
    expect(starts[starts.length - 1]).toBe(2000);
  });
});

describe('labels', () => {
  it('names rows A..Z, then AA, AB.., AZ, BA.., ZZ, AAA', () => {
    expect(rowLetters(0)).toBe('A');
    expect(rowLetters(1)).toBe('B');
    expect(rowLetters(25)).toBe('Z');
    expect(rowLetters(26)).toBe('AA');
    expect(rowLetters(27)).toBe('AB');
    expect(rowLetters(51)).toBe('AZ');
    expect(rowLetters(52)).toBe('BA');
    expect(rowLetters(701)).toBe('ZZ');
    expect(rowLetters(702)).toBe('AAA');
  });

  it('labels cells row by row: A1..A12, then B1..', () => {
    const labels = labelsFor(120, 12);
    expect(labels.slice(0, 13)).toEqual([
      'A1',
      'A2',
      'A3',
      'A4',
      'A5',
      'A6',
      'A7',
      'A8',
      'A9',
      'A10',
      'A11',
      'A12',
      'B1',
    ]);
    expect(labels[119]).toBe('J12');
    expect(cellLabel(0, 12)).toBe('A1');
    expect(cellLabel(11, 12)).toBe('A12');
    expect(cellLabel(12, 12)).toBe('B1');
    expect(cellLabel(18, 12)).toBe('B7');
  });

  it('goes beyond Z to AA for tall grids', () => {
    const labels = labelsFor(30 * 4, 4);
    expect(labels[25 * 4]).toBe('Z1');
    expect(labels[26 * 4]).toBe('AA1');
    expect(labels[26 * 4 + 3]).toBe('AA4');
    expect(labels[27 * 4]).toBe('AB1');
  });

  it('gives every cell of a full grid a distinct label', () => {
    for (const profile of PROFILES) {
      for (const layout of [
        DEFAULT_LAYOUTS.coarse,
        DEFAULT_LAYOUTS.fine,
        { minThumb: 16 },
        { minThumb: 16, rows: 28, cols: 10 },
      ]) {
        const g = planGeometry(profile, layout);
        const labels = labelsFor(capacity(g), g.cols);
        expect(new Set(labels).size).toBe(capacity(g));
        for (const l of labels) expect(l).toMatch(/^[A-Z]+[1-9]\d*$/);
      }
    }
  });
});

describe('cellRect', () => {
  function checkCells(g: GridGeometry): void {
    const rects = Array.from({ length: capacity(g) }, (_, i) => cellRect(g, i));
    for (const r of rects) {
      expect(r.size).toBe(g.thumb);
      expect(r.labelY).toBe(r.y + g.thumb);
      // Thumbnail and label strip stay inside the image, below and right of the header band.
      expect(r.x).toBeGreaterThanOrEqual(g.header);
      expect(r.y).toBeGreaterThanOrEqual(g.header);
      expect(r.x + r.size).toBeLessThanOrEqual(g.width);
      expect(r.labelY + g.labelHeight).toBeLessThanOrEqual(g.height);
    }
    // No two cells (thumbnail plus label strip) overlap.
    for (let i = 0; i < rects.length; i++) {
      for (let j = i + 1; j < rects.length; j++) {
        const a = rects[i]!;
        const b = rects[j]!;
        const apart =
          a.x + a.size <= b.x ||
          b.x + b.size <= a.x ||
          a.labelY + g.labelHeight <= b.y ||
          b.labelY + g.labelHeight <= a.y;
        expect(apart, `cells ${i} and ${j} overlap`).toBe(true);
      }
    }
  }

  it('places the first coarse cell just inside the header band', () => {
    const g = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse);
    expect(cellRect(g, 0)).toEqual({
      x: g.header + g.gap / 2,
      y: g.header + g.gap / 2,
      size: 84,
      labelY: g.header + g.gap / 2 + 84,
    });
    // Cell 13 is B2: one row down, one column right.
    const b2 = cellRect(g, 13);
    expect(b2.x).toBe(g.header + g.cellWidth + g.gap / 2);
    expect(b2.y).toBe(g.header + g.cellHeight + g.gap / 2);
  });

  it('keeps cells apart and inside the image for full grids', () => {
    for (const profile of PROFILES) {
      checkCells(planGeometry(profile, DEFAULT_LAYOUTS.coarse));
      checkCells(planGeometry(profile, DEFAULT_LAYOUTS.fine));
    }
    checkCells(planGeometry(STANDARD_PROFILE, { minThumb: 84, rows: 3, cols: 7 }));
  });

  it('keeps cells apart and inside the image for partial grids', () => {
    const full = planGeometry(STANDARD_PROFILE, DEFAULT_LAYOUTS.coarse);
    for (const n of [1, 5, 12, 13, 59, 119]) {
      const g = fitGeometry(full, n);
      const rects = Array.from({ length: n }, (_, i) => cellRect(g, i));
      for (const r of rects) {
        expect(r.x + r.size).toBeLessThanOrEqual(g.width);
        expect(r.labelY + g.labelHeight).toBeLessThanOrEqual(g.height);
      }
    }
  });
});
