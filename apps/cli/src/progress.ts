/** A live progress line on a terminal; plain lines (one per change) when the output is not a terminal. */
import type { TriageStatus } from '@triage/queue';

const BAR = 28;

export class ProgressView {
  private readonly started = Date.now();
  private last = '';
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly quiet = false,
  ) {}

  private get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  update(status: TriageStatus): void {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(0);
    const total = Math.max(1, status.grids_total);
    const share = status.status === 'completed' ? 1 : Math.min(1, status.grids_done / total);
    const filled = Math.round(share * BAR);
    const message = status.progress?.message ?? (status.status === 'pending' ? 'Waiting for a worker...' : status.status);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${message}`;
    if (line === this.last) {
      if (this.tty) this.draw(`${line}  ${seconds}s`);
      return;
    }
    this.last = line;
    if (this.tty) this.draw(`${line}  ${seconds}s`);
    else if (!this.quiet) this.out.write(`${line}  ${seconds}s\n`);
  }

  note(text: string): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
    this.out.write(`${text}\n`);
  }

  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  private draw(text: string): void {
    this.out.write(`\r\x1b[2K${text}`);
    this.drawn = true;
  }
}
