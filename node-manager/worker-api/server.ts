import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, sameSecret } from '../../server/http/credentials';
import { HttpProblem, badRequest, tooManyRequests, unauthorized } from '../../server/http/problem';
import type { Principal } from '../../server/http/principal';
import { Strict } from '../../server/http/schemas';
import { createHttpServer } from '../../server/http/server';
import {
  JOB_STREAM_CONTENT_TYPE,
  JOB_STREAM_HEARTBEAT_MS,
  JobRunRequest,
  JobStopRequest,
  NETWORK_POLICIES,
  type JobStopResult,
  type JobStreamEntry,
} from '../contract/worker-api';
import type { SandboxRunner } from '../sandbox/runner';
import { DEFAULT_OLLAMA_URL } from '../inference/ollama-host';
import { inferenceRoutes } from './inference-routes';
import { jobControlRoutes } from './job-control-routes';
import { AtCapacityError, ClosedError, JobTable, type FollowedJob } from './job-table';
import { processRoutes } from './process-routes';
import type { JobLogLimits } from './log-lines';
import { ResultStore } from './result-store';

export interface WorkerApiOptions {
  host: string;
  /** 0 lets the OS choose (tests). */
  port: number;
  runner: SandboxRunner;
  nodeSlug: string;
  /** Used when a job names no image. */
  defaultImage: string;
  /** The orchestrator's token from the node's current config; null until the config arrived. */
  getBearerToken(): string | null;
  /** Where finished results and running-job markers live, so job_id stays idempotent across restarts. */
  stateDir: string;
  /** Request body cap; default 10 MiB. */
  maxRequestBytes?: number;
  /** Job timeout when a request names none; default 3600 s. */
  defaultTimeoutSeconds?: number;
  /** No job runs longer, whatever it asks; default 10800 s. */
  maxTimeoutSeconds?: number;
  /** Jobs running at once; more are refused with 429. Default 2. */
  maxConcurrency?: number;
  /** How long finished results stay answerable; default 24 h. */
  resultRetentionMs?: number;
  logLevel?: string;
  /** The node's Ollama base URL (OLLAMA_HOST), read per request; default http://127.0.0.1:11434. */
  ollamaUrl?: () => string;
  /** Silence after which a streamed jobs:run sends a heartbeat line; default 15 s. */
  streamHeartbeatMs?: number;
  /** Bounds of each job's kept output lines; defaults in log-lines.ts. */
  logLimits?: Partial<JobLogLimits>;
}

export interface WorkerApi {
  url: string;
  /** Stops serving; running jobs are killed and answer (now and after a restart) as interrupted. */
  close(): Promise<void>;
  runningJobIds(): string[];
  /** Stops every running job as the orchestrator's stop-all does (they answer `canceled`); returns their ids. */
  stopAll(): Promise<string[]>;
}

/** How long a refused caller should wait before asking again, in seconds. */
const RETRY_AFTER_SECONDS = 5;

/*
 * The Worker API has exactly one caller, the orchestrator, proven by the bearer token of the
 * node's config. The shared HTTP layer speaks of principals; the orchestrator's token is a
 * session-like credential (issued by the orchestrator, revoked by replacing the config), so it
 * is presented as such. Nothing in the Worker API reads more than that it is present.
 */
const ORCHESTRATOR: Principal = { userId: 'orchestrator', handle: 'orchestrator', via: 'session' };

/** A path segment must not be `.` or `..`, which the id pattern alone allows. */
const DOTS_ONLY = /^\.+$/;

/**
 * Output a streaming caller has not read yet, beyond which its answer is cut: a stuck
 * connection must not hold a flooding job's output in memory. It comes back with log_after.
 */
const MAX_UNREAD_STREAM_BYTES = 8 * 1024 * 1024;

/**
 * The Worker API: the orchestrator hands this node jobs to run in sandboxes,
 * synchronously, one answer per job_id however often it asks.
 */
