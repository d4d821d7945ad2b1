import { describe, expect, it } from 'vitest';
import {
  CRITERIA_PRESETS,
  MAX_CRITERIA_LENGTH,
  TriageInputError,
  coarsePercent,
  describeCriteria,
  finalCount,
  finePercent,
  formatTarget,
  normaliseCriteria,
  parsePasses,
  parseTarget,
  picksForGrid,
  targetPercent,
} from './target.js';

function inputError(fn: () => unknown): TriageInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TriageInputError);
    expect((err as Error).name).toBe('TriageInputError');
    return err as TriageInputError;
  }
  throw new Error('expected a TriageInputError');
}

describe('parseTarget', () => {
  it('accepts percentages', () => {
    expect(parseTarget('10%')).toEqual({ kind: 'percent', value: 10 });
    expect(parseTarget('12.5%')).toEqual({ kind: 'percent', value: 12.5 });
    expect(parseTarget('100%')).toEqual({ kind: 'percent', value: 100 });
    expect(parseTarget(' 25% ')).toEqual({ kind: 'percent', value: 25 });
    expect(parseTarget('0.5%')).toEqual({ kind: 'percent', value: 0.5 });
  });

  it('accepts counts, trimmed', () => {
    expect(parseTarget(' 50 ')).toEqual({ kind: 'count', value: 50 });
    expect(parseTarget('1')).toEqual({ kind: 'count', value: 1 });
    expect(parseTarget('50', 50)).toEqual({ kind: 'count', value: 50 });
    expect(parseTarget('50', 2000)).toEqual({ kind: 'count', value: 50 });
  });

  it('rejects text that is neither a share nor a count, naming the input', () => {
    for (const bad of ['abc', '-5%', '', '   ', '10.5', '1e2', '%', '10%%', 'ten', '-3', '5 photos']) {
      const err = inputError(() => parseTarget(bad));
      expect(err.message).toContain(`"${bad}"`);
      expect(err.message).toMatch(/Invalid target/);
    }
    expect(inputError(() => parseTarget('abc')).message).toBe(
      'Invalid target "abc": use a share such as "10%" or a count such as "50"',
    );
  });

  it('rejects shares outside (0, 100]', () => {
    for (const bad of ['0%', '0.0%', '150%', '100.5%', '1000%']) {
      const err = inputError(() => parseTarget(bad));
      expect(err.message).toContain(`"${bad}"`);
      expect(err.message).toMatch(/above 0% and at most 100%/);
    }
  });

  it('rejects a zero count', () => {
    const err = inputError(() => parseTarget('0'));
    expect(err.message).toBe('Invalid target "0": a count must be at least 1');
  });

  it('rejects a count above the number of photos', () => {
    const err = inputError(() => parseTarget('60', 50));
    expect(err.message).toContain('"60"');
    expect(err.message).toContain('60 of 50');
    expect(() => parseTarget('51', 50)).toThrow(TriageInputError);
  });

  it('formats a target back to its text', () => {
    for (const text of ['10%', '12.5%', '100%', '50']) expect(formatTarget(parseTarget(text))).toBe(text);
  });
});

describe('targetPercent', () => {
  it('passes a share through', () => {
    expect(targetPercent({ kind: 'percent', value: 12.5 }, 2000)).toBe(12.5);
  });

  it('turns a count into the share of the total', () => {
    expect(targetPercent({ kind: 'count', value: 50 }, 2000)).toBe(2.5);
    expect(targetPercent({ kind: 'count', value: 200 }, 2000)).toBe(10);
    expect(targetPercent({ kind: 'count', value: 1 }, 4)).toBe(25);
    expect(targetPercent({ kind: 'count', value: 10 }, 10)).toBe(100);
  });

  it('caps at 100%', () => {
    expect(targetPercent({ kind: 'count', value: 20 }, 10)).toBe(100);
  });

  it('round-trips through finalCount to exactly the requested count', () => {
    for (const total of [1, 2, 3, 7, 9, 33, 99, 100, 101, 333, 997, 1999, 2000]) {
      for (const n of [1, 2, 3, 7, Math.floor(total / 3), total - 1, total]) {
        if (n < 1 || n > total) continue;
        expect(finalCount(targetPercent({ kind: 'count', value: n }, total), total), `${n} of ${total}`).toBe(n);
      }
    }
  });
});

describe('finalCount', () => {
  it('is floor(total · P / 100)', () => {
    expect(finalCount(10, 2000)).toBe(200);
    expect(finalCount(12.5, 2000)).toBe(250);
    expect(finalCount(10, 105)).toBe(10);
    expect(finalCount(25, 7)).toBe(1);
    expect(finalCount(33, 100)).toBe(33);
    expect(finalCount(100, 7)).toBe(7);
    expect(finalCount(99.9, 1000)).toBe(999);
  });

  it('keeps at least one photo', () => {
    expect(finalCount(10, 5)).toBe(1);
    expect(finalCount(0.1, 10)).toBe(1);
    expect(finalCount(1, 1)).toBe(1);
  });

  it('is not fooled by floating point (e.g. 0.1 · 30)', () => {
    expect(finalCount(10, 30)).toBe(3);
    expect(finalCount(70, 10)).toBe(7);
    expect(finalCount(14, 50)).toBe(7);
  });

  it('keeps nothing of nothing', () => {
    expect(finalCount(10, 0)).toBe(0);
  });
});

