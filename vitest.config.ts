import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    // Suites that start worker processes and Redis servers are heavy on a 2-core machine: one file at a time.
    fileParallelism: false,
    // Bounds that only a stuck test reaches: on a loaded machine generating a sample set alone has taken
    // over a minute. Tests wait for the events they are about, never for a time.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