export async function startWorkerApi(o: WorkerApiOptions): Promise<WorkerApi> {
  const defaultTimeout = o.defaultTimeoutSeconds ?? 3600;
  const maxTimeout = o.maxTimeoutSeconds ?? 10_800;
  const maxConcurrency = o.maxConcurrency ?? 2;

  const app = await createHttpServer({
    name: 'worker-api',
    logLevel: o.logLevel ?? 'info',
    maxBodyBytes: o.maxRequestBytes ?? 10 * 1024 * 1024,
    // Waiting callers of one job each hold a request, and every chat stream holds one for its
    // whole answer; this only bounds abuse.
    maxConcurrentRequests: Math.max(64, maxConcurrency * 16) + 512,
    requestTimeoutSeconds: 30,
    // Browsers have no business here: the orchestrator calls by whatever name the node advertises,
    // and every call needs the node's bearer token, which no web page has.
    allowedOrigins: [],
    allowedHosts: 'any',
    async authenticate(request) {
      const expected = o.getBearerToken();
      if (expected === null) throw new HttpProblem(503, 'node not configured yet', {}, { 'retry-after': String(RETRY_AFTER_SECONDS) });
      const presented = bearerToken(request.headers.authorization);
      if (presented === null || !sameSecret(presented, expected)) throw unauthorized();
      request.principal = ORCHESTRATOR;
    },
    openapi: { title: 'CyNode Worker API', version: '1', description: "A node's jobs, their logs and processes, and its inference, for the orchestrator." },
  });

  const jobs = new JobTable({
    runner: o.runner,
    store: new ResultStore(o.stateDir),
    nodeSlug: o.nodeSlug,
    maxConcurrency,
    resultRetentionMs: o.resultRetentionMs,
    logLimits: o.logLimits,
    log: (level, fields, message) => app.log[level](fields, message),
  });
  await jobs.init();

  app.get('/healthz', { config: { auth: 'none' } }, async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'));

  app.get('/readyz', { config: { auth: 'none' } }, async (_request, reply) => {
    const reasons = [await o.runner.check(), o.getBearerToken() === null ? 'node not configured yet (no orchestrator token)' : null].filter((r) => r !== null);
    return reply
      .code(reasons.length ? 503 : 200)
      .type('text/plain; charset=utf-8')
      .send(reasons.length ? reasons.join('; ') : 'ready');
  });

  // A literal ':' in a Fastify path is written '::'.
  app.post('/v1/worker/jobs::run', { schema: { body: JobRunRequest } }, async (request, reply) => {
    const { task_id, job_id, sandbox, log_after } = request.body;
    if (DOTS_ONLY.test(task_id) || DOTS_ONLY.test(job_id)) throw badRequest('task_id and job_id must not consist of dots only');
    const policy = sandbox.network_policy;
    if (policy !== undefined && policy !== '' && !(NETWORK_POLICIES as readonly string[]).includes(policy)) {
      throw badRequest(`sandbox.network_policy must be one of: ${NETWORK_POLICIES.join(', ')} (or absent); this node has no other network`, {
        allowed: NETWORK_POLICIES,
      });
    }
    const timeoutSeconds = Math.min(sandbox.timeout_seconds ?? defaultTimeout, maxTimeout);
    const image = sandbox.image ?? o.defaultImage;
    const spec = {
      taskId: task_id,
      jobId: job_id,
      image,
      command: sandbox.command,
      env: sandbox.env ?? {},
      timeoutSeconds,
      files: sandbox.files ?? {},
      useInference: sandbox.use_inference === true,
    };
    const stream = wantsStream(request) ? new JobStream(reply, o.streamHeartbeatMs ?? JOB_STREAM_HEARTBEAT_MS) : undefined;
    let result;
    let followed: FollowedJob | undefined;
    try {
      if (stream) followed = jobs.follow(spec, log_after ?? 0, (line) => stream.write({ type: 'log', ...line }));
      else result = jobs.submit(spec);
    } catch (err) {
      if (err instanceof AtCapacityError) throw tooManyRequests(`${err.message}; retry later`, RETRY_AFTER_SECONDS);
      if (err instanceof ClosedError) throw new HttpProblem(503, 'the node manager is stopping; retry shortly', {}, { 'retry-after': String(RETRY_AFTER_SECONDS) });
      throw err;
    }
    request.log.info({ job_id, task_id, image, timeout_seconds: timeoutSeconds, use_inference: spec.useInference, ...(stream ? { streamed: true, log_after } : {}) }, 'job requested');
    if (stream && followed) return await stream.serve(request, followed);
    return await result;
  });

  app.post('/v1/worker/jobs::stop', { schema: { body: JobStopRequest } }, async (request): Promise<JobStopResult> => {
    const status = await jobs.stop(request.body.job_id);
    request.log.info({ job_id: request.body.job_id, status }, 'job stop requested');
    return { version: 1, job_id: request.body.job_id, status };
  });

  jobControlRoutes(app, o.runner);

  app.post('/v1/worker/admin/stop-all-orchestrator-directed', { schema: { body: Strict({ version: Type.Literal(1) }) } }, async (request) => {
    const stopped = await jobs.stopAll();
    request.log.info({ stopped_jobs: stopped }, 'stop-all requested by the orchestrator');
    // No managed services run on nodes yet; the field is part of the contract.
    return { version: 1, node_slug: o.nodeSlug, stopped_jobs: stopped, stopped_services: [] };
  });

  processRoutes(app, { runningJobIds: () => jobs.runningJobIds() });

  const inference = inferenceRoutes(app, { ollamaUrl: o.ollamaUrl ?? (() => DEFAULT_OLLAMA_URL) });

  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    async close() {
      // Jobs first: the HTTP server's close waits for the requests that wait for them.
      await jobs.close();
      // Streams to Ollama next: an answer still streaming would keep the server from closing.
      inference.close();
      await app.close();
      // Nothing of the node's jobs may outlive it: wait for the removals still under way.
      await o.runner.settled();
    },
    runningJobIds: () => jobs.runningJobIds(),
    stopAll: () => jobs.stopAll(),
  };
}

function wantsStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').toLowerCase().includes(JOB_STREAM_CONTENT_TYPE);
}

/**
 * A jobs:run answered as NDJSON (contract: JobStreamEntry). Lines handed over before serve()
 * (the kept ones, replayed at once) are written behind the headers; the stream ends with the
 * result. A caller that goes away stops following; its job runs on.
 */
class JobStream {
  private opened = false;
  private readonly early: JobStreamEntry[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private followed: FollowedJob | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly heartbeatMs: number,
  ) {}

  write(entry: JobStreamEntry): void {
    if (!this.opened) {
      this.early.push(entry);
      return;
    }
    const raw = this.reply.raw;
    if (raw.destroyed || raw.writableEnded) return;
    raw.write(`${JSON.stringify(entry)}\n`);
    this.heartbeat?.refresh();
    if (raw.writableLength > MAX_UNREAD_STREAM_BYTES) {
      this.reply.log.warn({ unread_bytes: raw.writableLength }, 'streaming caller does not read its job output; cutting the stream');
      raw.destroy();
    }
  }

  async serve(request: FastifyRequest, followed: FollowedJob): Promise<FastifyReply> {
    this.followed = followed;
    const raw = this.reply.raw;
    raw.once('close', () => this.stop());
    this.reply.hijack();
    raw.writeHead(200, {
      ...(this.reply.getHeaders() as Record<string, string>),
      'content-type': `${JOB_STREAM_CONTENT_TYPE}; charset=utf-8`,
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    raw.socket?.setNoDelay(true);
    this.opened = true;
    // Every write re-arms it, the heartbeat's own included: one beat per quiet interval.
    this.heartbeat = setTimeout(() => this.write({ type: 'heartbeat' }), this.heartbeatMs);
    for (const entry of this.early.splice(0)) this.write(entry);

    try {
      const { result, lastSeq, dropped } = await followed.done;
      this.write({ type: 'result', result, last_seq: lastSeq, dropped });
      if (!raw.destroyed) raw.end();
    } catch (err) {
      // Headers are out: the only way left to say "failed" is to break the body off.
      request.log.error({ err }, 'streamed job answer failed');
      raw.destroy();
    } finally {
      this.stop();
    }
    return this.reply;
  }

  private stop(): void {
    clearTimeout(this.heartbeat);
    // refresh() would bring a cleared timer back.
    this.heartbeat = undefined;
    this.followed?.unfollow();
  }
}