describe('coarsePercent', () => {
  it('is min(2.5 · P, 50)', () => {
    expect(coarsePercent(10)).toBe(25);
    expect(coarsePercent(4)).toBe(10);
    expect(coarsePercent(2.5)).toBe(6.25);
    expect(coarsePercent(20)).toBe(50);
    expect(coarsePercent(25)).toBe(50);
    expect(coarsePercent(100)).toBe(50);
  });
});

describe('finePercent', () => {
  it('is P · total / survivors', () => {
    expect(finePercent(10, 2000, 500)).toBe(40);
    expect(finePercent(10, 2000, 800)).toBe(25);
    expect(finePercent(5, 1000, 250)).toBe(20);
  });

  it('caps at 100', () => {
    expect(finePercent(10, 2000, 100)).toBe(100);
    expect(finePercent(50, 100, 50)).toBe(100);
  });

  it('asks for nothing without survivors', () => {
    expect(finePercent(10, 2000, 0)).toBe(0);
  });
});

describe('picksForGrid', () => {
  it('apportions asks over a pass so that they add up to its share, whatever the grid sizes', () => {
    // 504 survivors in 32 fine grids of 15-16 at 39.68 %: per-grid rounding would ask 192, not 200.
    const sizes = [...Array(24).fill(16), ...Array(8).fill(15)] as number[];
    let before = 0;
    let total = 0;
    for (const n of sizes) {
      total += picksForGrid((100 * 200) / 504, n, before);
      before += n;
    }
    expect(total).toBe(200);
  });

  it('asks for the share of the grid, rounded', () => {
    expect(picksForGrid(25, 120)).toBe(30);
    expect(picksForGrid(25, 118)).toBe(30);
    expect(picksForGrid(25, 117)).toBe(29);
    expect(picksForGrid(40, 16)).toBe(6);
    expect(picksForGrid(100, 16)).toBe(16);
  });

  it('is at least one and at most the number of cells', () => {
    for (const cells of [1, 2, 5, 16, 117, 120, 357]) {
      for (const percent of [0.01, 0.5, 1, 10, 25, 50, 99, 100, 150]) {
        const n = picksForGrid(percent, cells);
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(cells);
        expect(Number.isInteger(n)).toBe(true);
      }
    }
    expect(picksForGrid(1, 10)).toBe(1);
    expect(picksForGrid(150, 10)).toBe(10);
  });

  it('asks for nothing of an empty grid', () => {
    expect(picksForGrid(25, 0)).toBe(0);
  });
});

describe('parsePasses', () => {
  it('accepts 1 and 2 as numbers or strings', () => {
    expect(parsePasses(1)).toBe(1);
    expect(parsePasses(2)).toBe(2);
    expect(parsePasses('1')).toBe(1);
    expect(parsePasses('2')).toBe(2);
  });

  it("rejects anything else with exactly 'Passes must be 1 or 2'", () => {
    for (const bad of [
      0,
      3,
      -1,
      1.5,
      '0',
      '3',
      'abc',
      '',
      ' ',
      'two',
      null,
      undefined,
      true,
      [1],
      { passes: 1 },
      Number.NaN,
    ]) {
      const err = inputError(() => parsePasses(bad));
      expect(err.message).toBe('Passes must be 1 or 2');
    }
  });
});

describe('criteria', () => {
  it('defaults to standout', () => {
    expect(normaliseCriteria(undefined)).toBe('standout');
    expect(normaliseCriteria('')).toBe('standout');
    expect(normaliseCriteria('   ')).toBe('standout');
  });

  it('keeps the presets and trims free text', () => {
    expect(normaliseCriteria('standout')).toBe('standout');
    expect(normaliseCriteria(' quality ')).toBe('quality');
    expect(normaliseCriteria('  kids laughing, golden hour  ')).toBe('kids laughing, golden hour');
  });

  it('accepts free text up to 500 characters and rejects longer', () => {
    expect(MAX_CRITERIA_LENGTH).toBe(500);
    const max = 'x'.repeat(500);
    expect(normaliseCriteria(max)).toBe(max);
    expect(normaliseCriteria(`  ${max}  `)).toBe(max);
    const err = inputError(() => normaliseCriteria('x'.repeat(501)));
    expect(err.message).toBe('Criteria must be at most 500 characters');
  });

  it('describes the presets as the algorithm defines them', () => {
    expect(describeCriteria('standout')).toBe(CRITERIA_PRESETS.standout);
    expect(describeCriteria('quality')).toBe(CRITERIA_PRESETS.quality);
    for (const word of ['eye-catching', 'moment', 'subject', 'light', 'composition', 'emotion', 'framing']) {
      expect(CRITERIA_PRESETS.standout).toContain(word);
    }
    for (const word of ['technical', 'aesthetic', 'sharp', 'exposure', 'colour', 'light', 'clear subject']) {
      expect(CRITERIA_PRESETS.quality).toContain(word);
    }
  });

  it('uses free text verbatim', () => {
    expect(describeCriteria('kids laughing, golden hour')).toBe('kids laughing, golden hour');
    expect(describeCriteria('Standout')).toBe('Standout');
  });

  it('uses free text that happens to name an Object.prototype member verbatim', () => {
    // A user's own words must never be looked up on the prototype chain.
    for (const word of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      expect(describeCriteria(word)).toBe(word);
    }
  });
});
