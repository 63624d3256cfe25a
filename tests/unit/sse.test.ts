import { describe, expect, it } from 'vitest';
import { readSse, type SseEvent } from '../../renderer/src/api/sse';

/** A fetch body that hands out exactly these reads. */
function bodyOf(...reads: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const r of reads) controller.enqueue(encoder.encode(r));
      controller.close();
    },
  });
}

async function eventsOf(...reads: string[]): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  await readSse(bodyOf(...reads), (e) => events.push(e));
  return events;
}

describe('the console reading server-sent events', () => {
  it('does not take a \\r\\n split across two reads for the end of an event', async () => {
    // "\r" ends one read and "\n" begins the next: one line break, not the blank line that ends an event.
    expect(await eventsOf('data: one\r', '\ndata: two\r\n\r\n')).toEqual([{ event: 'message', data: 'one\ntwo' }]);
  });

  it('reads names, ids and comments, and an event cut off without its blank line', async () => {
    expect(await eventsOf(': keepalive\n\nid: 7\nevent: log\ndata: {"a":1}\n\n', 'data: last')).toEqual([
      { event: 'log', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'last' },
    ]);
  });
});
