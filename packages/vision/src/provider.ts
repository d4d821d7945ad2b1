/** The vision interface: one grid image in, the labels picked out. Every provider implements it. */
import type { GridGeometry, Pass, VisionProfile } from '@triage/core';

export interface GridRequest {
  /** The grid, encoded as JPEG at exactly geometry.width × geometry.height. */
  image: Buffer;
  geometry: GridGeometry;
  /** Labels present in this grid, in cell order. */
  labels: readonly string[];
  pass: Pass;
  /** `standout`, `quality`, or the user's own words. */
  criteria: string;
  /** About how many cells to pick. */
  pick: number;
  /** Labels of placeholder cells (photos that could not be read): never to be picked. */
  unreadable?: readonly string[];
  /** Sets of cells showing the same scene (near-duplicate groups across the job), each of two or more labels. */
  sameScene?: readonly (readonly string[])[];
  /** What the worker measured of each readable cell, by label: signals a grid's thumbnails cannot show. */
  cells?: Readonly<Record<string, CellHint>>;
  signal?: AbortSignal;
}

export interface CellHint {
  /** A severe technical flaw ("blurred", "noisy", "blown highlights", …), or null. */
  flaw: string | null;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface ModelAnswer {
  model: string;
  /** Valid labels this model picked. */
  picks: string[];
  /** Set when this model's call failed for good (after retries). */
  error?: string;
  usage: Usage;
  /** Labels the model gave that are not selectable in this grid (not present, or unreadable): dropped. */
  ignored?: string[];
  /** The API's stop_reason of the answer used. */
  stopReason?: string;
  /** The answer was not valid JSON; its labels were read from the text. */
  malformed?: boolean;
}

export interface GridAnswer {
  /** Union of every model's picks, in label order. */
  picks: string[];
  /** Label → number of models that picked it. */
  votes: Record<string, number>;
  /** False when no model answered: the grid's photos then survive the pass unreviewed. */
  reviewed: boolean;
  /** Why no model answered, when reviewed is false. */
  error?: string;
  models: ModelAnswer[];
  usage: Usage;
}

export interface VisionProvider {
  readonly name: string;
  /**
   * Judges in this process with the image library (decoding the grid): the worker then runs it under its
   * image gate, so that it never adds a second image pipeline. A remote model leaves this unset.
   */
  readonly local?: boolean;
  /** What the model sees: grids are built to exactly this. */
  readonly profile: VisionProfile;
  judge(request: GridRequest): Promise<GridAnswer>;
}

export const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    costUsd: a.costUsd + b.costUsd,
  };
}

/** Merges model answers by union: a photo survives if any model picks it. */
export function unionAnswers(labels: readonly string[], models: ModelAnswer[]): GridAnswer {
  const votes: Record<string, number> = {};
  for (const m of models) for (const label of m.picks) votes[label] = (votes[label] ?? 0) + 1;
  return {
    picks: labels.filter((l) => votes[l]),
    votes,
    reviewed: models.some((m) => m.error === undefined),
    models,
    usage: models.reduce((u, m) => addUsage(u, m.usage), NO_USAGE),
  };
}
