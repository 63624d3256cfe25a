import http from 'node:http';
import https from 'node:https';
import { Value } from '@sinclair/typebox/value';
import type { TSchema, Static } from '@sinclair/typebox';
import { JobRunResult, JobStopResult, type JobRunRequest, type JobStopRequest } from '../../node-manager/contract/worker-api';

/** Where a node's Worker API is and the bearer token it expects from us. */
export interface WorkerTarget {
  /** worker_api_target_url, e.g. http://10.0.0.5:12090 */
  url: string;
  token: string;
}

/**
 * A Worker API call that did not give an answer we can use. `transient` ones (connection refused
 * or reset, 5xx, 429, no answer in time) are worth repeating with the same job_id: the node runs a
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

/**
 * The orchestrator's side of the Worker API (node-manager/contract/worker-api.ts). Plain
 * node:http rather than fetch: a jobs:run call stays open as long as the job runs (up to hours),
 * and fetch's built-in 300 s header timeout would cut it; here the only limits are the ones the
 * caller passes.
 */
export class WorkerClient {
  /** Runs (or re-attaches to) a job; resolves with the node's result. */
  run(target: WorkerTarget, body: JobRunRequest, opts: { signal?: AbortSignal; timeoutMs: number }): Promise<JobRunResult> {
    return this.post(target, '/v1/worker/jobs:run', body, JobRunResult, opts);
  }

  /** Asks the node to stop a job; the open jobs:run then answers `canceled`. */
  stop(target: WorkerTarget, body: JobStopRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<JobStopResult> {
    return this.post(target, '/v1/worker/jobs:stop', body, JobStopResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  private post<S extends TSchema>(target: WorkerTarget, path: string, body: unknown, schema: S, opts: { signal?: AbortSignal; timeoutMs: number }): Promise<Static<S>> {
    let url: URL;
    try {
      url = new URL(target.url.replace(/\/+$/, '') + path);
    } catch {
      return Promise.reject(new WorkerCallError(`the node's Worker API URL is not valid: ${target.url}`, false));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new WorkerCallError(`the node's Worker API URL is not http(s): ${target.url}`, false));
    const where = `${url.origin}${path}`;
    const payload = Buffer.from(JSON.stringify(body));

    return new Promise<Static<S>>((resolve, reject) => {
      let settled = false;
      const finish = (err: WorkerCallError | null, value?: Static<S>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
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

      const req = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': payload.length, accept: 'application/json', authorization: `Bearer ${target.token}` },
        },
        (res) => {
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
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (status !== 200) {
              const transient = status >= 500 || status === 429 || status === 408;
              finish(new WorkerCallError(`${where} answered ${status}${problemDetail(text)}`, transient, status));
              return;
            }
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
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
