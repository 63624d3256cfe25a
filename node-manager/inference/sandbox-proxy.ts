import { timingSafeEqual } from 'node:crypto';
import { chmod, rm } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';

/*
 * The inference proxy of one sandbox job (README, Inference on nodes): a host-side HTTP server
 * on a Unix socket in the job's directory, which is mounted into the sandbox. The sandbox keeps
 * no network; this socket is its one way out, and it leads only to the node's Ollama, only to its
 * inference paths, only for the models the node has, and only with the job's token.
 */

/** Ollama's inference paths a sandbox may call; anything else answers 404. */
const ALLOWED: Readonly<Record<string, 'GET' | 'POST'>> = {
  '/api/chat': 'POST',
  '/api/generate': 'POST',
  '/api/embed': 'POST',
  '/api/show': 'POST',
  '/api/tags': 'GET',
};

/** The inference proxy caps a request body at 10 MiB (else 413) and a request at 120 s. */
export const PROXY_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const PROXY_REQUEST_TIMEOUT_MS = 120_000;

export interface SandboxInferenceProxyOptions {
  /** Where to listen; the directory must exist. */
  socketPath: string;
  /** The job's secret: every request but /healthz must carry it as `Authorization: Bearer`. */
  token: string;
  /** The node's Ollama base URL, read per request. */
  ollamaUrl(): string;
  maxBodyBytes?: number;
  requestTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface SandboxInferenceProxy {
  /** Ends every connection, stops listening and removes the socket file. */
  close(): Promise<void>;
}

export async function startSandboxInferenceProxy(o: SandboxInferenceProxyOptions): Promise<SandboxInferenceProxy> {
  const maxBody = o.maxBodyBytes ?? PROXY_MAX_BODY_BYTES;
  const timeoutMs = o.requestTimeoutMs ?? PROXY_REQUEST_TIMEOUT_MS;
  const expected = Buffer.from(`Bearer ${o.token}`);
  const log = o.log ?? ((m) => console.warn(m));

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`inference proxy: ${(err as Error).message}`);
      answer(res, 502, 'the inference proxy failed to forward the request');
    });
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
      return;
    }
    // Compared in constant time; the token itself is never logged.
    const presented = Buffer.from(req.headers.authorization ?? '');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      res.setHeader('www-authenticate', 'Bearer');
      return answer(res, 401, 'the inference proxy needs the job token: Authorization: Bearer $INFERENCE_PROXY_TOKEN');
    }
    if (ALLOWED[path] !== req.method) return answer(res, 404, `not an inference path of this proxy: ${req.method} ${path}`);

    let body: Buffer | undefined;
    if (req.method === 'POST') {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) return tooLarge(req, res, maxBody);
      body = await readBody(req, maxBody);
      if (!body) return tooLarge(req, res, maxBody);
      let model: unknown;
      try {
        model = (JSON.parse(body.toString('utf8')) as { model?: unknown } | null)?.model;
      } catch {
        return answer(res, 400, 'the request body is not JSON');
      }
      if (typeof model !== 'string' || model === '') return answer(res, 400, 'the request names no model');
      // Only what the node serves: a name Ollama does not have would otherwise reach it as is.
      let served: Set<string>;
      try {
        served = await servedModels(o.ollamaUrl());
      } catch {
        return answer(res, 503, 'inference is not running on this node');
      }
      if (!served.has(fullName(model))) return answer(res, 404, `model "${model}" is not served by this node`);
    }
    await forward(req, res, o.ollamaUrl(), path, body, timeoutMs);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The sandbox runs as nobody; connecting needs write permission on the socket. The token, not
  // the mode, is what keeps others out.
  await chmod(o.socketPath, 0o666);

  return {
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(o.socketPath, { force: true });
    },
  };
}

function answer(res: ServerResponse, status: number, error: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Ollama's own error shape, so clients written for Ollama show the message.
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error }));
}

function tooLarge(req: IncomingMessage, res: ServerResponse, maxBody: number): void {
  res.setHeader('connection', 'close');
  answer(res, 413, `the request body is larger than ${maxBody} bytes`);
  // The rest of the body is not read.
  req.resume();
}

/** The body, or undefined once it passes the cap. */
function readBody(req: IncomingMessage, maxBody: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        req.off('data', onData);
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Ollama names a model without a tag `<name>:latest`. */
function fullName(model: string): string {
  return model.includes(':') ? model : `${model}:latest`;
}

async function servedModels(base: string): Promise<Set<string>> {
  const res = await fetch(`${base.replace(/\/+$/, '')}/api/tags`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`Ollama answered /api/tags with ${res.status}`);
  const { models } = (await res.json()) as { models?: { name?: string; model?: string }[] };
  const names = new Set<string>();
  for (const m of models ?? []) {
    for (const n of [m.name, m.model]) if (typeof n === 'string') names.add(fullName(n));
  }
  return names;
}

/** Ollama's answer, status and bytes, piped as it arrives; the caller leaving stops the generation. */
function forward(req: IncomingMessage, res: ServerResponse, base: string, path: string, body: Buffer | undefined, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(base.replace(/\/+$/, '') + path);
    const secure = url.protocol === 'https:';
    const upstream = (secure ? https : http).request(url, {
      method: req.method,
      headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {},
    });
    const timer = setTimeout(() => {
      upstream.destroy();
      answer(res, 504, `the model did not answer within ${timeoutMs / 1000} s`);
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
      done();
    });
    upstream.once('error', () => {
      answer(res, 503, 'inference is not running on this node');
      done();
    });
    upstream.once('response', (reply) => {
      res.writeHead(reply.statusCode ?? 502, { 'content-type': reply.headers['content-type'] ?? 'application/x-ndjson' });
      reply.pipe(res);
    });
    upstream.end(body);
  });
}
