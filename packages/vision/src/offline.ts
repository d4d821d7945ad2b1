/**
 * The offline provider: judges a grid from its own pixels, with no account and no network. It is the
 * embedded default — a real product for people without an API key, not a stand-in for tests.
 *
 * What it sees is what a model would see: the grid image. For each cell it measures, on the thumbnail
 * as drawn in the grid:
 *   - sharpness (Laplacian variance), relative to the sharpest cell of the same grid;
 *   - exposure (mean brightness near the mid-tones, little clipping to black or white);
 *   - a perceptual hash, to recognise bursts and near-duplicates.
 * It then skips obviously flawed cells (soft compared with the grid's best, or badly exposed, or flawed by
 * what the worker measured and the grid cannot show: noise at full size, a defocus beside a sharp twin),
 * takes the rest best first, and from each group of near-duplicates (by hash in the grid, and the job-wide
 * groups the request names) only the best one. It is deterministic: the
 * same grid always gets the same answer. It does not judge content (moment, emotion, composition), so it
 * ignores free-text criteria; use a vision model for that.
 */
import { cellRect, OFFLINE_PROFILE, type VisionProfile } from '@triage/core';
import { computeSignals, decodeRaw, hashDistance, type QualitySignals } from '@triage/images';
import { unionAnswers, NO_USAGE, type GridAnswer, type GridRequest, type VisionProvider } from './provider.js';

export interface OfflineOptions {
  /** Cells whose hashes differ by at most this many of 64 bits count as near-duplicates. */
  duplicateBits?: number;
  /** A cell less sharp than this share of the grid's sharpest cell is "blurred". */
  minRelativeSharpness?: number;
  /** A cell whose exposure score is below this is "badly exposed". */
  minExposure?: number;
}

export interface CellJudgement {
  label: string;
  signals: QualitySignals;
  /** 0..1: relative sharpness × exposure. */
  score: number;
  flaw: 'blurred' | 'badly exposed' | null;
}

export class OfflineProvider implements VisionProvider {
  readonly local: boolean = true;
  readonly name = 'offline';
  readonly profile: VisionProfile;
  private readonly duplicateBits: number;
  private readonly minRelativeSharpness: number;
  private readonly minExposure: number;

  constructor(options: OfflineOptions & { profile?: VisionProfile } = {}) {
    this.profile = options.profile ?? OFFLINE_PROFILE;
    this.duplicateBits = options.duplicateBits ?? 10;
    this.minRelativeSharpness = options.minRelativeSharpness ?? 0.35;
    this.minExposure = options.minExposure ?? 0.4;
  }

  /** Every cell's measurements and verdict, for callers that want to explain a choice. */
  async assess(request: GridRequest): Promise<CellJudgement[]> {
    request.signal?.throwIfAborted();
    const { data, width } = await decodeRaw(request.image);
    const size = request.geometry.thumb;
    const cell = Buffer.alloc(size * size * 3);
    const measured = request.labels.map((label, i) => {
      const { x, y } = cellRect(request.geometry, i);
      for (let row = 0; row < size; row++) {
        const from = ((y + row) * width + x) * 3;
        data.copy(cell, row * size * 3, from, from + size * 3);
      }
      return { label, signals: computeSignals(cell, size, size) };
    });
    const sharpest = Math.max(1e-9, ...measured.map((m) => m.signals.sharpness));
    return measured.map(({ label, signals }) => {
      const relative = signals.sharpness / sharpest;
      const flaw =
        signals.exposure < this.minExposure ? 'badly exposed' : relative < this.minRelativeSharpness ? 'blurred' : null;
      return { label, signals, score: relative * signals.exposure, flaw };
    });
  }

  async judge(request: GridRequest): Promise<GridAnswer> {
    const unreadable = new Set(request.unreadable ?? []);
    const cells = (await this.assess(request)).filter((c) => !unreadable.has(c.label));
    const ranked = [...cells].sort((a, b) => b.score - a.score || a.label.localeCompare(b.label));
    const sceneOf = new Map<string, number>();
    (request.sameScene ?? []).forEach((set, k) => set.forEach((label) => sceneOf.set(label, k)));
    const sameScene = (a: string, b: string) => sceneOf.has(a) && sceneOf.get(a) === sceneOf.get(b);
    const sound = ranked.filter((c) => c.flaw === null && !request.cells?.[c.label]?.flaw);
    // A grid of nothing but flawed shots still gets its best few: the ranking needs them, and so may the user.
    // Never a cell the worker found flawed, though: the grid cannot show why it is, and neither can the ranking.
    const pool = sound.length > 0 ? sound : ranked.filter((c) => !request.cells?.[c.label]?.flaw);
    const picks: CellJudgement[] = [];
    for (const candidate of pool) {
      if (picks.length >= request.pick) break;
      if (
        picks.some(
          (p) =>
            sameScene(p.label, candidate.label) ||
            hashDistance(p.signals.hash, candidate.signals.hash) <= this.duplicateBits,
        )
      )
        continue;
      picks.push(candidate);
    }
    const chosen = new Set(picks.map((p) => p.label));
    return unionAnswers(request.labels, [
      { model: 'offline', picks: request.labels.filter((l) => chosen.has(l)), usage: NO_USAGE },
    ]);
  }
}
