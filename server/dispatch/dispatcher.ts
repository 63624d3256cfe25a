import { randomUUID } from 'node:crypto';
import { setTimeout as timeout } from 'node:timers/promises';
import { Wakeup } from '../lib/wakeup';
import type { Db, Queryable } from '../db';
import type { JobRunRequest, JobRunResult, SandboxSpec } from '../../node-manager/contract/worker-api';
import { JOBS_CHANNEL, type JobControl } from '../tasks/service';
import {
  LEASE_GRACE_SECONDS,
  assignJob,
  cancelQueuedJob,
  claimableJobs,
  dispatchableNodeLoads,
  endLostJob,
  endRunningJob,
  failQueuedJob,
  inFlightStates,
  leaseAlive,
  lockDispatch,
  lockLeasedJob,
  lostJobs,
  releaseHolds,
  renewHolds,
  requeueJob,
  takeOrphanedJobs,
  taskPrompt,
  type AttemptEntry,
  type JobEnd,
  type LostJob,
  type RunningJob,
} from './store';
import { NodeCallError, NodeClient, type NodeTarget } from '../nodes/node-client';
import { inferenceNodes, nodeTarget } from '../nodes/queries';
import { redact, redactAll } from '../redaction/redaction';
import { JobLogs } from './job-logs';
import { leastLoaded, lostOn, pickInferenceNode } from './placement';
import type { Ledger } from '../runs/ledger';
import type { NewRunEvent } from '../runs/record';

export { NO_INFERENCE_REASON } from './placement';

/** What the dispatcher needs from the node registry besides the nodes table. */
export interface NodeDirectory {
  /** The bearer token of the node's Worker API, opened from the vault; null when it has none. */
  workerToken(nodeId: string): Promise<string | null>;
}

/** pino's shape (Fastify's logger fits); nothing here ever logs a token. */
export interface DispatchLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DispatcherOptions {
  db: Db;
  nodes: NodeDirectory;
  /** A queued job fails with no_dispatchable_node after waiting this long with no node at all. */
  noNodeGraceSeconds: number;
  client?: NodeClient;
  /** The loop runs at least this often (NOTIFY wakes it sooner). */
  pollIntervalMs?: number;
  /** Jobs claimed per transaction. */
  batchSize?: number;
  /** Answers prompt tasks on nodes serving inference; without it they fail with no_inference_path. */
  inference?: NodeClient;
  /** Where a sandbox job's output lines go as the node streams them; without it they arrive with the result. */
  ledger?: Ledger;
}

const DEFAULT_TIMEOUT_SECONDS = 600;
const RENEW_EVERY_MS = 10_000;
/** While a canceled task's job is still open here, ask its node to stop it again this often. */
const RESTOP_EVERY_MS = 2_000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5_000;

interface InFlight {
  jobId: string;
  kind: 'sandbox' | 'inference';
  taskId: string;
  nodeId: string | null;
  leaseId: string;
  abort: AbortController;
  lastStopAt: number;
  done: Promise<void>;
}

const silent: DispatchLogger = { info() {}, warn() {}, error() {} };

/**
 * Moves jobs from the queue (the `jobs` table) to nodes and results back, one instance per
 * orchestrator process; several processes on one PostgreSQL cooperate through row locks,
 * leases and holds:
 *
 * - claim: queued jobs are taken with FOR UPDATE SKIP LOCKED and leased to the least loaded
 *   dispatchable node with a free slot; the Worker API call happens after the commit, and this
 *   process renews its hold (`held_by`/`held_until`) while it waits;
 * - results are written only while the job's lease is the one the call was made under, so the
 *   late answer of an attempt that was given up on changes nothing;
 * - node loss: a running job whose node went stale (missed heartbeats), was deleted, or whose
 *   lease ran out is requeued for another node up to `max_attempts`, then failed `node_lost`;
 * - restart: a running job whose holder stopped renewing is taken over by any dispatcher, which
 *   calls the same node again with the same job_id (the node runs a job_id once and answers
 *   with its result), so an orchestrator restart loses no work;
 * - cancel: the task service closes the task and asks (through `stopJobs`) the node to stop
 *   the container; the open jobs:run then answers `canceled`.
 */
export class Dispatcher implements JobControl {
  /** This process's identity in `jobs.held_by`. */
  readonly id = randomUUID();
  private readonly db: Db;
  private readonly nodes: NodeDirectory;
  private log: DispatchLogger = silent;
  private readonly client: NodeClient;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly graceSeconds: number;
  private readonly inference: NodeClient | undefined;
  private readonly ledger: Ledger | undefined;

