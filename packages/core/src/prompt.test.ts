import { describe, expect, it } from 'vitest';
import { labelsFor } from './geometry.js';
import { SYSTEM_PROMPT, answerSchema, buildPrompt, parseAnswer, type GridQuestion } from './prompt.js';
import { CRITERIA_PRESETS } from './target.js';

const coarseLabels = labelsFor(120, 12); // A1 .. J12
const fineLabels = labelsFor(16, 4); // A1 .. D4

function question(overrides: Partial<GridQuestion> = {}): GridQuestion {
  return { pass: 'coarse', rows: 10, cols: 12, labels: coarseLabels, pick: 30, criteria: 'standout', ...overrides };
}

describe('buildPrompt', () => {
  it('states the layout, the label range and the pick count', () => {
    const text = buildPrompt(question());
    expect(text).toContain('10 rows × 12 columns');
    expect(text).toContain('120 in all');
    expect(text).toContain('from A1 to J12');
    expect(text).toContain('Pick about 30 of them');
    expect(text).toMatch(/row letter, then the column number/);
    expect(text).toMatch(/row by row/);
  });

  it('names the cells that show the same scene, and says nothing of scenes when there are none', () => {
    const text = buildPrompt(
      question({
        pass: 'fine',
        rows: 4,
        cols: 4,
        labels: fineLabels,
        pick: 4,
        sameScene: [
          ['A1', 'A2', 'A3'],
          ['B4', 'C1'],
        ],
      }),
    );
    expect(text).toContain('These cells show the same scene, side by side: A1, A2, A3; B4, C1.');
    expect(text).toContain('Pick at most one of each set');
    expect(buildPrompt(question())).not.toContain('same scene');
  });

  it('states the first and last label of a partial grid', () => {
    const labels = labelsFor(13, 12);
    const text = buildPrompt(question({ rows: 2, cols: 12, labels, pick: 3 }));
    expect(text).toContain('2 rows × 12 columns');
    expect(text).toContain('13 in all');
    expect(text).toContain('from A1 to B1');
    expect(text).toContain('Pick about 3 of them');
    expect(text).toContain('only labels from A1 to B1');
  });

  it('uses the singular for one row or one column', () => {
    const text = buildPrompt(question({ rows: 1, cols: 1, labels: ['A1'], pick: 1 }));
    expect(text).toContain('1 row × 1 column of photos');
    expect(text).toContain('from A1 to A1');
  });

  it('gives the standout description', () => {
    const text = buildPrompt(question({ criteria: 'standout' }));
    expect(text).toContain(`Pick about 30 of them: ${CRITERIA_PRESETS.standout}.`);
    expect(text).toContain('eye-catching');
  });

  it('gives the quality description', () => {
    const text = buildPrompt(question({ criteria: 'quality' }));
    expect(text).toContain(`Pick about 30 of them: ${CRITERIA_PRESETS.quality}.`);
    expect(text).toContain('technical and aesthetic excellence');
    expect(text).not.toContain(CRITERIA_PRESETS.standout);
  });

  it('uses free-text criteria verbatim', () => {
    const criteria = 'Kids laughing; "golden hour" — no selfies!';
    const text = buildPrompt(question({ criteria }));
    expect(text).toContain(`Pick about 30 of them: ${criteria}.`);
    expect(text).not.toContain(CRITERIA_PRESETS.standout);
  });

  it('uses free-text criteria verbatim even when they name an Object.prototype member', () => {
    const text = buildPrompt(question({ criteria: 'constructor' }));
    expect(text).toContain('Pick about 30 of them: constructor.');
    expect(text).not.toContain('[native code]');
  });

  it('states the burst, flawed-shot and potential rules', () => {
    const text = buildPrompt(question());
    expect(text).toMatch(/burst/);
    expect(text).toMatch(/near-duplicates/);
    expect(text).toMatch(/only the single best one/);
    expect(text).toMatch(/blurred/);
    expect(text).toMatch(/badly exposed/);
    expect(text).toMatch(/dull/);
    expect(text).toMatch(/potential even at thumbnail size/);
  });

  it('makes the fine prompt look harder and be more selective, the coarse one not', () => {
    const coarse = buildPrompt(question());
    const fine = buildPrompt({ pass: 'fine', rows: 4, cols: 4, labels: fineLabels, pick: 6, criteria: 'standout' });
    expect(fine).toMatch(/look harder/);
    expect(fine).toMatch(/more selective/);
    expect(fine).toMatch(/first screening/);
    expect(coarse).not.toMatch(/look harder/);
    expect(coarse).not.toMatch(/more selective/);
    expect(fine).toContain('4 rows × 4 columns');
    expect(fine).toContain('from A1 to D4');
    expect(fine).toContain('Pick about 6 of them');
  });

  it('is the same for the same question (deterministic)', () => {
    expect(buildPrompt(question())).toBe(buildPrompt(question()));
  });
});

describe('SYSTEM_PROMPT', () => {
  it('is a constant that says nothing grid-specific', () => {
    expect(typeof SYSTEM_PROMPT).toBe('string');
    expect(SYSTEM_PROMPT.length).toBeGreaterThan(50);
    expect(SYSTEM_PROMPT).toMatch(/photo editor/);
    expect(SYSTEM_PROMPT).toMatch(/labels/);
    expect(SYSTEM_PROMPT).not.toMatch(/\d+ rows?/);
    expect(SYSTEM_PROMPT).not.toContain('A1');
  });
});

