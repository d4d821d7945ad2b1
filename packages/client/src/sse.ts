/**
 * A small server-sent-events parser over a fetch body (WHATWG `ReadableStream`), following the HTML standard's
 * event-stream rules: UTF-8, lines ended by CRLF, LF or CR, `field: value` lines, `:` comments, events
 * dispatched on a blank line, multi-line `data` joined with `\n`. Runs in browsers and Node alike.
 */

export interface ServerSentEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last `id:` seen, if any. */
  id?: string;
  /** `retry:` in milliseconds, when this event carried one. */
  retry?: number;
}

export async function* parseServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const events = new EventAssembler();
  let buffer = '';
  let first = true;

  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (first && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer.charCodeAt(i);
        if (ch !== 0x0a && ch !== 0x0d) continue;
        // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
        if (ch === 0x0d && i === buffer.length - 1 && !done) break;
        const event = events.line(buffer.slice(start, i));
        if (ch === 0x0d && buffer.charCodeAt(i + 1) === 0x0a) i++;
        start = i + 1;
        if (event) yield event;
      }
      buffer = buffer.slice(start);
      if (done) return; // an unterminated last event is discarded, as the standard says
    }
  } finally {
    // Stops the download when the consumer leaves early; harmless once the stream is done.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** Builds events from complete lines; the last `id` outlives the event that set it, as the standard says. */
class EventAssembler {
  private eventType = '';
  private data: string[] = [];
  private lastId: string | undefined;
  private retry: number | undefined;

  /** Handles one complete line; returns an event when the line is the blank one ending it. */
  line(text: string): ServerSentEvent | undefined {
    if (text === '') return this.dispatch();
    if (text.startsWith(':')) return undefined; // comment / heartbeat
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.field(field, value);
    return undefined;
  }

  private field(field: string, value: string): void {
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  /** The event the blank line ends (none when it had no data); starts the next one. */
  private dispatch(): ServerSentEvent | undefined {
    const out: ServerSentEvent | undefined =
      this.data.length > 0
        ? {
            event: this.eventType || 'message',
            data: this.data.join('\n'),
            ...(this.lastId !== undefined ? { id: this.lastId } : {}),
            ...(this.retry !== undefined ? { retry: this.retry } : {}),
          }
        : undefined;
    this.eventType = '';
    this.data = [];
    this.retry = undefined;
    return out;
  }
}