  private running = false;
  private loop: Promise<void> | undefined;
  private readonly wakeup = new Wakeup();
  private unlisten: (() => Promise<void>) | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Map<string, InFlight>();
  private readonly stops = new Set<Promise<void>>();
  /** Aborts stop calls still open when the dispatcher stops. */
  private closing = new AbortController();

  constructor(opts: DispatcherOptions) {
    this.db = opts.db;
    this.nodes = opts.nodes;
    this.client = opts.client ?? opts.inference ?? new NodeClient();
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.batchSize = opts.batchSize ?? 32;
    this.graceSeconds = opts.noNodeGraceSeconds;
    this.inference = opts.inference;
    this.ledger = opts.ledger;
  }

  /** Starts the loop; from now on it reports to `log` (the gateway's logger in the app). */
  async start(log?: DispatchLogger): Promise<void> {
    if (this.running) return;
    if (log) this.log = log;
    this.running = true;
    this.closing = new AbortController();
    this.unlisten = await this.db.listen(JOBS_CHANNEL, () => this.wake());
    this.renewTimer = setInterval(() => void this.renew(), RENEW_EVERY_MS);
    this.renewTimer.unref();
    this.loop = this.run();
  }

  /**
   * Stops claiming, drops the open Worker API calls (the nodes keep running their jobs) and
   * releases this process's holds so that another dispatcher, or this one after a restart,
   * re-attaches to those jobs at once. Resolves when nothing of it touches the database any more.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    clearInterval(this.renewTimer);
    await this.loop;
    await this.unlisten?.().catch(() => {});
    this.closing.abort();
    for (const f of this.inflight.values()) f.abort.abort();
    await Promise.allSettled([...[...this.inflight.values()].map((f) => f.done), ...this.stops]);
    await releaseHolds(this.db, this.id).catch((err: unknown) => this.log.warn({ err: message(err) }, 'could not release job holds; another dispatcher takes them over when they expire'));
  }

  /** Run a dispatch round now rather than at the next poll. */
  wake(): void {
    this.wakeup.wake();
  }

  /** JobControl: asks the nodes running these jobs to stop them (best effort, asynchronous). */
  stopJobs(jobs: ReadonlyArray<{ id: string; taskId: string; nodeId: string | null }>): void {
    for (const j of jobs) {
      const f = this.inflight.get(j.id);
      if (f) f.lastStopAt = Date.now();
      this.sendStop(j.id, j.taskId, j.nodeId);
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.wakeup.begin();
      try {
        await this.tick();
      } catch (err) {
        this.log.error({ err: message(err) }, 'dispatch round failed; retrying');
      }
      if (this.running) await this.wakeup.pause(this.pollIntervalMs);
    }
  }

  /** One round: follow the calls in flight, take back lost jobs, adopt orphans, claim new work. */
  private async tick(): Promise<void> {
    await this.followInFlight();
    await this.reapLost();
    if (!this.running) return;
    for (const job of await takeOrphanedJobs(this.db, this.id, this.batchSize)) {
      this.log.info({ job_id: job.id, node_id: job.node_id }, 're-attaching to a running job whose dispatcher stopped');
      this.launch(job);
    }
    if (!this.running) return;
    await this.claim();
  }

  /**
   * Drops local calls for jobs that moved on (requeued after a node loss, taken over, ended), and
   * keeps asking nodes to stop jobs of canceled tasks while their call is open here: a stop that
   * reached the node before the job did finds nothing to stop.
   */
  private async followInFlight(): Promise<void> {
    if (this.inflight.size === 0) return;
    const states = new Map((await inFlightStates(this.db, [...this.inflight.keys()])).map((s) => [s.id, s]));
    for (const f of this.inflight.values()) {
      const s = states.get(f.jobId);
      if (!s || s.status !== 'running' || s.lease_id !== f.leaseId || s.held_by !== this.id) {
        f.abort.abort();
      } else if (s.task_closed && f.kind === 'inference') {
        // The generation is the job: stopping it is aborting the call (callInference ends it canceled).
        f.abort.abort();
      } else if (s.task_closed && Date.now() - f.lastStopAt >= RESTOP_EVERY_MS) {
        f.lastStopAt = Date.now();
        this.sendStop(f.jobId, f.taskId, f.nodeId);
      }
    }
  }

