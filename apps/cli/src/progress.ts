/**
 * A live progress line on a terminal; plain lines (one per change) when the output is not a terminal. The
 * live line is redrawn in place, so it must never wrap: it is cut to the terminal's width (read at every
 * draw, so a resized window is followed). Once the run has ended, nothing more is drawn.
 */
import type { TriageStatus } from '@triage/queue';

const BAR = 28;
/** Narrower than this, a bar says nothing: the percentage alone is shown. */
const MIN_BAR = 8;

/** `text` cut to fit `columns` terminal cells, less one (a line filling the last cell wraps on some terminals). */
export function fitLine(text: string, columns: number | undefined): string {
  if (!columns || columns <= 1) return text;
  const room = columns - 1;
  const chars = [...text];
  if (chars.length <= room) return text;
  return room === 1 ? '…' : `${chars.slice(0, room - 1).join('')}…`;
}

/** The bar and `text`, within `columns`: the bar narrows, then goes, before the text is cut. */
export function progressLine(share: number, text: string, columns: number | undefined): string {
  const room = columns && columns > 1 ? columns - 1 : Infinity;
  const width = Math.min(BAR, room - text.length - 3);
  if (width < MIN_BAR) return fitLine(text, columns);
  const filled = Math.round(share * width);
  return fitLine(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`, columns);
}

export class ProgressView {
  private readonly started = Date.now();
  private last = '';
  private drawn = false;
  private finished = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly quiet = false,
  ) {}

  private get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  update(status: TriageStatus): void {
    if (this.finished) return;
    const seconds = ((Date.now() - this.started) / 1000).toFixed(0);
    const total = Math.max(1, status.grids_total);
    const share = status.status === 'completed' ? 1 : Math.min(1, status.grids_done / total);
    const message =
      status.progress?.message ?? (status.status === 'pending' ? 'Waiting for a worker...' : status.status);
    const text = `${String(Math.round(share * 100)).padStart(3)}%  ${message}`;
    const changed = text !== this.last;
    this.last = text;
    if (this.tty) this.draw(progressLine(share, `${text}  ${seconds}s`, this.out.columns));
    else if (changed && !this.quiet) this.out.write(`${progressLine(share, text, undefined)}  ${seconds}s\n`);
  }

  note(text: string): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
    this.out.write(`${text}\n`);
  }

  /** Ends the live line: the last state stays on screen once, and later updates are ignored. */
  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
    this.finished = true;
  }

  private draw(text: string): void {
    this.out.write(`\r\x1b[2K${fitLine(text, this.out.columns)}`);
    this.drawn = true;
  }
}
