import http from 'node:http';
import https from 'node:https';
import { Value } from '@sinclair/typebox/value';
import type { TSchema, Static } from '@sinclair/typebox';
import { JOB_STREAM_CONTENT_TYPE, JobStreamEntry, type LogLine } from '../../../node-manager/contract/worker-api';
import { storableText } from '../../db/storable';
import { NodeCallError, TRANSIENT_CODES, aborted, saidIn, transientStatus, trimSlashes } from './call-error';
import { NdjsonLines } from './ndjson';

/** Where a node's Worker API is and the bearer token it expects from us. */
export interface NodeTarget {
  /** worker_api_target_url, e.g. http://10.0.0.5:12090 */
  url: string;
  token: string;
}

/** Results carry at most 2 × 256 KiB of output; JSON escaping can multiply that. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** A streaming node writes a heartbeat every 15 s of silence: four missed ones mean the connection is dead. */
export const DEFAULT_STREAM_IDLE_MS = 60_000;

export interface CallOptions {
  signal?: AbortSignal;
  /** The whole call, however much it streams. */
  timeoutMs: number;
  /**
   * Asks for the job's output lines as the sandbox writes them (those after body.log_after),
   * in seq order, before the call resolves. A throw from it ends the call with that error.
   */
  onLog?: (line: LogLine) => void;
}

/**
 * A POST to a node's Worker API whose answer is checked against the contract
 * (node-manager/contract/worker-api.ts). Plain node:http rather than fetch: a jobs:run call stays
 * open as long as the job runs (up to hours), and fetch's built-in 300 s header timeout would cut
 * it; here the only limits are the ones the caller passes. With onLog the answer is streamed
 * (contract: JobStreamEntry) and must not stay silent longer than streamIdleMs.
 */
export function postWorker<S extends TSchema>(target: NodeTarget, path: string, body: unknown, schema: S, opts: CallOptions, streamIdleMs: number): Promise<Static<S>> {
  let url: URL;
  try {
    url = new URL(trimSlashes(target.url) + path);
  } catch {
    return Promise.reject(new NodeCallError(`the node's Worker API URL is not valid: ${target.url}`, false));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new NodeCallError(`the node's Worker API URL is not http(s): ${target.url}`, false));
  const where = `${url.origin}${path}`;
  const payload = Buffer.from(JSON.stringify(body));

  const streamed = opts.onLog !== undefined;

  return new Promise<Static<S>>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, value?: Static<S>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(idle);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value as Static<S>);
    };
    const onAbort = () => {
      req.destroy();
      finish(aborted(where));
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish(new NodeCallError(`no answer from ${where} within ${Math.round(opts.timeoutMs / 1000)} s`, true, { code: 'TIMEOUT' }));
    }, opts.timeoutMs);
    // A streaming node answers at once and never stays silent long; one that does is gone.
    const idle = streamed
      ? setTimeout(() => {
          req.destroy();
          finish(new NodeCallError(`no line from ${where} within ${Math.round(streamIdleMs / 1000)} s`, true, { code: 'IDLE' }));
        }, streamIdleMs)
      : undefined;

    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          accept: streamed ? JOB_STREAM_CONTENT_TYPE : 'application/json',
          authorization: `Bearer ${target.token}`,
        },
      },
      (res) => {
        idle?.refresh();
        const status = res.statusCode ?? 0;
        if (streamed && status === 200) {
          readStream(res, where, schema, opts.onLog!, () => idle?.refresh(), finish);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            finish(new NodeCallError(`answer from ${where} is larger than ${MAX_ANSWER_BYTES} bytes`, false, { status }));
          } else chunks.push(c);
        });
        res.on('error', (err: NodeJS.ErrnoException) => finish(new NodeCallError(`reading the answer of ${where} failed: ${err.code ?? err.message}`, true, { status, code: err.code })));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (status !== 200) {
            const said = saidIn(text) ?? undefined;
            finish(new NodeCallError(`${where} answered ${status}${said === undefined ? '' : `: ${said}`}`, transientStatus(status), { status, said }));
            return;
          }
          let parsed: unknown;
          try {
            parsed = parseAnswer(text);
          } catch {
            finish(new NodeCallError(`${where} answered 200 with a body that is not JSON`, false, { status }));
            return;
          }
          if (!Value.Check(schema, parsed)) {
            finish(new NodeCallError(`${where} answered 200 with a body that does not follow the Worker API contract (version 1)`, false, { status }));
            return;
          }
          finish(null, parsed);
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'UNKNOWN';
      finish(new NodeCallError(`call to ${where} failed: ${code}`, TRANSIENT_CODES.has(code) || code === 'UNKNOWN', { code }));
    });
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.end(payload);
  });
}

