/**
 * The reference floor: a separate, bare Node process (MALLOC_ARENA_MAX=2, same sharp settings as the
 * worker) that thumbnails the corpus with sharp one file at a time, at the coarse cell's size. It is what a
 * full decode costs at best; the worker is measured against it.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CorpusFile } from './corpus.js';
import { MemorySampler } from './proc.js';

export interface FloorResult {
  size: number;
  /** Files sharp could read (HEIC cannot be: sharp's libheif has no HEVC decoder). */
  files: number;
  unreadable: number;
  msPerPhoto: number;
  /** By kind of file, over the readable ones. */
  msBy: Record<string, number>;
  /** Each readable file's time, by path. */
  msByPath: Record<string, number>;
  peakRss: number;
}

export async function runFloor(files: readonly CorpusFile[], size: number): Promise<FloorResult> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'floor-loop.js');
  const child = spawn(process.execPath, [script, String(size), ...files.map((f) => f.path)], {
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const sampler = new MemorySampler(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  sampler.stop();
  if (code !== 0) throw new Error(`floor process exited with ${code}`);
  const { results, hwm } = JSON.parse(out) as { results: { path: string; ms: number; ok: boolean }[]; hwm: number };
  const byPath = new Map(files.map((f) => [f.path, f]));
  const ok = results.filter((r) => r.ok);
  const groups = new Map<string, number[]>();
  for (const r of ok) {
    const f = byPath.get(r.path)!;
    const key = f.kind === 'jpeg' ? (f.progressive ? 'jpeg progressive' : 'jpeg baseline') : f.kind;
    groups.set(key, [...(groups.get(key) ?? []), r.ms]);
  }
  return {
    size,
    files: ok.length,
    unreadable: results.length - ok.length,
    msPerPhoto: mean(ok.map((r) => r.ms)),
    msBy: Object.fromEntries([...groups].map(([k, v]) => [k, mean(v)])),
    msByPath: Object.fromEntries(ok.map((r) => [r.path, r.ms])),
    peakRss: Math.max(hwm, sampler.peakHwm),
  };
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
