/**
 * A node call that gave no answer we can use. `transient` ones (connection refused or reset,
 * 5xx, 429, 401, no answer in time, a stream cut before its end) are worth another attempt: a
 * Worker API job with the same job_id (the node runs a job_id at most once), a chat here or on
 * another node. `started` says whether a chat had already passed content on (then nothing may be
 * retried). The message names the node's URL and the HTTP status, never the token; `said` is what
 * the node (or its Ollama) answered, clipped.
 */
export class NodeCallError extends Error {
  readonly status?: number;
  readonly code?: string;
  readonly started: boolean;
  readonly said?: string;

  constructor(
    message: string,
    readonly transient: boolean,
    o: { status?: number; code?: string; started?: boolean; said?: string } = {},
  ) {
    super(message);
    this.status = o.status;
    this.code = o.code;
    this.started = o.started ?? false;
    this.said = o.said;
  }
}

/** Socket errors a repeated call may not meet again. */
export const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * A refusal worth repeating: the node is overloaded or failing (5xx, 429, 408), or (401) has not
 * applied the token of its latest registration yet (it fetches it right after registering; the
 * next call reads the token again).
 */
export const transientStatus = (status: number): boolean => status >= 500 || status === 429 || status === 408 || status === 401;

/** The `detail` of a problem document, or Ollama's `{error}`, clipped; null when the text is neither. */
export function saidIn(text: string): string | null {
  try {
    const doc = JSON.parse(text) as { detail?: unknown; error?: unknown };
    if (typeof doc.detail === 'string') return doc.detail.slice(0, 300);
    if (typeof doc.error === 'string') return doc.error.slice(0, 300);
  } catch {
    // not JSON
  }
  return null;
}

/** An abort the caller asked for: named AbortError, as fetch names it. */
export function aborted(where: string, o: { started?: boolean } = {}): NodeCallError {
  const e = new NodeCallError(`call to ${where} aborted`, false, { code: 'ABORTED', started: o.started });
  e.name = 'AbortError';
  return e;
}

export const trimSlashes = (url: string): string => url.replace(/\/+$/, '');
