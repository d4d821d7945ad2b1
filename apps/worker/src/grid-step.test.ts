/** The grid step's pieces with fakes: hints from the job-wide groups, verdicts, the record. */
import { describe, expect, it } from 'vitest';
import { fitGeometry, labelsFor } from '@triage/core';
import type { QualitySignals, Thumbnail } from '@triage/images';
import type { CoarseVerdict } from '@triage/queue';
import type { GridAnswer } from '@triage/vision';
import { buildRecord, buildVerdicts, sceneHints, type ReadGrid } from './grid-step.js';
import type { PhotoRead } from './photos.js';

const signals: QualitySignals = {
  sharpness: 0.7,
  noise: 0.3,
  brightness: 0.45,
  clippedDark: 0.01,
  clippedBright: 0.01,
  contrast: 0.2,
  exposure: 1,
  hash: '0123456789abcdef',
  layout: 'ab'.repeat(48),
  signature: 'cd'.repeat(256),
  quality: 0.8,
};

function thumb(over: Partial<QualitySignals> = {}, detail?: Thumbnail['detail']): Thumbnail {
  return {
    size: 4,
    rgb: Buffer.alloc(48),
    signals: { ...signals, ...over },
    source: { width: 100, height: 100, format: 'jpeg' },
    ...(detail && { detail }),
  };
}

function read(pass: 'coarse' | 'fine', indexes: number[], thumbs: (Thumbnail | null)[]): ReadGrid {
  const geometry = fitGeometry({ minThumb: 84, rows: 2, cols: 2 } as never, indexes.length);
  const reads: PhotoRead[] = thumbs.map((t) =>
    t
      ? { thumb: t, source: 'original', bytes: 10, ms: 2 }
      : { thumb: null, reason: 'empty file', source: null, bytes: 0, ms: 1 },
  );
  return {
    pass,
    grid: 0,
    gridCount: 1,
    start: 0,
    indexes,
    labels: labelsFor(indexes.length, geometry.cols),
    geometry,
    reads,
    failures: thumbs.flatMap((t, i) => (t ? [] : [{ index: indexes[i]!, reason: 'empty file' }])),
  };
}

const answer = (votes: Record<string, number>): GridAnswer => ({
  picks: Object.keys(votes),
  votes,
  reviewed: true,
  models: [],
  usage: { inputTokens: 5, outputTokens: 1, costUsd: 0.1 },
});

describe('buildVerdicts', () => {
  it('records the coarse signals grouping needs, never a vote for a placeholder', () => {
    const r = read('coarse', [4, 5, 6], [thumb(), null, thumb({ sharpness: 0.2 })]);
    const { verdicts, votes } = buildVerdicts(r, answer({ A1: 1, A2: 1 }));
    expect(votes).toEqual({ 4: 1 });
    const v = verdicts.get(4) as CoarseVerdict;
    expect(v).toMatchObject({
      votes: 1,
      reviewed: true,
      sharpness: 0.7,
      noise: 0.3,
      clippedBright: 0.01,
      layout: signals.layout,
      signature: signals.signature,
    });
    expect(verdicts.get(5)).toEqual({ votes: 0, reviewed: true, quality: null, failure: 'empty file' });
  });

  it('records the full-size detail in the fine pass, and a photo unread now stays in unreviewed', () => {
    const r = read('fine', [1, 2], [thumb({}, { sharpness: 0.8, noise: 3 }), null]);
    const { verdicts } = buildVerdicts(r, answer({ A1: 1 }));
    expect(verdicts.get(1)).toMatchObject({ votes: 1, reviewed: true, detail: { sharpness: 0.8, noise: 3 } });
    expect(verdicts.get(1)).not.toHaveProperty('signature');
    expect(verdicts.get(2)).toMatchObject({ votes: 0, reviewed: false });
  });
});

describe('buildRecord', () => {
  it('sums bytes and sources and keeps the answer’s usage', () => {
    const r = read('coarse', [0, 1], [thumb(), null]);
    const record = buildRecord(r, { answer: answer({ A1: 1 }), asked: 1 }, { 0: 1 }, 12.6);
    expect(record).toMatchObject({
      pass: 'coarse',
      grid: 0,
      photos: [0, 1],
      votes: { 0: 1 },
      asked: 1,
      bytesRead: 10,
      sources: { original: 1 },
      durationMs: 13,
      readMs: [2, 1],
    });
    expect(record.failures).toEqual([{ index: 1, reason: 'empty file' }]);
  });
});

describe('sceneHints', () => {
  it('names the cells of one scene and judges each against its whole group, mates outside the grid included', async () => {
    // Photos 0..4: 0, 2 and 4 one scene (4 not in this grid: it did not survive the coarse pass), 1 alone.
    const groups = [0, 1, 0, 3, 0];
    const coarse = new Map<number, CoarseVerdict>([
      [
        4,
        { votes: 0, reviewed: true, quality: 0.5, sharpness: 0.7, exposure: 1, brightness: 0.45, clippedBright: 0.01 },
      ],
    ]);
    const store = { groups: async () => groups, coarseVerdictsOf: async () => coarse };
    const r = read(
      'fine',
      [0, 1, 2],
      [thumb({}, { sharpness: 0.8, noise: 0.3 }), thumb(), thumb({}, { sharpness: 0.9, noise: 5 })],
    );
    const hints = await sceneHints(store, 't', r);
    expect(hints!.sameScene).toEqual([['A1', 'B1']]);
    expect(hints!.cells).toEqual({ A1: { flaw: null }, A2: { flaw: null }, B1: { flaw: 'noisy' } });
  });

  it('gives no hints before the groups exist', async () => {
    const store = { groups: async () => null, coarseVerdictsOf: async () => new Map() };
    expect(await sceneHints(store as never, 't', read('fine', [0], [thumb()]))).toBeUndefined();
  });
});
