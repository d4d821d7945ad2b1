/**
 * How a worker process is started, in one place for every spawn site (the `triage` command, `triage start`,
 * the benchmark) and the README's command. Each setting is justified by a measurement in docs/benchmarks.md
 * ("Memory settings of the worker process"); none of them changes behaviour, only where memory goes.
 */

/**
 * Node flags of the worker process.
 * - `--max-semi-space-size=1` (MB): V8's young generation defaults to 16 MB semi-spaces on this machine,
 *   which the worker's short-lived Buffers fill before each scavenge; sharp's output Buffers are only freed
 *   when their JS objects are collected, so frequent small scavenges also return libvips memory sooner.
 * - `--liftoff-only`: WebAssembly (libheif-js, the HEIC decoder, in a short-lived thread) runs on V8's baseline
 *   compiler only. Optimising it costs compile memory on every thread start: a HEIC peaked 17 MB higher with
 *   its thumbnail item (taken 30 % slower) and 8-13 MB higher with a full 12 MP decode (taken ~20 % faster).
 *   No other WebAssembly runs in the worker.
 * - `--expose-gc`: lets the HEIC decoder collect the main thread's garbage before it starts its thread (see
 *   decodeHeicInThread): the thread adds 19–68 MB while it runs, so what the process holds at that moment sets
 *   the job's peak. In the traced 2,000-photo runs the peak came at a full HEIC decode, about 65 MB above a
 *   process whose dead Buffers awaited the collector by chance (105–135 MB).
 * (`--max-old-space-size` was measured too and left out: the old generation stays ~16 MB, a cap changed nothing.)
 */
export const WORKER_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1', '--liftoff-only', '--expose-gc'];

/**
 * Node flags of the API process. `--max-semi-space-size=2` (MB): with V8's default 16 MB semi-spaces the
 * multipart and ZIP streams' short-lived Buffers pile up between scavenges; at 2 MB a 200 × 8 MB upload peaks
 * at 105 MB instead of 159, a 200-file ZIP at 108 instead of 144, for about 6 % of the status route's
 * throughput (docs/benchmarks.md). 4 MB was measured too (2026-11-29, after auto-pipelining): status route
 * 10,400–11,900 requests/s instead of 9,800–10,700, but the upload peaked at 129 MB and the ZIP at 124 MB, over
 * or at the 128 MB target: not taken.
 */
export const API_NODE_ARGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * How much lower the worker's CPU priority is than the API's (nice): image work is batch work, a status
 * request is someone waiting. Measured: status p99 under load 46 → 8 ms (1 worker), no longer job times.
 */
export const WORKER_NICE = 10;

/**
 * glibc malloc settings of the worker process (read by glibc when the process starts, so they are set in
 * its environment by whoever spawns it; values already in the environment win).
 * - `MALLOC_ARENA_MAX=2`: fewer per-thread arenas, less fragmentation.
 * - `MALLOC_MMAP_THRESHOLD_=131072`: every allocation of 128 KB or more (libjpeg's coefficient buffers of a
 *   progressive JPEG, libvips' region buffers, libheif's planes) gets its own mapping that goes back to the OS
 *   on free. Setting it also turns off glibc's dynamic threshold, which otherwise rises to 32 MB after the
 *   first large free and lets the next decodes' buffers fragment the heap.
 * - `MALLOC_TRIM_THRESHOLD_=131072`: free memory at the top of the heap is returned above 128 KB, not 64 MB+.
 */
export const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** `env` with the worker's malloc settings added where `env` does not set them. */
export function workerEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  return { ...WORKER_MALLOC_ENV, ...env };
}
