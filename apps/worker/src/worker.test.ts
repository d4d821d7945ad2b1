/** The worker's pure steps with plain values: the grid jobs a pass queues, and when a failed job fails its triage. */
import { describe, expect, it } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import { GRID_JOB, gridJobId } from '@triage/queue';
import { failedForGood, gridJobs, TriageCancelledError } from './worker.js';

const parent = { id: 't1', queue: 'bull:triage' };

describe('the grid jobs of a pass', () => {
  it('are children of the triage job, taking turns in order from the user’s fair turn', () => {
    const jobs = gridJobs('t1', parent, { pass: 'coarse', grids: [3, 4, 5] }, 40);
    expect(jobs.map((j) => j.opts.priority)).toEqual([40, 41, 42]);
    expect(jobs[0]).toMatchObject({
      name: GRID_JOB,
      data: { triageId: 't1', pass: 'coarse', grid: 3 },
      opts: { jobId: gridJobId('t1', 'coarse', 3), parent, failParentOnFailure: true, removeOnComplete: true },
    });
  });

  it('keep BullMQ’s priorities: at least 1 (0 would mean none), at most below its limit', () => {
    expect(gridJobs('t1', parent, { pass: 'fine', grids: [0, 1] }, 0).map((j) => j.opts.priority)).toEqual([1, 2]);
    expect(gridJobs('t1', parent, { pass: 'fine', grids: [0, 1] }, 1_999_999).map((j) => j.opts.priority)).toEqual([
      1_999_999, 2_000_000,
    ]);
    expect(gridJobs('t1', parent, { pass: 'fine', grids: [0] }, 5_000_000)[0]!.opts.priority).toBe(2_000_000);
  });
});

describe('a failed job', () => {
  it('fails its triage once its attempts are spent, or at once when unrecoverable (a cancel too: it is never retried)', () => {
    const err = new Error('boom');
    expect(failedForGood({ attemptsMade: 1, opts: { attempts: 3 } }, err)).toBe(false);
    expect(failedForGood({ attemptsMade: 3, opts: { attempts: 3 } }, err)).toBe(true);
    expect(failedForGood({ attemptsMade: 1, opts: {} }, err)).toBe(true);
    expect(failedForGood({ attemptsMade: 1, opts: { attempts: 3 } }, new UnrecoverableError('gone'))).toBe(true);
    expect(failedForGood({ attemptsMade: 1, opts: { attempts: 3 } }, new TriageCancelledError())).toBe(true);
  });
});
