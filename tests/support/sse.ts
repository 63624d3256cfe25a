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
    const decoder = new TextDecoder();
    let rest = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true });
        let at: number;
        while ((at = rest.indexOf('\n\n')) >= 0) {
          const block = rest.slice(0, at);
          rest = rest.slice(at + 2);
          const frame: SseFrame = { event: 'message', data: '' };
          let isEvent = false;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) session.comments.push(line.slice(1).trim());
            else if (line.startsWith('retry:')) session.retry = Number(line.slice(6).trim());
            else if (line.startsWith('id:')) frame.id = line.slice(3).trim();
            else if (line.startsWith('event:')) frame.event = line.slice(6).trim();
            else if (line.startsWith('data:')) {
              data.push(line.slice(5).replace(/^ /, ''));
              isEvent = true;
            }
          }
          frame.data = data.join('\n');
          if (isEvent && opts.onFrame(frame) === false) {
            abort.abort();
            return;
          }
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  return session;
}
