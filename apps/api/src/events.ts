/**
 * One Redis subscriber connection for every open events stream of this process: a stream registers a
 * listener for its triage's channel; the channel is subscribed while at least one listener needs it.
 */
import type { RedisClient } from '@triage/queue';

type Listener = (message: string) => void;

export class EventHub {
  private subscriber: RedisClient | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly connect: () => RedisClient) {}

  private client(): RedisClient {
    if (!this.subscriber) {
      this.subscriber = this.connect();
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (channel: string, message: string) => {
        for (const listener of this.listeners.get(channel) ?? []) listener(message);
      });
    }
    return this.subscriber;
  }

  /** Resolves once the channel is subscribed; returns the function that unsubscribes. */
  async subscribe(channel: string, listener: Listener): Promise<() => Promise<void>> {
    let set = this.listeners.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    if (first) {
      try {
        await this.client().subscribe(channel);
      } catch (err) {
        set.delete(listener);
        if (set.size === 0) this.listeners.delete(channel);
        throw err;
      }
    }
    return async () => {
      const current = this.listeners.get(channel);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(channel);
        await this.subscriber?.unsubscribe(channel).catch(() => {});
      }
    };
  }

  get channels(): number {
    return this.listeners.size;
  }

  close(): void {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
