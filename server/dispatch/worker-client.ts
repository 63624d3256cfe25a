import http from 'node:http';
import https from 'node:https';
import { Value } from '@sinclair/typebox/value';
import type { TSchema, Static } from '@sinclair/typebox';
import {
  JOB_CONTROL_PATHS,
  JOB_STREAM_CONTENT_TYPE,
  JobControlResult,
  JobRunResult,
  JobStopResult,
  JobStreamEntry,
  PROCESS_PATHS,
  ProcessState,
  type JobControlRequest,
  type JobRunRequest,
  type JobStopRequest,
  type LogLine,
  type ProcessStartRequest,
  type ProcessStatusRequest,
  type ProcessTerminateRequest,
} from '../../node-manager/contract/worker-api';
import { storableText } from '../db/storable';

/** Where a node's Worker API is and the bearer token it expects from us. */
export interface WorkerTarget {
  /** worker_api_target_url, e.g. http://10.0.0.5:12090 */
  url: string;
  token: string;
}

/**
 * A Worker API call that did not give an answer we can use. `transient` ones (connection refused
 * or reset, 5xx, 429, 401, no answer in time) are worth repeating with the same job_id: the node runs a
 * job_id at most once. The message names the node's URL and the HTTP status, never the token.
 */
export class WorkerCallError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Results carry at most 2 × 256 KiB of output; JSON escaping can multiply that. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** A streaming node writes a heartbeat every 15 s of silence: four missed ones mean the connection is dead. */
const DEFAULT_STREAM_IDLE_MS = 60_000;

export interface WorkerClientOptions {
  /** How long a streamed jobs:run may stay silent (heartbeats count) before the call fails as transient. */
  streamIdleMs?: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** The whole call, however much it streams. */
  timeoutMs: number;
  /**
   * Asks for the job's output lines as the sandbox writes them (those after body.log_after),
   * in seq order, before the call resolves. A throw from it ends the call with that error.
   */
  onLog?: (line: LogLine) => void;
}

type Post = { signal?: AbortSignal; timeoutMs: number; onLog?: (line: LogLine) => void };

/**
 * The orchestrator's side of the Worker API (node-manager/contract/worker-api.ts). Plain
 * node:http rather than fetch: a jobs:run call stays open as long as the job runs (up to hours),
 * and fetch's built-in 300 s header timeout would cut it; here the only limits are the ones the
 * caller passes.
 */
export class WorkerClient {
  private readonly streamIdleMs: number;

  constructor(o: WorkerClientOptions = {}) {
    this.streamIdleMs = o.streamIdleMs ?? DEFAULT_STREAM_IDLE_MS;
  }

  /**
   * Runs (or re-attaches to) a job; resolves with the node's result. With onLog the answer is
   * streamed (contract: JobStreamEntry); a re-attaching caller passes the last seq it has as
   * body.log_after and gets each line once.
   */
  run(target: WorkerTarget, body: JobRunRequest, opts: RunOptions): Promise<JobRunResult> {
    return this.post(target, '/v1/worker/jobs:run', body, JobRunResult, opts);
  }