  /** Jobs on stale or deleted nodes, or with an expired lease: requeue, or fail them. */
  private async reapLost(): Promise<void> {
    const ended: string[] = [];
    let requeued = false;
    await this.db.transaction(async (tx) => {
      for (const job of await lostJobs(tx, this.batchSize)) {
        const what = await this.settleLost(tx, job, job.node_lost ? 'node_lost' : 'lease_expired');
        requeued ||= what === 'requeued';
        ended.push(job.id);
      }
    });
    for (const id of ended) this.inflight.get(id)?.abort.abort();
    if (requeued) this.wakeup.wake();
  }

  /**
   * A running job lost its node (stale, deleted, the lease ran out, or the node said it was
   * interrupted): back to the queue for another node while attempts remain, else failed with
   * a reason naming the node; a job of a canceled task just ends canceled.
   */
  private async settleLost(tx: Queryable, job: LostJob, outcome: 'node_lost' | 'lease_expired', detail?: string): Promise<'requeued' | 'failed' | 'canceled'> {
    const entry: AttemptEntry = { attempt: job.attempt, node_id: job.node_id, outcome, at: new Date().toISOString(), by: this.id, ...(detail ? { detail: detail.slice(0, 500) } : {}) };
    const node = job.node_slug ? `node "${job.node_slug}"` : 'a node that was since removed';
    let what: 'requeued' | 'failed' | 'canceled';
    if (job.task_closed) {
      await endLostJob(tx, { jobId: job.id, taskId: job.task_id, status: 'canceled', code: null, reason: 'canceled', entry });
      what = 'canceled';
    } else if (job.attempt < job.max_attempts) {
      await requeueJob(tx, job.id, entry);
      what = 'requeued';
    } else {
      const why =
        outcome === 'lease_expired'
          ? `${node} gave no result within the job's time limit plus ${LEASE_GRACE_SECONDS} s`
          : detail
            ? `${node} was interrupted while running it (it stopped or restarted)`
            : `${node} stopped sending heartbeats while running it`;
      await endLostJob(tx, { jobId: job.id, taskId: job.task_id, status: 'failed', code: outcome, reason: `The job was lost: ${why}; it was tried ${job.attempt} time(s), the limit.`, entry });
      what = 'failed';
    }
    this.log.warn({ job_id: job.id, task_id: job.task_id, node_id: job.node_id, attempt: job.attempt, outcome, then: what, ...(detail ? { detail } : {}) }, 'job lost its node');
    return what;
  }

  /** The node answered that it was interrupted (it stopped or restarted mid-job): as a node loss. */
  private async loseJob(job: RunningJob, detail: string): Promise<void> {
    const what = await this.db.transaction(async (tx) => {
      const locked = await lockLeasedJob(tx, job.id, job.lease_id);
      return locked ? this.settleLost(tx, locked, 'node_lost', detail) : null;
    });
    if (what === 'requeued') this.wake();
  }

  /** Leases queued jobs to nodes (or fails those that cannot run), then calls the nodes. */
  private async claim(): Promise<void> {
    const started: RunningJob[] = [];
    let progressed = false;
    let full = false;
    await this.db.transaction(async (tx) => {
      await lockDispatch(tx);
      const jobs = await claimableJobs(tx, this.batchSize);
      full = jobs.length === this.batchSize;
      if (jobs.length === 0) return;
      const nodes = jobs.some((j) => j.kind === 'sandbox' && !j.task_closed) ? await dispatchableNodeLoads(tx) : [];
      const answering = this.inference && jobs.some((j) => j.kind === 'inference' && !j.task_closed) ? await inferenceNodes(tx) : [];
      for (const job of jobs) {
        if (job.task_closed) {
          await cancelQueuedJob(tx, job.id);
          progressed = true;
        } else if (job.kind === 'inference') {
          const choice = pickInferenceNode(answering, job);
          if ('node' in choice) {
            started.push(await assignJob(tx, { jobId: job.id, nodeId: choice.node.id, timeoutSeconds: timeoutOf(job.payload), holder: this.id }));
            choice.node.running++;
          } else {
            await failQueuedJob(tx, { jobId: job.id, taskId: job.task_id, code: choice.code, reason: choice.reason });
          }
          progressed = true;
        } else {
          // A node that lost this job once answers for its job_id with that loss again (it never
          // runs a job_id twice): the retry goes elsewhere.
          const lost = lostOn(job);
          const eligible = nodes.filter((n) => !lost.has(n.id));
          const node = leastLoaded(eligible);
          if (node) {
            const timeoutSeconds = timeoutOf(job.payload);
            started.push(await assignJob(tx, { jobId: job.id, nodeId: node.id, timeoutSeconds, holder: this.id }));
            node.running++;
            progressed = true;
          } else if (eligible.length === 0 && job.waited_seconds >= this.graceSeconds) {
            const reason =
              `No node could run this job: none has been available for ${Math.floor(job.waited_seconds)} s. A node must be registered, active ` +
              '(sending heartbeats), enabled, have applied its configuration and support sandboxes.';
            await failQueuedJob(tx, { jobId: job.id, taskId: job.task_id, code: 'no_dispatchable_node', reason });
            progressed = true;
          }
          // Otherwise every dispatchable node is busy: the job waits, oldest first.
        }
      }
    });
    for (const job of started) this.launch(job);
    if (full && progressed) this.wakeup.wake();
  }