/**
 * Reads a streamed jobs:run answer line by line: log lines go to onLog in order, heartbeats only
 * prove the node is there, the result ends the call. Anything off the contract is a
 * non-transient error; a body that ends before its result is transient (call again with log_after).
 */
function readStream<S extends TSchema>(
  res: http.IncomingMessage,
  where: string,
  schema: S,
  onLog: (line: LogLine) => void,
  alive: () => void,
  finish: (err: Error | null, value?: Static<S>) => void,
): void {
  let done = false;
  const end = (err: Error | null, value?: Static<S>) => {
    done = true;
    if (err) res.destroy();
    finish(err, value);
  };
  const contentType = String(res.headers['content-type'] ?? '');
  if (!contentType.toLowerCase().startsWith(JOB_STREAM_CONTENT_TYPE)) {
    end(new NodeCallError(`${where} answered 200 with ${contentType || 'no content type'}, not a stream of job lines`, false, { status: 200 }));
    return;
  }
  const line = (text: string) => {
    let entry: unknown;
    try {
      entry = parseAnswer(text);
    } catch {
      end(new NodeCallError(`${where} sent a line that is not JSON`, false, { status: 200 }));
      return;
    }
    if (!Value.Check(JobStreamEntry, entry)) {
      end(new NodeCallError(`${where} sent a line that does not follow the Worker API contract (version 1)`, false, { status: 200 }));
      return;
    }
    if (entry.type === 'log') {
      try {
        onLog({ seq: entry.seq, stream: entry.stream, text: entry.text });
      } catch (err) {
        end(err instanceof Error ? err : new Error(String(err)));
      }
    } else if (entry.type === 'result') {
      if (Value.Check(schema, entry.result)) end(null, entry.result as Static<S>);
      else end(new NodeCallError(`${where} sent a result that does not follow the Worker API contract (version 1)`, false, { status: 200 }));
    }
  };
  res.setEncoding('utf8');
  const lines = new NdjsonLines();
  res.on('data', (data: string) => {
    if (done) return;
    alive();
    for (const text of lines.push(data)) {
      if (done) return;
      line(text);
    }
    if (!done && lines.pending > MAX_ANSWER_BYTES) end(new NodeCallError(`${where} sent a line longer than ${MAX_ANSWER_BYTES} bytes`, false, { status: 200 }));
  });
  res.on('end', () => {
    const last = done ? null : lines.end();
    if (last !== null) line(last);
    if (!done) end(new NodeCallError(`${where} ended the stream before the job's result`, true, { status: 200 }));
  });
  res.on('error', (err: NodeJS.ErrnoException) => !done && end(new NodeCallError(`reading the stream of ${where} failed: ${err.code ?? err.message}`, true, { status: 200, code: err.code })));
  res.on('close', () => !done && end(new NodeCallError(`${where} broke off the stream`, true, { status: 200 })));
}

/**
 * A node's JSON answer. What a sandbox printed is bytes, not text: a NUL, or a surrogate escape,
 * would be refused by the database where the output is stored (and fail the writes it shares a
 * statement with), so such characters become U+FFFD here, as invalid UTF-8 already does.
 */
function parseAnswer(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => (typeof value === 'string' ? storableText(value) : value));
}
