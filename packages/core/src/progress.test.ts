import { describe, expect, it } from 'vitest';
import { TERMINAL_STATUSES, progressOf } from './progress.js';

describe('progressOf', () => {
  it("says 'Uploading photos...' while uploading", () => {
    expect(progressOf('uploading', 3, 10)).toEqual({
      phase: 'uploading',
      current_step: 3,
      total_steps: 10,
      percentage: 30,
      message: 'Uploading photos...',
    });
  });

  it("says 'Generating grids...' while generating grids", () => {
    const p = progressOf('grid_generation', 0, 0);
    expect(p.message).toBe('Generating grids...');
    expect(p.phase).toBe('grid_generation');
    expect(p.percentage).toBe(0);
  });

  it("says 'Coarse selection: grid c/t' in the coarse pass", () => {
    const p = progressOf('coarse_pass', 0, 17);
    expect(p.message).toBe('Coarse selection: grid 0/17');
    expect(p.current_step).toBe(0);
    expect(p.total_steps).toBe(17);
    expect(p.percentage).toBe(0);
    expect(progressOf('coarse_pass', 16, 17).message).toBe('Coarse selection: grid 16/17');
  });

  it("says 'Fine selection: grid c/t' in the fine pass", () => {
    expect(progressOf('fine_pass', 1, 4).message).toBe('Fine selection: grid 1/4');
    expect(progressOf('fine_pass', 1, 4).percentage).toBe(25);
  });

  it('names in its message the same grid as current_step / total_steps (the webapp shows both)', () => {
    for (const phase of ['coarse_pass', 'fine_pass'] as const) {
      for (let total = 1; total <= 20; total++) {
        for (let current = 0; current <= total; current++) {
          const p = progressOf(phase, current, total);
          expect(p.message.endsWith(` grid ${p.current_step}/${p.total_steps}`)).toBe(true);
        }
      }
    }
  });

  it('never names a grid beyond the last one', () => {
    expect(progressOf('coarse_pass', 4, 4).message).toBe('Coarse selection: grid 4/4');
    expect(progressOf('fine_pass', 33, 32).message).toBe('Fine selection: grid 32/32');
  });

  it("says 'Complete' at the end, at 100%", () => {
    expect(progressOf('complete', 0, 0)).toEqual({
      phase: 'complete',
      current_step: 0,
      total_steps: 0,
      percentage: 100,
      message: 'Complete',
    });
    expect(progressOf('complete', 5, 5).percentage).toBe(100);
    expect(progressOf('complete', 5, 5).message).toBe('Complete');
  });

  it('computes percentage = current / total × 100', () => {
    expect(progressOf('coarse_pass', 0, 4).percentage).toBe(0);
    expect(progressOf('coarse_pass', 1, 4).percentage).toBe(25);
    expect(progressOf('coarse_pass', 2, 4).percentage).toBe(50);
    expect(progressOf('coarse_pass', 3, 4).percentage).toBe(75);
    expect(progressOf('coarse_pass', 4, 4).percentage).toBe(100);
    expect(progressOf('coarse_pass', 1, 8).percentage).toBeCloseTo(12.5, 5);
    expect(progressOf('coarse_pass', 1, 3).percentage).toBeCloseTo(100 / 3, 1);
    expect(progressOf('fine_pass', 2, 3).percentage).toBeCloseTo(200 / 3, 1);
    for (let total = 1; total <= 60; total++) {
      for (let current = 0; current <= total; current++) {
        const p = progressOf('fine_pass', current, total);
        expect(Math.abs(p.percentage - (100 * current) / total)).toBeLessThanOrEqual(0.05 + 1e-9);
        expect(p.percentage).toBeGreaterThanOrEqual(0);
        expect(p.percentage).toBeLessThanOrEqual(100);
      }
    }
  });

  it('never goes above 100%', () => {
    expect(progressOf('coarse_pass', 7, 5).percentage).toBe(100);
  });

  it('has no steps outside a pass: 0% with total 0', () => {
    expect(progressOf('uploading', 0, 0).percentage).toBe(0);
    expect(progressOf('coarse_pass', 0, 0).percentage).toBe(0);
  });
});

describe('TERMINAL_STATUSES', () => {
  it('are completed, failed and cancelled', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual(['cancelled', 'completed', 'failed']);
  });
});
