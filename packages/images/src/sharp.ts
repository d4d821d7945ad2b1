/**
 * The only module that imports sharp, so its process-wide settings are applied exactly once, before any
 * pipeline runs, and every input goes through the same guards.
 */
import sharp, { type SharpOptions } from 'sharp';

// libvips' operation cache keeps decoded images around for reuse that a one-photo-at-a-time worker never
// gets; it only inflates RSS. One libvips thread per pipeline keeps peak memory predictable on small boxes.
sharp.cache(false);
sharp.concurrency(1);

import { MAX_INPUT_PIXELS } from './limits.js';

export { MAX_INPUT_PIXELS };

/** Options for every sharp input: refuse decompression bombs, and fail on corrupt data instead of warning. */
export const INPUT_OPTIONS = { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' } as const satisfies SharpOptions;

/** Pipelines waiting (`queue`) and running (`process`) in this process. */
export function sharpCounters(): { queue: number; process: number } {
  return sharp.counters();
}

/**
 * Pipelines waiting or running, as two reads back to back agree. counters() reads its two atomics one after
 * the other while a libuv thread may move a task from `queue` to `process` in between, so a single read can
 * count one pipeline twice; a real second pipeline lasts milliseconds and shows in both reads, a torn read
 * does not.
 */
export function sharpInFlight(): number {
  const read = () => {
    const { queue, process } = sharp.counters();
    return queue + process;
  };
  return Math.min(read(), read());
}

export { sharp };
export type { OutputInfo, Sharp } from 'sharp';