describe('answerSchema', () => {
  it('allows only the labels of this grid, in an object with no other property', () => {
    const schema = answerSchema(fineLabels);
    expect(schema).toEqual({
      type: 'object',
      properties: { picks: { type: 'array', items: { type: 'string', enum: fineLabels } } },
      required: ['picks'],
      additionalProperties: false,
    });
  });

  it('copies the labels rather than sharing the caller array', () => {
    const labels = ['A1', 'A2'];
    const schema = answerSchema(labels);
    labels.push('A3');
    const items = (schema.properties as { picks: { items: { enum: string[] } } }).picks.items;
    expect(items.enum).toEqual(['A1', 'A2']);
  });

  it('follows the grid: a partial grid lists only its labels', () => {
    const labels = labelsFor(13, 12);
    const items = (answerSchema(labels).properties as { picks: { items: { enum: string[] } } }).picks.items;
    expect(items.enum).toHaveLength(13);
    expect(items.enum).toContain('B1');
    expect(items.enum).not.toContain('B2');
  });
});

describe('parseAnswer', () => {
  it('reads a structured object', () => {
    expect(parseAnswer({ picks: ['A1', 'B3', 'J12'] }, coarseLabels)).toEqual({
      picks: ['A1', 'B3', 'J12'],
      unknown: [],
    });
  });

  it('reads a bare array', () => {
    expect(parseAnswer(['C2', 'A1'], coarseLabels)).toEqual({ picks: ['C2', 'A1'], unknown: [] });
  });

  it('reads JSON text', () => {
    expect(parseAnswer('{"picks": ["A1", "B2"]}', coarseLabels)).toEqual({ picks: ['A1', 'B2'], unknown: [] });
    expect(parseAnswer('["D4"]', fineLabels)).toEqual({ picks: ['D4'], unknown: [] });
  });

  it('reads fenced JSON inside prose', () => {
    const text = 'Here are my picks:\n```json\n{"picks": ["A3", "c10", "J12"]}\n```\nThese stand out most.';
    expect(parseAnswer(text, coarseLabels)).toEqual({ picks: ['A3', 'C10', 'J12'], unknown: [] });
  });

  it('reads free text, forgiving case and spacing', () => {
    expect(parseAnswer('I pick A1, b3 and C 12', coarseLabels)).toEqual({ picks: ['A1', 'B3', 'C12'], unknown: [] });
  });

  it('normalises case and spaces in structured answers too', () => {
    expect(parseAnswer({ picks: ['a1', ' b 2 '] }, coarseLabels).picks).toEqual(['A1', 'B2']);
  });

  it('removes duplicates, keeping the first order', () => {
    expect(parseAnswer({ picks: ['B2', 'A1', 'b2', 'A1', 'B 2'] }, coarseLabels)).toEqual({
      picks: ['B2', 'A1'],
      unknown: [],
    });
    expect(parseAnswer('A1, A1, a1 and B2', coarseLabels).picks).toEqual(['A1', 'B2']);
  });

  it('reports labels not in the grid as unknown and never picks them', () => {
    const answer = parseAnswer({ picks: ['A1', 'E1', 'A5', 'D4', 'E1'] }, fineLabels);
    expect(answer.picks).toEqual(['A1', 'D4']);
    expect(answer.unknown).toEqual(['E1', 'A5']);
    const free = parseAnswer('My picks: A1, K1 and J13.', coarseLabels);
    expect(free.picks).toEqual(['A1']);
    expect(free.unknown).toEqual(expect.arrayContaining(['K1', 'J13']));
    for (const u of free.unknown) expect(coarseLabels).not.toContain(u);
  });

  it('never picks a label absent from a partial grid', () => {
    const labels = labelsFor(13, 12); // A1..A12, B1
    const answer = parseAnswer({ picks: ['B1', 'B2', 'A12'] }, labels);
    expect(answer.picks).toEqual(['B1', 'A12']);
    expect(answer.unknown).toEqual(['B2']);
  });

  it('reads labels of rows beyond Z', () => {
    const labels = labelsFor(28 * 4, 4);
    expect(parseAnswer('AA1 and ab4', labels).picks).toEqual(['AA1', 'AB4']);
  });

  it('returns nothing for garbage', () => {
    const empty = { picks: [], unknown: [] };
    for (const garbage of [
      null,
      undefined,
      42,
      true,
      '',
      'no idea',
      '{}',
      '{"picks": "A1"}',
      { picks: [1, 2] },
      { selected: ['A1'] },
      '[1, 2, 3]',
    ]) {
      expect(parseAnswer(garbage, coarseLabels), JSON.stringify(garbage)).toEqual(empty);
    }
  });

  it('ignores non-string items in a structured answer', () => {
    expect(parseAnswer({ picks: ['A1', 7, null, { x: 1 }, 'B1'] }, coarseLabels)).toEqual({
      picks: ['A1', 'B1'],
      unknown: [],
    });
  });

  it('falls back to scanning text whose braces are not JSON', () => {
    expect(parseAnswer('{A1, B2}', coarseLabels).picks).toEqual(['A1', 'B2']);
    expect(parseAnswer('I pick [A1] and [C3]', coarseLabels).picks).toEqual(['A1', 'C3']);
  });

  it('does not read labels out of longer numbers or words', () => {
    expect(parseAnswer('photo A123 and IMG4567', coarseLabels).picks).toEqual([]);
  });
});