  /** Asks the node to stop a job; the open jobs:run then answers `canceled`. */
  stop(target: WorkerTarget, body: JobStopRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<JobStopResult> {
    return this.post(target, '/v1/worker/jobs:stop', body, JobStopResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Freezes a running job's sandbox (its timeout clock stands still); `not_running` when it is not running there. */
  pause(target: WorkerTarget, body: JobControlRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<JobControlResult> {
    return this.post(target, JOB_CONTROL_PATHS.pause, body, JobControlResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Lets a paused job run on. */
  resume(target: WorkerTarget, body: JobControlRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<JobControlResult> {
    return this.post(target, JOB_CONTROL_PATHS.resume, body, JobControlResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Starts a background process in a running job's sandbox (409: the job runs no sandbox there). */
  startProcess(target: WorkerTarget, body: ProcessStartRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.start, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  /** A process's state and output; with body.wait_ms, answered once it ends or after that long. */
  processStatus(target: WorkerTarget, body: ProcessStatusRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.status, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? (body.wait_ms ?? 0) + 15_000 });
  }

  /** Ends a process (SIGTERM, then SIGKILL after the node's grace) and answers its state after that. */
  terminateProcess(target: WorkerTarget, body: ProcessTerminateRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.terminate, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  private post<S extends TSchema>(target: WorkerTarget, path: string, body: unknown, schema: S, opts: Post): Promise<Static<S>> {
    let url: URL;
    try {
      url = new URL(target.url.replace(/\/+$/, '') + path);
    } catch {
      return Promise.reject(new WorkerCallError(`the node's Worker API URL is not valid: ${target.url}`, false));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new WorkerCallError(`the node's Worker API URL is not http(s): ${target.url}`, false));
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
        const e = new WorkerCallError(`call to ${where} aborted`, false, undefined, 'ABORTED');
        e.name = 'AbortError';
        finish(e);
      };
      const timer = setTimeout(() => {
        req.destroy();
        finish(new WorkerCallError(`no answer from ${where} within ${Math.round(opts.timeoutMs / 1000)} s`, true, undefined, 'TIMEOUT'));
      }, opts.timeoutMs);
      // A streaming node answers at once and never stays silent long; one that does is gone.
      const idle = streamed
        ? setTimeout(() => {
            req.destroy();
            finish(new WorkerCallError(`no line from ${where} within ${Math.round(this.streamIdleMs / 1000)} s`, true, undefined, 'IDLE'));
          }, this.streamIdleMs)
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
              finish(new WorkerCallError(`answer from ${where} is larger than ${MAX_ANSWER_BYTES} bytes`, false, res.statusCode));
            } else chunks.push(c);
          });
          res.on('error', (err: NodeJS.ErrnoException) => finish(new WorkerCallError(`reading the answer of ${where} failed: ${err.code ?? err.message}`, true, res.statusCode, err.code)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (status !== 200) {
              // 401: the node has not applied the token of its latest registration yet (it fetches
              // it right after registering); the next call reads the token again.
              const transient = status >= 500 || status === 429 || status === 408 || status === 401;
              finish(new WorkerCallError(`${where} answered ${status}${problemDetail(text)}`, transient, status));
              return;
            }
            let parsed: unknown;
            try {
              parsed = parseAnswer(text);
            } catch {
              finish(new WorkerCallError(`${where} answered 200 with a body that is not JSON`, false, status));
              return;
            }
            if (!Value.Check(schema, parsed)) {
              finish(new WorkerCallError(`${where} answered 200 with a body that does not follow the Worker API contract (version 1)`, false, status));
              return;
            }
            finish(null, parsed);
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'UNKNOWN';
        finish(new WorkerCallError(`call to ${where} failed: ${code}`, TRANSIENT_CODES.has(code) || code === 'UNKNOWN', undefined, code));
      });
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.end(payload);
    });
  }
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
    end(new WorkerCallError(`${where} answered 200 with ${contentType || 'no content type'}, not a stream of job lines`, false, 200));
    return;
  }
  const line = (text: string) => {
    if (text.trim() === '') return;
    let entry: unknown;
    try {
      entry = parseAnswer(text);
    } catch {
      end(new WorkerCallError(`${where} sent a line that is not JSON`, false, 200));
      return;
    }
    if (!Value.Check(JobStreamEntry, entry)) {
      end(new WorkerCallError(`${where} sent a line that does not follow the Worker API contract (version 1)`, false, 200));
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
      else end(new WorkerCallError(`${where} sent a result that does not follow the Worker API contract (version 1)`, false, 200));
    }
  };
  res.setEncoding('utf8');
  let buffered = '';
  res.on('data', (data: string) => {
    if (done) return;
    alive();
    buffered += data;
    let nl: number;
    while (!done && (nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      line(text);
    }
    if (!done && buffered.length > MAX_ANSWER_BYTES) end(new WorkerCallError(`${where} sent a line longer than ${MAX_ANSWER_BYTES} bytes`, false, 200));
  });
  res.on('end', () => {
    if (!done && buffered !== '') line(buffered);
    if (!done) end(new WorkerCallError(`${where} ended the stream before the job's result`, true, 200));
  });
  res.on('error', (err: NodeJS.ErrnoException) => !done && end(new WorkerCallError(`reading the stream of ${where} failed: ${err.code ?? err.message}`, true, 200, err.code)));
  res.on('close', () => !done && end(new WorkerCallError(`${where} broke off the stream`, true, 200)));
}

/**
 * A node's JSON answer. What a sandbox printed is bytes, not text: a NUL, or a surrogate escape,
 * would be refused by the database where the output is stored (and fail the writes it shares a
 * statement with), so such characters become U+FFFD here, as invalid UTF-8 already does.
 */
function parseAnswer(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => (typeof value === 'string' ? storableText(value) : value));
}

/** The `detail` of a problem document, clipped, for error messages. */
function problemDetail(text: string): string {
  try {
    const doc = JSON.parse(text) as { detail?: unknown };
    if (typeof doc.detail === 'string') return `: ${doc.detail.slice(0, 300)}`;
  } catch {
    // not a problem document
  }
  return '';
}
