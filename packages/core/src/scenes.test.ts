import { describe, expect, it } from 'vitest';
import {
  arrangeFine,
  bestCorrelation,
  BURST_CORRELATION,
  BURST_SPAN_MS,
  groupMembers,
  groupScenes,
  SAME_SCENE_CORRELATION,
  SCENE_SPAN_MS,
  SIGNATURE_SIDE,
  withGroupBest,
  withSurvivingMates,
  type SceneKey,
} from './scenes.js';

const N = SIGNATURE_SIDE;

/** A signature of `f(x, y)` (0..255) and the matching normalised colour layout (grey: every channel alike). */
function key(f: (x: number, y: number) => number): SceneKey {
  const bytes = Array.from({ length: N * N }, (_, i) =>
    Math.max(0, Math.min(255, Math.round(f(i % N, Math.floor(i / N))))),
  );
  const cells: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      let sum = 0;
      for (let y = r * 4; y < r * 4 + 4; y++) for (let x = c * 4; x < c * 4 + 4; x++) sum += bytes[y * N + x]!;
      cells.push(sum / 16);
    }
  }
  const mean = cells.reduce((a, b) => a + b, 0) / 16;
  const spread = Math.max(4, Math.sqrt(cells.reduce((a, b) => a + (b - mean) ** 2, 0) / 16));
  const layout = cells.flatMap((v) => {
    const byte = Math.round(Math.max(0, Math.min(255, 128 + ((v - mean) / spread) * 40)));
    return [byte, byte, byte];
  });
  const hex = (values: number[]) => values.map((v) => v.toString(16).padStart(2, '0')).join('');
  return { signature: hex(bytes), layout: hex(layout) };
}

const hills = (x: number, y: number) => 128 + 80 * Math.sin(x / 2.5) * Math.cos(y / 3.1);
const stripes = (x: number, y: number) => 128 + 90 * Math.sign(Math.sin((x + 2 * y) / 1.7));

describe('groupScenes', () => {
  it('groups a re-framed copy (shifted by a cell) and an exposure change of a scene, and nothing else', () => {
    const keys = [
      key(hills),
      key(stripes),
      key((x, y) => hills(x + 1, y)), // re-framed
      key((x, y) => 0.6 * hills(x, y)), // a stop darker
      null, // unreadable
    ];
    expect(groupScenes(keys)).toEqual([0, 1, 0, 0, null]);
  });

  it('is the same whatever the order the pairs are met in: a group is named by its first photo', () => {
    const keys = [key(stripes), key(hills), key((x, y) => hills(x, y + 1)), key((x, y) => stripes(x, y) * 0.9)];
    expect(groupScenes(keys)).toEqual([0, 1, 1, 0]);
    expect(groupMembers(groupScenes(keys))).toEqual(
      new Map([
        [0, [0, 3]],
        [1, [1, 2]],
      ]),
    );
  });

  it('never groups a flat frame with anything', () => {
    const flat = key(() => 120);
    expect(groupScenes([flat, key(() => 121), key(hills)])).toEqual([0, 1, 2]);
  });

  it('correlates a signature with itself fully and with its negative not at all', () => {
    const a = Uint8Array.from(Array.from({ length: N * N }, (_, i) => hills(i % N, Math.floor(i / N))));
    const b = Uint8Array.from(a, (v) => 255 - v);
    expect(bestCorrelation(a, a)).toBeCloseTo(1, 5);
    expect(bestCorrelation(a, b)).toBeLessThan(0.5);
  });
});

