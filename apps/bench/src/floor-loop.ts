/**
 * The reference floor's process: thumbnails the given files with bare sharp, one at a time, by file path,
 * and prints one JSON line with the time per file and its own peak RSS (VmHWM, from the kernel).
 * Usage: node floor-loop.js <size> <file>...
 */
import { bareThumbnail } from '@triage/images';
import { memoryOf } from './proc.js';

const [sizeArg, ...paths] = process.argv.slice(2);
const size = Number(sizeArg);
const results: { path: string; ms: number; ok: boolean }[] = [];
for (const path of paths) {
  const started = performance.now();
  let ok = true;
  try {
    await bareThumbnail(path, size);
  } catch {
    ok = false;
  }
  results.push({ path, ms: performance.now() - started, ok });
}
process.stdout.write(`${JSON.stringify({ results, hwm: memoryOf('self')?.hwm ?? 0 })}\n`);
