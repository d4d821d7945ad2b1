/**
 * One Redis subscriber connection for every open events stream of this process: a stream registers a
 * listener for its triage's channel; the channel is subscribed while at least one listener needs it.
 * A `Feed` is the same subscription as a queue to await: the events stream and DELETE's wait read the
 * triage's status changes from it, each message in turn, rather than keep flags or poll.
 */
import { withDeadline, type RedisClient } from '@triage/queue';

type Listener = (message: string) => void;

interface Channel {
  listeners: Set<Listener>;
  /** Settles when Redis has confirmed the SUBSCRIBE: a listener counts as subscribed only then. */
  subscribed: Promise<unknown>;
}

/** The messages of one channel since it was subscribed, in order, until closed. */
export class Feed {
  private readonly queued: string[] = [];
  private waiter: ((message: string | null) => void) | undefined;
  private ended = false;
  private release: () => Promise<void> = async () => {};

  /** Takes a message (the hub's listener). */
  readonly push = (message: string): void => {
    if (this.ended) return;
    if (this.waiter) this.take()(message);
    else this.queued.push(message);
  };

  /** Set by the hub once subscribed: what `close` undoes. */
  attach(release: () => Promise<void>): void {
    this.release = release;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** The next message, or null when none came within `ms` or the feed was closed meanwhile. */
  next(ms: number): Promise<string | null> {
    if (this.queued.length > 0) return Promise.resolve(this.queued.shift()!);
    if (this.ended || ms <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.take()(null), ms);
      this.waiter = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
    });
  }

  /** Ends the feed (a pending `next` gets null) and drops its subscription. Idempotent. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.queued.length = 0;
    if (this.waiter) this.take()(null);
    await this.release();
  }

  private take(): (message: string | null) => void {
    const waiter = this.waiter!;
    this.waiter = undefined;
    return waiter;
  }
}

export class EventHub {
  private subscriber: RedisClient | undefined;
  private readonly entries = new Map<string, Channel>();

  constructor(private readonly connect: () => RedisClient) {}

  private client(): RedisClient {
    if (!this.subscriber) {
      this.subscriber = this.connect();
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (channel: string, message: string) => {
        for (const listener of this.entries.get(channel)?.listeners ?? []) listener(message);
      });
    }
    return this.subscriber;
  }

  /**
   * Resolves once the channel is subscribed (for a second listener of a channel too: it waits for the
   * first one's SUBSCRIBE), so that every message published from then on reaches `listener`; returns the
   * function that unsubscribes.
   */
  async subscribe(channel: string, listener: Listener): Promise<() => Promise<void>> {
    let entry = this.entries.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: this.client().subscribe(channel) };
      this.entries.set(channel, entry);
    }
    entry.listeners.add(listener);
    try {
      await entry.subscribed;
    } catch (err) {
      entry.listeners.delete(listener);
      if (this.entries.get(channel) === entry) this.entries.delete(channel);
      throw err;
    }
    return () => this.unsubscribe(channel, entry, listener);
  }

  /**
   * A feed of the channel's messages from the moment this resolves. Subscribing must succeed within `ms`,
   * or this throws a RedisUnavailableError (and the late subscription is dropped when it comes).
   */
  async feed(channel: string, ms: number): Promise<Feed> {
    const feed = new Feed();
    const subscribing = this.subscribe(channel, feed.push);
    try {
      feed.attach(await withDeadline(subscribing, ms, 'subscribing'));
    } catch (err) {
      subscribing.then(
        (unsubscribe) => unsubscribe(),
        () => {},
      );
      throw err;
    }
    return feed;
  }

  private async unsubscribe(channel: string, entry: Channel, listener: Listener): Promise<void> {
    if (!entry.listeners.delete(listener) || entry.listeners.size > 0) return;
    if (this.entries.get(channel) !== entry) return;
    this.entries.delete(channel);
    await this.subscriber?.unsubscribe(channel).catch(() => {});
  }

  get channels(): number {
    return this.entries.size;
  }

  close(): void {
    this.entries.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