describe('groupScenes with capture times', () => {
  const signature = (f: (x: number, y: number) => number) =>
    Uint8Array.from(
      Array.from({ length: N * N }, (_, i) => Math.max(0, Math.min(255, Math.round(f(i % N, Math.floor(i / N)))))),
    );
  // A burst frame: the scene with a subject (a bright block) that has moved into it.
  const moved = (x: number, y: number) => (x >= 5 && x < 9 && y >= 6 && y < 10 ? 250 : hills(x, y));

  it('groups burst frames that differ more than a re-framing does when taken within BURST_SPAN_MS, and only then', () => {
    const c = bestCorrelation(signature(hills), signature(moved));
    expect(c).toBeGreaterThan(BURST_CORRELATION);
    expect(c).toBeLessThan(SAME_SCENE_CORRELATION);
    const [a, b] = [key(hills), key(moved)];
    expect(groupScenes([a, b])).toEqual([0, 1]);
    expect(
      groupScenes([
        { ...a, captured: 1_000 },
        { ...b, captured: 1_000 + BURST_SPAN_MS },
      ]),
    ).toEqual([0, 0]);
    expect(
      groupScenes([
        { ...a, captured: 1_000 },
        { ...b, captured: 2_000 + BURST_SPAN_MS },
      ]),
    ).toEqual([0, 1]);
    expect(groupScenes([{ ...a, captured: 1_000 }, b])).toEqual([0, 1]);
  });

  it('never groups alike shots taken more than SCENE_SPAN_MS apart, and judges by pixels when one has no time', () => {
    const [a, b] = [key(hills), key((x, y) => hills(x + 1, y))];
    expect(
      groupScenes([
        { ...a, captured: 0 },
        { ...b, captured: SCENE_SPAN_MS },
      ]),
    ).toEqual([0, 0]);
    expect(
      groupScenes([
        { ...a, captured: 0 },
        { ...b, captured: SCENE_SPAN_MS + 1 },
      ]),
    ).toEqual([0, 1]);
    expect(groupScenes([{ ...a, captured: 0 }, b])).toEqual([0, 0]);
  });
});

describe('arrangeFine', () => {
  it('takes survivors in capture order where known, a group side by side in capture order, the undated last', () => {
    const groups = [0, 1, 2, 0, 4, 5];
    const captured = [5_000, 1_000, null, 3_000, 2_000, undefined];
    // 1 (1 s), 4 (2 s), the group of 3 (3 s) and 0 (5 s), then 2 and 5 without a time, in input order.
    expect(arrangeFine([0, 1, 2, 3, 4, 5], groups, 10, captured).order).toEqual([1, 4, 3, 0, 2, 5]);
    expect(arrangeFine([0, 1, 2, 3, 4, 5], groups, 10).order).toEqual([0, 3, 1, 2, 4, 5]);
  });

  it('puts a group side by side in one grid, groups in order of their first photo, no grid over capacity', () => {
    // Photos 0..9; 1, 5 and 8 are one scene; 3 and 9 another.
    const groups = [0, 1, 2, 3, 4, 1, 6, 7, 1, 3];
    const { order, sizes } = arrangeFine([0, 1, 3, 4, 5, 8, 9], groups, 4);
    expect(order).toEqual([0, 1, 5, 8, 3, 9, 4]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(7);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    // Each group lies within one grid.
    let start = 0;
    const gridOf = new Map<number, number>();
    sizes.forEach((size, g) => {
      for (const index of order.slice(start, start + size)) gridOf.set(index, g);
      start += size;
    });
    expect(new Set([1, 5, 8].map((i) => gridOf.get(i))).size).toBe(1);
    expect(new Set([3, 9].map((i) => gridOf.get(i))).size).toBe(1);
  });

  it('cuts a group larger than a grid into full grids', () => {
    const groups = Array.from({ length: 10 }, () => 0);
    expect(arrangeFine([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], groups, 4)).toEqual({
      order: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      sizes: [4, 4, 2],
    });
  });
});

describe('withGroupBest', () => {
  it("brings a surviving group's best-measured photo into the fine pass, and leaves groups without survivors out", () => {
    const groups = [0, 1, 0, 0, 1, null];
    const quality = [0.2, 0.9, 0.8, 0.5, 0.3, 0.4];
    // 3 survived (its group's best is 2); 5 survived alone; group 1 had no survivor.
    expect(withGroupBest([3, 5], groups, (i) => quality[i]!)).toEqual([2, 3, 5]);
    expect(withGroupBest([2], groups, (i) => quality[i]!)).toEqual([2]);
  });
});

describe('withSurvivingMates', () => {
  it('names the survivors with another survivor of their group, wherever they stand in the order', () => {
    const groups = [0, 0, 2, 2, null, 5, 5];
    // 0 and 1 survive together; 2 survives without 3; 4 has no group; 6 and 5 survive, in reverse order.
    expect([...withSurvivingMates([6, 0, 2, 4, 1, 5], groups)].sort()).toEqual([0, 1, 5, 6]);
    expect(withSurvivingMates([], groups).size).toBe(0);
  });
});
