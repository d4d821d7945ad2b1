import { describe, expect, it } from 'vitest';
import { flawsInGroup, jobFlaws, type PhotoSignals } from './flaws.js';
import { selectFinal, type PhotoVerdict } from './ranking.js';

const clean: PhotoSignals = {
  sharpness: 0.7,
  exposure: 1,
  brightness: 0.45,
  clippedBright: 0.01,
  clippedDark: 0.01,
  detail: { sharpness: 0.8, noise: 0.4 },
};

describe('flawsInGroup', () => {
  it('names each flawed copy beside its clean twin, and leaves a moment-apart twin alone', () => {
    const flaws = flawsInGroup([
      clean,
      { ...clean, brightness: 0.47 }, // a moment apart
      { ...clean, sharpness: 0.3, detail: { sharpness: 0.1, noise: 0.3 } }, // defocus
      { ...clean, detail: { sharpness: 0.95, noise: 4 } }, // ISO 6400: reads sharper, is noisy
      { ...clean, brightness: 0.6, clippedBright: 0.2 }, // blown out
      { ...clean, brightness: 0.25 }, // under-exposed
    ]);
    expect(flaws).toEqual([null, null, 'blurred', 'noisy', 'blown highlights', 'too dark']);
  });

  it('catches camera shake at full size when the thumbnail barely shows it', () => {
    const shaken = { ...clean, sharpness: 0.65, detail: { sharpness: 0.05, noise: 0.1 } };
    expect(flawsInGroup([clean, shaken])).toEqual([null, 'blurred']);
  });

  it('of a pair a stop apart, blames the one further from the mid-tones', () => {
    expect(
      flawsInGroup([
        { ...clean, brightness: 0.16 },
        { ...clean, brightness: 0.23 },
      ]),
    ).toEqual(['too dark', null]);
    expect(
      flawsInGroup([
        { ...clean, brightness: 0.45 },
        { ...clean, brightness: 0.75 },
      ]),
    ).toEqual([null, 'too bright']);
    expect(
      flawsInGroup([
        { ...clean, brightness: 0.45 },
        { ...clean, brightness: 0.5 },
      ]),
    ).toEqual([null, null]);
  });

  it('judges a lone photo by fixed limits only: noise at full size and a bad exposure', () => {
    expect(flawsInGroup([{ ...clean, sharpness: 0.05 }])).toEqual([null]);
    expect(flawsInGroup([{ ...clean, detail: { sharpness: 0.9, noise: 2.5 } }])).toEqual(['noisy']);
    expect(flawsInGroup([{ ...clean, exposure: 0.2 }])).toEqual(['badly exposed']);
  });

  it('job-wide: judges each group on its own, lone photos alone', () => {
    const groups = [0, 1, 0, null];
    const coarse = [clean, { ...clean, sharpness: 0.1 }, { ...clean, sharpness: 0.2 }, null];
    expect(jobFlaws(groups, coarse, [null, null, null, null])).toEqual([null, null, 'blurred', null]);
  });
});

describe('selectFinal with near-duplicate groups', () => {
  const verdict = (index: number, fineVotes: number | null, flawed = false): PhotoVerdict => ({
    index,
    failed: false,
    quality: 0.5,
    coarseVotes: 1,
    coarseReviewed: true,
    fineVotes,
    fineReviewed: true,
    flawed,
  });

  it('keeps one photo per group by default, more when allowed', () => {
    const verdicts = [verdict(0, 1), verdict(1, 1), verdict(2, 1), verdict(3, 1)];
    const groups = [0, 0, 2, 0];
    expect(selectFinal(verdicts, 4, 2, { groups, perGroup: 1 }).selected).toEqual([0, 2]);
    expect(selectFinal(verdicts, 4, 2, { groups, perGroup: 2 }).selected).toEqual([0, 1, 2]);
  });

  it('never lets a flawed pick displace its clean twin, even one the model did not pick', () => {
    const verdicts = [verdict(0, 1, true), verdict(1, 0), verdict(2, 1)];
    // 2 ranks first (a clean pick beats a flawed one with the same votes); 0's place goes to its twin 1.
    expect(selectFinal(verdicts, 2, 2, { groups: [0, 0, 2], perGroup: 1 }).selected).toEqual([2, 1]);
    expect(selectFinal(verdicts, 2, 2).selected).toEqual([2, 0]);
  });
});
