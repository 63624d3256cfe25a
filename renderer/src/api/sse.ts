import { createParser } from 'eventsource-parser';

/** One server-sent event as read from a fetch body. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads a `text/event-stream` body event by event (fetch, not EventSource: every request carries
 * the bearer token in a header, which EventSource cannot send). Comments (`: keepalive`) are
 * skipped; an event the server cut off without its closing blank line is still delivered.
 */
export async function readSse(body: ReadableStream<Uint8Array>, onEvent: (e: SseEvent) => void): Promise<void> {
  const parser = createParser({
    onEvent: (e) => onEvent({ event: e.event ?? 'message', data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) }),
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
    parser.feed(decoder.decode() + '\n\n');
  } finally {
    reader.releaseLock();
  }
}