  private launch(job: RunningJob): void {
    if (this.inflight.has(job.id)) return;
    const f: InFlight = { jobId: job.id, kind: job.kind, taskId: job.task_id, nodeId: job.node_id, leaseId: job.lease_id, abort: new AbortController(), lastStopAt: 0, done: Promise.resolve() };
    this.inflight.set(job.id, f);
    f.done = (job.kind === 'inference' ? this.callInference(job, f) : this.callNode(job, f))
      .catch((err: unknown) => this.log.error({ job_id: job.id, err: message(err) }, 'dispatching a job failed; its lease decides what happens next'))
      .finally(() => {
        if (this.inflight.get(job.id) === f) this.inflight.delete(job.id);
      });
  }

  /**
   * POST jobs:run and wait for the result. Transient failures are retried with the same job_id
   * (the node runs it at most once) while the lease holds and the node is not stale; after that
   * the job is the lost-job sweep's to requeue or fail.
   */
  private async callNode(job: RunningJob, f: InFlight): Promise<void> {
    const timeoutSeconds = timeoutOf(job.payload);
    const request: JobRunRequest = { version: 1, task_id: job.task_id, job_id: job.id, sandbox: sandboxOf(job.payload) };
    const logs = this.ledger ? await JobLogs.open(this.db, this.ledger, job.id) : undefined;
    let delay = RETRY_FIRST_MS;
    for (;;) {
      if (f.abort.signal.aborted) return;
      let result: JobRunResult;
      try {
        const target = job.node_id ? await this.target(job.node_id) : null;
        if (!target) {
          // Deleted node: the sweep sees it on its next round. Missing URL or token cannot heal.
          if (job.node_id && (await nodeTarget(this.db, job.node_id))) {
            await this.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node has no Worker API address or token on record.', outcome: 'worker_error' });
          }
          return;
        }
        if (logs) request.log_after = logs.lastSeq;
        result = await this.client.run(target, request, { signal: f.abort.signal, timeoutMs: (timeoutSeconds + LEASE_GRACE_SECONDS) * 1000, onLog: logs?.onLog });
        await logs?.settled();
      } catch (err) {
        if (f.abort.signal.aborted) return;
        if (err instanceof NodeCallError && err.transient) {
          if (!(await leaseAlive(this.db, job.id, job.lease_id))) return;
          this.log.warn({ job_id: job.id, node_id: job.node_id, err: err.message, retry_in_ms: delay }, 'Worker API call failed; retrying the same job');
          await sleep(delay, f.abort.signal);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
          continue;
        }
        // What the node said, and its address, are for the admin's log; the task's owner gets the fact.
        const detail = message(err);
        this.log.warn({ job_id: job.id, node_id: job.node_id, err: detail }, 'the node refused the job');
        await this.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node refused the job; an admin finds the details in the server log.', outcome: 'worker_error', detail });
        return;
      }
      if (interrupted(result)) {
        this.log.warn({ job_id: job.id, node_id: job.node_id }, 'the node was interrupted while running the job');
        await this.loseJob(job, result.stderr);
        return;
      }
      if (result.job_id !== job.id) {
        await this.end(job, { status: 'failed', result: null, failureCode: 'worker_error', reason: 'The node answered for another job.', outcome: 'worker_error' });
        return;
      }
      const outcome = outcomeOf(result, timeoutSeconds);
      if (outcome.failureCode === 'sandbox_error') this.log.warn({ job_id: job.id, node_id: job.node_id, err: result.stderr.slice(0, 500) }, 'the sandbox could not start');
      await this.end(job, { ...outcome, lines: logs?.streamed ? [] : undefined });
      return;
    }
  }

