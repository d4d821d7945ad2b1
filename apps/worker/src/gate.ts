/**
 * The process-wide image gate. A worker takes several grid steps at once (WORKER_CONCURRENCY) so that while
 * one grid waits for the model's answer the next one is being built; the gate lets exactly one of them build
 * (read its photos, one sharp pipeline at a time, and compose) while the others wait for their turn or for
 * their answer. Turns are given in the order they were asked for; a step cancelled while waiting leaves the
 * line without ever holding the gate.
 */
export class ImageGate {
  private held = false;
  private readonly waiting: { grant: () => void }[] = [];

  /** Steps waiting for their turn (not counting the one building). */
  get queued(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.held;
  }

  /** Runs `build` when the gate is free, holding it until `build` settles. */
  async run<T>(build: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await build();
    } finally {
      this.release();
    }
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal!.reason);
      };
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiting.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.held = false;
  }
}
