#!/usr/bin/env node
/** The worker process: consumes triage jobs until SIGTERM or SIGINT, then drains within its deadline. */
import { setPriority } from 'node:os';
import { pino } from 'pino';
import { RedisUnavailableError } from '@triage/queue';
import { readWorkerSettings } from './config.js';
import { startWorker } from './start.js';

const settings = readWorkerSettings();
const log = pino({ level: settings.logLevel, base: { service: 'triage-worker', pid: process.pid } });

// Image work is batch work: on a machine shared with the API, requests get the CPU first.
try {
  if (settings.nice > 0) setPriority(settings.nice);
} catch (err) {
  log.warn({ err: (err as Error).message, nice: settings.nice }, 'could not lower the worker’s priority');
}

const running = await startWorker(settings, log).catch((err: unknown) => {
  log.fatal({ err }, 'worker could not start');
  // 3: no Redis, as the `triage` command says it; 1: anything else.
  process.exit(err instanceof RedisUnavailableError ? 3 : 1);
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, deadlineMs: settings.shutdownDeadlineMs }, 'draining');
    // A last resort in case a connection hangs: the deadline plus a margin, then out.
    setTimeout(() => process.exit(1), settings.shutdownDeadlineMs + 5000).unref();
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean shutdown');
        process.exit(1);
      },
    );
  });
}
