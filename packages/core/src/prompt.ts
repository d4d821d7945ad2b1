/**
 * What the vision model is told about one grid, and how its answer is read back.
 * The system prompt is identical for every grid (so it can be cached); the per-grid text states the layout.
 */
import { describeCriteria } from './target.js';
import type { Pass } from './geometry.js';

export interface GridQuestion {
  pass: Pass;
  rows: number;
  cols: number;
  /** Labels present in this grid, in cell order. */
  labels: readonly string[];
  /** About how many cells to pick. */
  pick: number;
  /** `standout`, `quality`, or the user's own words. */
  criteria: string;
  /** Sets of cells showing the same scene, each of two or more labels. */
  sameScene?: readonly (readonly string[])[];
}

export const SYSTEM_PROMPT =
  'You are a photo editor triaging a large set of photos. You are shown a grid of labelled thumbnails and pick ' +
  'the best ones. You answer only with the labels of the cells you pick, exactly as printed under each cell.';

export function buildPrompt(question: GridQuestion): string {
  const { rows, cols, labels, pick, pass } = question;
  const first = labels[0] ?? 'A1';
  const last = labels[labels.length - 1] ?? first;
  const lines = [
    `This grid has ${rows} row${rows === 1 ? '' : 's'} × ${cols} column${cols === 1 ? '' : 's'} of photos, ` +
      `${labels.length} in all, labelled from ${first} to ${last}: the row letter, then the column number, ` +
      `filled row by row. Each label is printed under its photo; row letters and column numbers are also on the edges.`,
    `Pick about ${pick} of them: ${describeCriteria(question.criteria)}.`,
    'From a burst or a group of near-duplicates, pick only the single best one.',
    ...(question.sameScene?.length
      ? [
          `These cells show the same scene, side by side: ${question.sameScene.map((set) => set.join(', ')).join('; ')}. Pick at most one of each set: the sharpest, best exposed.`,
        ]
      : []),
    'Skip obviously flawed shots: blurred, badly exposed (too dark or blown out), dull.',
    'Judge each photo by its potential even at thumbnail size.',
  ];
  if (pass === 'fine') {
    lines.push('These photos already passed a first screening: look harder and be more selective.');
  }
  lines.push('A cell marked with a cross could not be read: never pick it.');
  lines.push(`Answer with the labels you pick, only labels from ${first} to ${last}.`);
  return lines.join('\n');
}

/** JSON schema for structured output: the picks can only be labels present in this grid. */
export function answerSchema(labels: readonly string[]): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      picks: { type: 'array', items: { type: 'string', enum: [...labels] } },
    },
    required: ['picks'],
    additionalProperties: false,
  };
}

export interface ParsedAnswer {
  /** Valid labels, each once, in the order given. */
  picks: string[];
  /** Anything that looked like a label but is not in this grid. */
  unknown: string[];
}

/**
 * Reads the model's answer defensively: a structured `{picks: [...]}` object, its JSON text, or free text
 * mentioning labels. Only labels present in this grid are kept; case and spacing are forgiven.
 */
export function parseAnswer(answer: unknown, labels: readonly string[]): ParsedAnswer {
  const valid = new Set(labels);
  const candidates = candidatesOf(answer);
  const picks: string[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const raw of candidates) {
    const label = raw.replace(/\s+/g, '').toUpperCase();
    if (seen.has(label)) continue;
    seen.add(label);
    (valid.has(label) ? picks : unknown).push(label);
  }
  return { picks, unknown };
}

const LABEL_PATTERN = /\b([A-Za-z]{1,2})\s?(\d{1,2})\b/g;

function candidatesOf(answer: unknown): string[] {
  if (answer && typeof answer === 'object' && !Array.isArray(answer)) {
    const picks = (answer as { picks?: unknown }).picks;
    return Array.isArray(picks) ? picks.filter((p): p is string => typeof p === 'string') : [];
  }
  if (Array.isArray(answer)) return answer.filter((p): p is string => typeof p === 'string');
  if (typeof answer !== 'string') return [];
  const text = answer.trim();
  const json = extractJson(text);
  if (json !== undefined) return candidatesOf(json);
  return [...text.matchAll(LABEL_PATTERN)].map((m) => `${m[1]}${m[2]}`);
}

/** The first JSON object or array in a text (models sometimes wrap it in prose or a code fence). */
function extractJson(text: string): unknown {
  for (const [open, close] of [
    ['{', '}'],
    ['[', ']'],
  ] as const) {
    const start = text.indexOf(open);
    const end = text.lastIndexOf(close);
    if (start >= 0 && end > start) {
      try {
        return JSON.parse(text.slice(start, end + 1));
      } catch {
        // not JSON after all: fall through to the label scan
      }
    }
  }
  return undefined;
}
