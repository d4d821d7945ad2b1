/** The load scenarios' statistics: quantiles of latencies, and the machine's load average during a measurement. */
import { loadavg } from 'node:os';

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function splitAt(latencies: readonly number[], sentAt: readonly number[], ms: number) {
  const part = (keep: (t: number) => boolean) => {
    const xs = latencies.filter((_, i) => keep(sentAt[i]!)).sort((a, b) => a - b);
    return { count: xs.length, p99: quantile(xs, 0.99), max: xs.at(-1) ?? NaN };
  };
  return { early: part((t) => t < ms), steady: part((t) => t >= ms) };
}

export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

export interface LoadSnapshot {
  /** 1-minute load average when the measurement started, and the highest seen during it. */
  loadAtStart: number;
  loadMax: number;
}

export function loadWatch(): { stop(): LoadSnapshot } {
  const start = loadavg()[0]!;
  let max = start;
  const timer = setInterval(() => (max = Math.max(max, loadavg()[0]!)), 1000);
  return {
    stop() {
      clearInterval(timer);
      return { loadAtStart: start, loadMax: Math.max(max, loadavg()[0]!) };
    },
  };
}