  /**
   * A prompt task's job: the prompt, redacted, as one user message to the node's Ollama (not
   * streamed to anyone, so the whole answer is awaited); the answer becomes the job's stdout.
   * Transient failures before any answer are retried on the same node while the lease holds;
   * the lost-job sweep moves the job elsewhere when the node goes away.
   */
  private async callInference(job: RunningJob, f: InFlight): Promise<void> {
    const timeoutSeconds = timeoutOf(job.payload);
    const startedAt = new Date().toISOString();
    const node = job.node_id ? (await inferenceNodes(this.db)).find((n) => n.id === job.node_id) : undefined;
    const model = typeof job.payload.model === 'string' ? job.payload.model : node?.models[0];
    if (!node || !model || !this.inference) {
      // The node stopped serving inference since the claim: like losing it.
      await this.loseJob(job, 'the node no longer serves inference');
      return;
    }
    const prompt = (await redact((await taskPrompt(this.db, job.task_id)) ?? '')).text;
    const deadline = AbortSignal.timeout(timeoutSeconds * 1000);
    const signal = AbortSignal.any([f.abort.signal, deadline]);
    let delay = RETRY_FIRST_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const target = await this.target(node.id);
        if (!target) throw new NodeCallError('the node has no Worker API address or token on record', false);
        const answer = await this.inference.chat(target, { model, messages: [{ role: 'user', content: prompt }], stream: true }, { signal });
        const result = {
          version: 1 as const,
          task_id: job.task_id,
          job_id: job.id,
          status: 'completed' as const,
          exit_code: 0,
          stdout: answer.content,
          stderr: '',
          started_at: startedAt,
          ended_at: new Date().toISOString(),
          truncated: { stdout: false, stderr: false },
          node_slug: node.node_slug,
          model,
          usage: { prompt_tokens: answer.promptTokens, completion_tokens: answer.completionTokens },
        };
        await this.end(job, { status: 'completed', result, failureCode: null, reason: null, outcome: 'completed' });
        return;
      } catch (err) {
        if (deadline.aborted && !f.abort.signal.aborted) {
          await this.end(job, { status: 'failed', result: null, failureCode: 'timeout', reason: `timed out after ${timeoutSeconds} s`, outcome: 'timeout' });
          return;
        }
        if (f.abort.signal.aborted) {
          // Aborted because the task was canceled (or the job moved on): record the cancel if it is still ours.
          const [state] = await inFlightStates(this.db, [job.id]);
          if (state?.task_closed && state.status === 'running' && state.lease_id === job.lease_id) {
            await this.end(job, { status: 'canceled', result: null, failureCode: null, reason: 'The task was canceled.', outcome: 'canceled' });
          }
          return;
        }
        const detail = message(err);
        if (err instanceof NodeCallError && err.transient && attempt < 3 && (await leaseAlive(this.db, job.id, job.lease_id))) {
          this.log.warn({ job_id: job.id, node_id: node.id, err: detail, retry_in_ms: delay }, 'inference call failed; retrying');
          await sleep(delay, signal);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
          continue;
        }
        this.log.warn({ job_id: job.id, node_id: node.id, err: detail }, 'inference failed');
        await this.end(job, { status: 'failed', result: null, failureCode: 'inference_failed', reason: `Inference failed on node "${node.node_slug}"; an admin finds the details in the server log.`, outcome: 'inference_failed', detail });
        return;
      }
    }
  }

  private async end(
    job: RunningJob,
    o: { status: JobEnd['status']; result: JobRunResult | null; failureCode: string | null; reason: string | null; outcome: string; detail?: string; lines?: NewRunEvent[] },
  ): Promise<void> {
    const entry: AttemptEntry = { attempt: job.attempt, node_id: job.node_id, outcome: o.outcome, at: new Date().toISOString(), by: this.id, ...(o.detail ? { detail: o.detail.slice(0, 500) } : {}) };
    const result = o.result && (await redactedOutput(o.result));
    const recorded = await this.db.transaction((tx) =>
      endRunningJob(tx, { jobId: job.id, leaseId: job.lease_id, status: o.status, result: result as Record<string, unknown> | null, failureCode: o.failureCode, reason: o.reason, entry, lines: o.lines }),
    );
    if (!recorded) this.log.info({ job_id: job.id, lease_id: job.lease_id }, "ignored a result: the job's lease had moved on (requeued, taken over or ended)");
  }

  private sendStop(jobId: string, taskId: string, nodeId: string | null): void {
    if (!nodeId) return;
    const p = (async () => {
      const target = await this.target(nodeId);
      if (!target) return;
      const r = await this.client.stop(target, { version: 1, task_id: taskId, job_id: jobId }, { signal: this.closing.signal, timeoutMs: 10_000 });
      this.log.info({ job_id: jobId, node_id: nodeId, status: r.status }, 'asked the node to stop a job');
    })().catch((err: unknown) => this.log.warn({ job_id: jobId, node_id: nodeId, err: message(err) }, 'could not ask the node to stop a job'));
    this.stops.add(p);
    void p.finally(() => this.stops.delete(p));
  }

  private async target(nodeId: string): Promise<NodeTarget | null> {
    const node = await nodeTarget(this.db, nodeId);
    if (!node?.worker_api_target_url) return null;
    const token = await this.nodes.workerToken(nodeId);
    return token ? { url: node.worker_api_target_url, token } : null;
  }

  private async renew(): Promise<void> {
    try {
      await renewHolds(this.db, this.id, [...this.inflight.keys()]);
    } catch (err) {
      this.log.warn({ err: message(err) }, 'could not renew job holds');
    }
  }
}

