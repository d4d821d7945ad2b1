import { describe, expect, it } from 'vitest';
import { parseServerSentEvents, type ServerSentEvent } from './sse.js';

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
      controller.close();
    },
  });
}

async function collect(chunks: (string | Uint8Array)[]): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = [];
  for await (const event of parseServerSentEvents(streamOf(chunks))) out.push(event);
  return out;
}

describe('parseServerSentEvents', () => {
  it('parses data events, event names, ids, retry, comments', async () => {
    const events = await collect([
      ': hello\n\n',
      'data: {"a":1}\n\n',
      'event: status\nid: 7\nretry: 1500\ndata: two\n\n',
      'data\n\n', // a field with no colon: empty data
      'data:no-space\nunknown: x\n\n',
    ]);
    expect(events).toEqual([
      { event: 'message', data: '{"a":1}' },
      { event: 'status', data: 'two', id: '7', retry: 1500 },
      { event: 'message', data: '', id: '7' },
      { event: 'message', data: 'no-space', id: '7' },
    ]);
  });

  it('joins multi-line data and accepts CRLF, CR and LF, even split across chunks', async () => {
    const events = await collect(['data: a\r', '\ndata: b\r\r', 'data: c\rdata: d\n', '\n', 'data: e\r\n\r', '\n']);
    expect(events.map((e) => e.data)).toEqual(['a\nb', 'c\nd', 'e']);
  });

  it('decodes UTF-8 split inside a character and drops a leading BOM', async () => {
    const bytes = new TextEncoder().encode('\uFEFFdata: café ✓\n\n');
    const events = await collect([bytes.slice(0, 10), bytes.slice(10, 14), bytes.slice(14)]);
    expect(events).toEqual([{ event: 'message', data: 'café ✓' }]);
  });

  it('discards an unterminated last event', async () => {
    expect(await collect(['data: one\n\n', 'data: two\n'])).toEqual([{ event: 'message', data: 'one' }]);
  });

  it('cancels the stream when the consumer leaves early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode('data: x\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const event of parseServerSentEvents(stream)) {
      expect(event.data).toBe('x');
      break;
    }
    expect(cancelled).toBe(true);
  });
});
