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

export { sharp };
export type { OutputInfo, Sharp } from 'sharp';
