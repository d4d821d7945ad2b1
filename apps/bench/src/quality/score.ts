/**
 * What an editor would say of a selection, from the set's labels: picks that are flawed, extra picks from a
 * scene already picked, bursts whose pick is not the sharp frame, and how many scenes the picks cover.
 */
import type { LabelledPhoto } from './set.js';

export interface QualityScore {
  picks: number;
  /** Picks of a flawed copy or a blurred burst frame, with their file and flaw. */
  flawed: { name: string; flaw: string }[];
  /** Picks beyond the first of a scene. */
  sameSceneExtras: number;
  bursts: number;
  /** Bursts with a pick that is not their sharp frame. */
  burstsMissed: number;
  scenes: number;
  scenesCovered: number;
}

export function scoreSelection(photos: readonly LabelledPhoto[], selected: readonly number[]): QualityScore {
  const picked = selected.map((i) => photos[i]!);
  const flawed = picked
    .filter((p) => p.role === 'flawed' || p.role === 'burst-blurred')
    .map((p) => ({ name: p.name, flaw: p.flaw ?? p.role }));
  const scenesPicked = new Set(picked.map((p) => p.scene));
  const bursts = new Set(photos.filter((p) => p.burst !== undefined).map((p) => p.burst!));
  const burstsMissed = new Set(picked.filter((p) => p.role === 'burst-blurred').map((p) => p.burst!));
  return {
    picks: picked.length,
    flawed,
    sameSceneExtras: picked.length - scenesPicked.size,
    bursts: bursts.size,
    burstsMissed: burstsMissed.size,
    scenes: new Set(photos.map((p) => p.scene)).size,
    scenesCovered: scenesPicked.size,
  };
}

/** Counts of each role in a set, for the report. */
export function describeSet(photos: readonly LabelledPhoto[]): string {
  const count = (role: LabelledPhoto['role']) => photos.filter((p) => p.role === role).length;
  const flaws = new Map<string, number>();
  for (const p of photos) if (p.role === 'flawed') flaws.set(p.flaw!, (flaws.get(p.flaw!) ?? 0) + 1);
  const flawText = [...flaws].map(([f, n]) => `${n} ${f}`).join(', ');
  const bursts = new Set(photos.filter((p) => p.burst !== undefined).map((p) => p.burst)).size;
  return (
    `${photos.length} photos of ${new Set(photos.map((p) => p.scene)).size} scenes: ${count('clean')} clean, ` +
    `${count('near-duplicate')} near-duplicates, ${count('flawed')} flawed copies (${flawText}), ` +
    `${bursts} bursts of ${count('burst-sharp') + count('burst-blurred')} frames`
  );
}