/**
 * The node's way of saying "I stopped (or restarted) while this job ran": failed, exit code -1,
 * stderr beginning `interrupted:` (node-manager/worker-api/job-table.ts). Not the job's failure
 * but the node's, so it is retried elsewhere. A structured flag in the contract would be better.
 */
function interrupted(r: JobRunResult): boolean {
  return r.status === 'failed' && r.exit_code === -1 && r.stderr.startsWith('interrupted:');
}

function timeoutOf(payload: Record<string, unknown>): number {
  const t = payload.timeout_seconds;
  return typeof t === 'number' && Number.isInteger(t) && t > 0 ? t : DEFAULT_TIMEOUT_SECONDS;
}

/** The Worker API sandbox spec from a job's payload (written by the task service). */
function sandboxOf(payload: Record<string, unknown>): SandboxSpec {
  const spec: SandboxSpec = { command: Array.isArray(payload.command) ? payload.command.map(String) : [], timeout_seconds: timeoutOf(payload) };
  if (typeof payload.image === 'string') spec.image = payload.image;
  if (typeof payload.network_policy === 'string') spec.network_policy = payload.network_policy;
  if (payload.env && typeof payload.env === 'object') spec.env = payload.env as Record<string, string>;
  if (payload.files && typeof payload.files === 'object') spec.files = payload.files as Record<string, string>;
  return spec;
}

/** How a node's answer ends the job, and the task's failure reason in words. */
function outcomeOf(r: JobRunResult, timeoutSeconds: number): { status: JobEnd['status']; result: JobRunResult; failureCode: string | null; reason: string | null; outcome: string } {
  switch (r.status) {
    case 'completed':
      return { status: 'completed', result: r, failureCode: null, reason: null, outcome: 'completed' };
    case 'timeout':
      return { status: 'failed', result: r, failureCode: 'timeout', reason: `timed out after ${timeoutSeconds} s`, outcome: 'timeout' };
    case 'canceled':
      return { status: 'canceled', result: r, failureCode: null, reason: 'The job was stopped on its node.', outcome: 'canceled' };
    default: {
      if (r.exit_code === -1) {
        return { status: 'failed', result: r, failureCode: 'sandbox_error', reason: "The sandbox could not start on its node; the job's stderr says why.", outcome: 'failed' };
      }
      return { status: 'failed', result: r, failureCode: 'exit_nonzero', reason: `exit code ${r.exit_code ?? 'unknown'}`, outcome: 'failed' };
    }
  }
}

/** Waits `ms`, or less when `signal` aborts (the caller checks the signal next). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> => timeout(ms, undefined, { signal }).catch(() => {});

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * A job's output is stored redacted, as its log lines are (the lines are made from it when they
 * were not streamed): whole, so that a secret over several lines is seen.
 */
async function redactedOutput(r: JobRunResult): Promise<JobRunResult> {
  const out = await redactAll([r.stdout ?? '', r.stderr ?? ''], { remember: false });
  return { ...r, stdout: out.texts[0]!, stderr: out.texts[1]! };
}
