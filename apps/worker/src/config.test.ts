import { describe, expect, it } from 'vitest';
import { readWorkerSettings } from './config.js';

describe('worker settings', () => {
  it('takes four grid steps at once by default, or WORKER_CONCURRENCY from 1 to 32', () => {
    expect(readWorkerSettings({}).concurrency).toBe(4);
    expect(readWorkerSettings({ WORKER_CONCURRENCY: '1' }).concurrency).toBe(1);
    expect(readWorkerSettings({ WORKER_CONCURRENCY: ' 32 ' }).concurrency).toBe(32);
  });

  it('refuses a WORKER_CONCURRENCY that is not a whole number from 1 to 32, naming it and the value', () => {
    for (const bad of ['0', '33', '2.5', 'four', '-1']) {
      expect(() => readWorkerSettings({ WORKER_CONCURRENCY: bad })).toThrow(
        `WORKER_CONCURRENCY must be a whole number from 1 to 32, got "${bad}"`,
      );
    }
  });
});
