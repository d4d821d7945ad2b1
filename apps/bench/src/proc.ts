/**
 * What the operating system says about a process: memory from /proc/<pid>/status, bytes read from
 * /proc/<pid>/io; and how a benchmark's child process is stopped.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export interface MemorySample {
  /** Peak resident set size so far, bytes (VmHWM). */
  hwm: number;
  /** Current resident set size, bytes (VmRSS). */
  rss: number;
}

function kbField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** null once the process is gone. */
export function memoryOf(pid: number | 'self'): MemorySample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { hwm: kbField(status, 'VmHWM'), rss: kbField(status, 'VmRSS') };
  } catch {
    return null;
  }
}

/** Bytes the process asked read() for (rchar: page cache hits included, sockets too), or null. */
export function bytesReadBy(pid: number): number | null {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const match = /^rchar:\s+(\d+)/m.exec(io);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Samples a process every `intervalMs` and keeps the peaks. */
export class MemorySampler {
  peakHwm = 0;
  peakRss = 0;
  samples = 0;
  private timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 50,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const m = memoryOf(this.pid);
    if (!m) return;
    this.samples++;
    this.peakHwm = Math.max(this.peakHwm, m.hwm);
    this.peakRss = Math.max(this.peakRss, m.rss);
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }

  /** The highest VmHWM seen, or the process's own if it is higher now (0 once it is gone). */
  peak(): number {
    return Math.max(this.peakHwm, memoryOf(this.pid)?.hwm ?? 0);
  }
}

/**
 * Resets a process's VmHWM to its current RSS (Linux ≥ 4.0: `5` to /proc/<pid>/clear_refs), so that the next
 * reading is the peak of what follows, not of the start-up. Returns false where that is not allowed.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL if the process has not ended within 15 s. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
