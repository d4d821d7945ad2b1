import { describe, expect, it } from 'vitest';
import type { TriageStatus } from '@triage/queue';
import { fitLine, progressLine, ProgressView } from './progress.js';

/** A terminal of `columns` cells that records what is written. */
function terminal(columns: number | undefined, isTTY = true) {
  const writes: string[] = [];
  const out = { isTTY, columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { out, writes, text: () => writes.join('') };
}

function status(over: Partial<TriageStatus>): TriageStatus {
  return {
    job_id: 'j',
    status: 'processing',
    progress: null,
    total_input: 2000,
    pass1_survivors: 0,
    final_selected: 0,
    error_message: null,
    created_at: '',
    completed_at: null,
    target: '10%',
    criteria: 'standout',
    passes: 2,
    photos_failed: 0,
    grids_done: 3,
    grids_total: 49,
    tokens: { input: 0, output: 0 },
    cost_usd: 0,
    handoff: null,
    ...over,
  };
}

const coarse = status({
  progress: {
    phase: 'coarse_pass',
    current_step: 3,
    total_steps: 17,
    percentage: 17.6,
    message: 'Coarse selection: grid 3/17',
  },
});

/** What each redraw leaves on the line. */
// eslint-disable-next-line no-control-regex -- each redraw starts with the erase-line escape (ESC [2K)
const drawnLines = (text: string) => text.split(/\r\x1b\[2K|\n/).filter((l) => l.length > 0);

describe('the live progress line', () => {
  it('never reaches the last column, whatever the width: the bar narrows, then goes, then the text is cut', () => {
    for (let columns = 2; columns <= 120; columns++) {
      const t = terminal(columns);
      const view = new ProgressView(t.out);
      view.update(coarse);
      view.update(status({ status: 'completed', grids_done: 49 }));
      for (const line of drawnLines(t.text()))
        expect([...line].length, `${columns} columns: ${line}`).toBeLessThan(columns);
    }
  });

  it('keeps the whole message on a normal terminal, and the message before the bar on a narrow one', () => {
    expect(progressLine(0.25, ' 25%  Coarse selection: grid 3/17  4s', 80)).toBe(
      '[#######.....................]  25%  Coarse selection: grid 3/17  4s',
    );
    expect(progressLine(0.25, ' 25%  Coarse selection: grid 3/17  4s', 40)).toBe(
      ' 25%  Coarse selection: grid 3/17  4s',
    );
    expect(progressLine(0.25, ' 25%  Coarse selection: grid 3/17  4s', 20)).toBe(' 25%  Coarse selec…');
    expect(fitLine('abc', undefined)).toBe('abc');
  });

  it('prints the final line once: nothing is drawn after done()', () => {
    const t = terminal(80);
    const view = new ProgressView(t.out);
    const completed = status({ status: 'completed', grids_done: 49 });
    view.update(coarse);
    view.update(completed);
    view.done();
    const before = t.text();
    view.update(completed); // a late answer of an overlapping check
    view.done();
    expect(t.text()).toBe(before);
    expect(drawnLines(t.text()).filter((l) => l.includes('completed'))).toHaveLength(1);
    expect(t.text().endsWith('\n')).toBe(true);
  });

  it('off a terminal, writes one plain line per change, never cut', () => {
    const t = terminal(undefined, false);
    const view = new ProgressView(t.out);
    view.update(coarse);
    view.update(coarse);
    view.update(status({ status: 'completed', grids_done: 49 }));
    view.done();
    const lines = t.text().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[#+\.+\]\s+6% {2}Coarse selection: grid 3\/17 {2}\d+s$/);
    expect(lines[1]).toMatch(/100% {2}completed {2}\d+s$/);
  });
});
