import { describe, expect, it } from 'vitest';
import { ImageGate } from './gate.js';

/** A build the test finishes by hand. */
function pending(): { promise: Promise<void>; finish(): void } {
  let finish!: () => void;
  const promise = new Promise<void>((resolve) => (finish = resolve));
  return { promise, finish };
}

describe('ImageGate', () => {
  it('lets one build run at a time, the others in the order they asked', async () => {
    const gate = new ImageGate();
    const started: string[] = [];
    const builds = { a: pending(), b: pending(), c: pending() };
    const runs = (['a', 'b', 'c'] as const).map((name) =>
      gate.run(async () => {
        started.push(name);
        await builds[name].promise;
        return name;
      }),
    );
    expect(gate.queued).toBe(2);
    await expect.poll(() => started).toEqual(['a']);
    builds.a.finish();
    expect(await runs[0]).toBe('a');
    await expect.poll(() => started).toEqual(['a', 'b']);
    builds.b.finish();
    builds.c.finish();
    expect(await Promise.all(runs)).toEqual(['a', 'b', 'c']);
    expect(started).toEqual(['a', 'b', 'c']);
    expect(gate.busy).toBe(false);
  });

  it('a build that throws frees the gate for the next', async () => {
    const gate = new ImageGate();
    const first = gate.run(async () => {
      throw new Error('unreadable');
    });
    const second = gate.run(async () => 'built');
    await expect(first).rejects.toThrow('unreadable');
    expect(await second).toBe('built');
    expect(gate.busy).toBe(false);
  });

  it('a step cancelled while waiting leaves the line without ever building; the others keep their turns', async () => {
    const gate = new ImageGate();
    const holder = pending();
    const first = gate.run(() => holder.promise);
    const controller = new AbortController();
    let cancelledBuilt = false;
    const cancelled = gate.run(async () => {
      cancelledBuilt = true;
    }, controller.signal);
    const third = gate.run(async () => 'third');
    controller.abort(new Error('cancelled by request'));
    await expect(cancelled).rejects.toThrow('cancelled by request');
    expect(gate.queued).toBe(1);
    holder.finish();
    await first;
    expect(await third).toBe('third');
    expect(cancelledBuilt).toBe(false);
    expect(gate.busy).toBe(false);
  });

  it('refuses at once when already cancelled', async () => {
    const gate = new ImageGate();
    const controller = new AbortController();
    controller.abort(new Error('stopped'));
    await expect(gate.run(async () => 'never', controller.signal)).rejects.toThrow('stopped');
    expect(gate.busy).toBe(false);
  });

  it('lets a lower rank in first, equal ranks in the order they asked', async () => {
    const gate = new ImageGate();
    const holder = pending();
    const order: string[] = [];
    const first = gate.run(() => holder.promise, undefined, 5);
    const runs = [
      gate.run(async () => void order.push('big-2'), undefined, 2),
      gate.run(async () => void order.push('big-3'), undefined, 3),
      gate.run(async () => void order.push('small-1'), undefined, 1),
      gate.ranked(2).run(async () => void order.push('other-2')),
    ];
    holder.finish();
    await Promise.all([first, ...runs]);
    expect(order).toEqual(['small-1', 'big-2', 'other-2', 'big-3']);
  });
});
