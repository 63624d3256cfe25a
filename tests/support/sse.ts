import { createParser } from 'eventsource-parser';

/** One server-sent event as a client sees it. */
export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

export interface SseSession {
  status: number;
  headers: Headers;
  /** The non-event frames: `retry:` values and comments, in order. */
  retry: number | undefined;
  comments: string[];
  /** Resolves when the server ended the stream (or `stop` was called). */
  ended: Promise<void>;
  /** Closes the connection from the client side. */
  stop(): void;
}

/**
 * A minimal EventSource over fetch, so tests can send headers (Authorization, Last-Event-ID)
 * and drop the connection whenever they like. `onFrame` returning `false` disconnects.
 */
export async function openSse(url: string, opts: { token: string; lastEventId?: string; onFrame(f: SseFrame): boolean | void }): Promise<SseSession> {
  const abort = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token}`, accept: 'text/event-stream' };
  if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
  const res = await fetch(url, { headers, signal: abort.signal });
  const session: SseSession = { status: res.status, headers: res.headers, retry: undefined, comments: [], ended: Promise.resolve(), stop: () => abort.abort() };
  if (res.status !== 200 || !res.body) return session;
  session.ended = (async () => {
    let stopped = false;
    const parser = createParser({
      onEvent: (e) => {
        if (stopped) return;
        const frame: SseFrame = { event: e.event ?? 'message', data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) };
        if (opts.onFrame(frame) === false) {
          stopped = true;
          abort.abort();
        }
      },
      onRetry: (ms) => (session.retry = ms),
      onComment: (comment) => session.comments.push(comment.trim()),
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (stopped) return;
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  return session;
}
