/**
 * What the load scenarios' sections in docs/benchmarks.md share: the run they describe (host, candidate
 * variant, sizes), number formats, and the raw results kept in .bench/load/results, which later sections cite.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { describeHost } from '../report.js';
import { utcStamp } from '../util.js';
import type { LoadSnapshot } from './stats.js';

export interface SectionContext {
  host: ReturnType<typeof describeHost>;
  /** --variant: a candidate measured against the code as it is; its sections get their own keys and titles. */
  variant: string | undefined;
  /** The candidate's note for titles (` (candidate: …)`), or ''. */
  candidate: string;
  /** Where the raw results are kept. */
  workDir: string;
  jobPhotos: number;
  files: number;
}

/** A section's key, with the candidate's name when there is one. */
export function keyed(sc: SectionContext, key: string): string {
  return sc.variant ? `${key}-${sc.variant}` : key;
}

export const MB = 1048576;
export const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '—');
export const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
export const s1 = (ms: number) => `${f1(ms / 1000)} s`;
export const mbs = (n: number) => `${f0(n / MB)} MB`;
export const loadText = (l: LoadSnapshot) =>
  `${l.loadAtStart.toFixed(2)} at the start, ${l.loadMax.toFixed(2)} at most during the run (this run's own processes count in it)`;
export const met = (ok: boolean) => (ok ? 'met' : 'not met');

/** Raw figures, kept beside the other results (.bench/load/results/KEY.json) for a closer look. */
export async function save(workDir: string, key: string, data: unknown): Promise<void> {
  const dir = join(workDir, 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${key}.json`), `${JSON.stringify(data, null, 2)}\n`);
}

/** A saved result, or null. Throughput and transfer results are saved as {date, data}; older files as the data alone. */
export function loadSaved<T>(workDir: string, key: string): { date: string; data: T } | null {
  const path = join(workDir, 'results', `${key}.json`);
  if (!existsSync(path)) return null;
  const raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (raw && typeof raw === 'object' && 'date' in raw && 'data' in raw) return raw as { date: string; data: T };
  const date = (raw as { date?: string }).date ?? utcStamp(statSync(path).mtime);
  return { date, data: raw as T };
}
