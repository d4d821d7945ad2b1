/**
 * Near-duplicate groups across a whole job: photos of the same scene (re-framed, a moment apart, a burst, a
 * flawed copy) wherever they fell in the coarse grids. Computed once the coarse pass ends, from signals every
 * photo already has: a 16 × 16 luma signature compared under small shifts (so re-framing by a few per cent
 * still matches) and a colour layout normalised per channel (so an exposure change still matches).
 * Groups are connected components, numbered by their first photo: the same signals always give the same
 * groups, so a worker that resumes after a crash computes exactly what the dead one would have.
 */

/** What grouping needs of a photo: QualitySignals.signature and .layout (hex), and when it was taken if known (ms, EXIF). */
export interface SceneKey {
  signature: string;
  layout: string;
  captured?: number;
}

/** Side of the luma signature (QualitySignals.signature). */
export const SIGNATURE_SIDE = 16;

/**
 * Two photos show the same scene when their signatures correlate at least this well at the best shift of up
 * to one signature cell (6 % of the frame) and their colour layouts are this close. Chosen on the quality
 * benchmark's tuned set (docs/benchmarks.md): no scene split in two groups; a few similar scenes merged.
 */
export const SAME_SCENE_CORRELATION = 0.8;
export const SAME_SCENE_LAYOUT = 0.5;

/**
 * Capture time, where both photos have one (EXIF DateTimeOriginal), is a hint either way. Taken within
 * BURST_SPAN_MS of each other, they are a burst or a moment apart, and a looser match suffices (a subject
 * moving across a burst changes the frame more than re-framing does). Taken more than SCENE_SPAN_MS apart, they
 * are never one group, however alike: two alike scenes of a day (two misty lakes) stay apart.
 */
export const BURST_SPAN_MS = 2_000;
export const BURST_CORRELATION = 0.6;
export const BURST_LAYOUT = 0.75;
export const SCENE_SPAN_MS = 30 * 60_000;

/** Group id (the index of the group's first photo) of every photo; null for a photo without signals. */
export function groupScenes(keys: readonly (SceneKey | null)[]): (number | null)[] {
  const decoded = keys.map((k) =>
    k ? { signature: decodeHex(k.signature), layout: decodeHex(k.layout), captured: k.captured } : null,
  );
  const parent = keys.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  for (let i = 0; i < decoded.length; i++) {
    const a = decoded[i];
    if (!a) continue;
    for (let j = i + 1; j < decoded.length; j++) {
      const b = decoded[j];
      if (!b || find(i) === find(j)) continue;
      const gap = a.captured !== undefined && b.captured !== undefined ? Math.abs(a.captured - b.captured) : null;
      if (gap !== null && gap > SCENE_SPAN_MS) continue;
      const burst = gap !== null && gap <= BURST_SPAN_MS;
      // The layout first: 48 bytes, and most pairs of different scenes fail it.
      if (layoutGap(a.layout, b.layout) > (burst ? BURST_LAYOUT : SAME_SCENE_LAYOUT)) continue;
      if (bestCorrelation(a.signature, b.signature) < (burst ? BURST_CORRELATION : SAME_SCENE_CORRELATION)) continue;
      const [ri, rj] = [find(i), find(j)];
      // The smaller root wins, so a group's id is its first photo whatever the order of the unions.
      if (ri < rj) parent[rj] = ri;
      else parent[ri] = rj;
    }
  }
  return decoded.map((d, i) => (d ? find(i) : null));
}

/** Mean absolute difference of two normalised colour layouts, in standard deviations (see QualitySignals.layout). */
export function layoutGap(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length / 40;
}

/** Pearson correlation of two square signatures at the best shift of −1..1 cell each way. */
export function bestCorrelation(a: Uint8Array, b: Uint8Array): number {
  const n = Math.round(Math.sqrt(a.length));
  if (a.length !== b.length || n * n !== a.length) return -1;
  let best = -1;
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      let sa = 0,
        sb = 0,
        saa = 0,
        sbb = 0,
        sab = 0,
        count = 0;
      for (let y = Math.max(0, dy); y < n + Math.min(0, dy); y++) {
        for (let x = Math.max(0, dx); x < n + Math.min(0, dx); x++) {
          const va = a[y * n + x]!;
          const vb = b[(y - dy) * n + (x - dx)]!;
          sa += va;
          sb += vb;
          saa += va * va;
          sbb += vb * vb;
          sab += va * vb;
          count++;
        }
      }
      const cov = sab / count - (sa / count) * (sb / count);
      const va = saa / count - (sa / count) ** 2;
      const vb = sbb / count - (sb / count) ** 2;
      // A flat frame (variance under 1 level²) correlates with nothing rather than with everything.
      const c = cov / Math.sqrt(Math.max(va, 1) * Math.max(vb, 1));
      if (c > best) best = c;
    }
  }
  return best;
}

function decodeHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Members of each group with more than one photo, in index order, by group id. */
export function groupMembers(groups: readonly (number | null)[]): Map<number, number[]> {
  const members = new Map<number, number[]>();
  groups.forEach((g, i) => {
    if (g === null) return;
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  });
  return members;
}

/**
 * The fine pass's order and grid sizes: a group's survivors side by side in one grid (so the model compares
 * them directly), in capture order, and groups in the capture order of their first photo, no grid above
 * `capacity`. A group larger than a grid is cut into full grids. Capture order is `captured` (ms, from EXIF)
 * where a photo has it; photos without follow in input order (a camera's file names count up as it shoots).
 */
export function arrangeFine(
  survivors: readonly number[],
  groups: readonly (number | null)[],
  capacity: number,
  captured: readonly (number | null | undefined)[] = [],
): { order: number[]; sizes: number[] } {
  const units = new Map<number | string, number[]>();
  for (const index of inCaptureOrder(survivors, captured)) {
    const key = groups[index] ?? `alone:${index}`;
    const unit = units.get(key);
    if (unit) unit.push(index);
    else units.set(key, [index]);
  }
  const chunks = [...units.values()].flatMap((u) =>
    Array.from({ length: Math.ceil(u.length / capacity) }, (_, k) => u.slice(k * capacity, (k + 1) * capacity)),
  );
  const target = Math.ceil(survivors.length / Math.max(1, Math.ceil(survivors.length / capacity)));
  const order: number[] = [];
  const sizes: number[] = [];
  let current = 0;
  for (const chunk of chunks) {
    if (current > 0 && (current + chunk.length > capacity || current >= target)) {
      sizes.push(current);
      current = 0;
    }
    order.push(...chunk);
    current += chunk.length;
  }
  if (current > 0) sizes.push(current);
  return { order, sizes };
}

/** `indexes` by capture time (ties and photos without one in input order, those without last). */
export function inCaptureOrder(indexes: readonly number[], captured: readonly (number | null | undefined)[]): number[] {
  const time = (i: number) => captured[i] ?? Infinity;
  return [...indexes].sort((a, b) => time(a) - time(b) || a - b);
}

/**
 * The survivors (of the coarse pass, in the fine pass) with at least one other survivor in their group: the
 * photos a side-by-side comparison at full size can decide between.
 */
export function withSurvivingMates(survivors: readonly number[], groups: readonly (number | null)[]): Set<number> {
  const count = new Map<number, number>();
  for (const index of survivors) {
    const g = groups[index];
    if (g !== null && g !== undefined) count.set(g, (count.get(g) ?? 0) + 1);
  }
  return new Set(survivors.filter((index) => (count.get(groups[index] ?? -1) ?? 0) > 1));
}

/**
 * The coarse pass's survivors, plus, for each group with a survivor, the group's best-measured photo (highest
 * `quality`, the first on a tie) when it did not survive: a grid may have dropped the sharp frame of a burst
 * and kept a shaken one, which only a side-by-side look at full size (the fine pass's) tells apart. In index order.
 */
export function withGroupBest(
  survivors: readonly number[],
  groups: readonly (number | null)[],
  quality: (index: number) => number | null,
): number[] {
  const members = groupMembers(groups);
  const out = new Set(survivors);
  for (const index of survivors) {
    const group = groups[index];
    if (group === null || group === undefined) continue;
    let best: number | undefined;
    for (const m of members.get(group) ?? []) {
      const q = quality(m);
      if (q !== null && (best === undefined || q > quality(best)!)) best = m;
    }
    if (best !== undefined) out.add(best);
  }
  return [...out].sort((a, b) => a - b);
}
