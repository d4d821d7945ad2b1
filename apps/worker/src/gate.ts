/**
 * The process-wide image gate. A worker takes several grid steps at once (WORKER_CONCURRENCY) so that while
 * one grid waits for the model's answer the next one is being built; the gate lets exactly one of them build
 * (read its photos, one sharp pipeline at a time, and compose) while the others wait for their turn or for
 * their answer. Turns are given in the order they were asked for; a step cancelled while waiting leaves the
 * line without ever holding the gate. A step may say its rank (its grid job's BullMQ priority): a lower
 * rank is let in first, so that a small job's grid taken while big jobs' grids wait is built next, not after
 * them; equal ranks go in the order they asked.
 */
export interface Gate {
  run<T>(build: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

export class ImageGate implements Gate {
  private held = false;
  private readonly waiting: { rank: number; grant: () => void }[] = [];

  /** Steps waiting for their turn (not counting the one building). */
  get queued(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.held;
  }

  /** Runs `build` when the gate is free and no lower rank waits, holding it until `build` settles. */
  async run<T>(build: () => Promise<T>, signal?: AbortSignal, rank = 0): Promise<T> {
    await this.acquire(signal, rank);
    try {
      return await build();
    } finally {
      this.release();
    }
  }

  /** The same gate, every step let in at `rank`. */
  ranked(rank: number): Gate {
    return { run: (build, signal) => this.run(build, signal, rank) };
  }

  private acquire(signal: AbortSignal | undefined, rank: number): Promise<void> {
    signal?.throwIfAborted();
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        // The worker aborts with an Error (its StopSignal); an abort without a reason gives a DOMException.
        reject(signal!.reason as Error);
      };
      const entry = {
        rank,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      // After every waiting step of the same or a lower rank.
      const at = this.waiting.findIndex((w) => w.rank > rank);
      this.waiting.splice(at < 0 ? this.waiting.length : at, 0, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.held = false;
  }
}
