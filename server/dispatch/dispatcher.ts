import { randomUUID } from 'node:crypto';
import { Wakeup } from '../lib/wakeup';
import type { Db } from '../db';
import type { JobRunResult } from '../../node-manager/contract/worker-api';
import { JOBS_CHANNEL, type JobControl } from '../tasks/service';
import {
  assignJob,
  cancelQueuedJob,
  claimableJobs,
  dispatchableNodeLoads,
  endRunningJob,
  failQueuedJob,
  inFlightStates,
  lockDispatch,
  releaseHolds,
  renewHolds,
  takeOrphanedJobs,
  type AttemptEntry,
  type ClosedTask,
  type RunningJob,
} from './store';
import { NodeClient, type NodeTarget } from '../nodes/node-client';
import { inferenceNodes, workerApiTarget } from '../nodes/queries';
import { redactAll } from '../redaction/redaction';
import { leastLoaded, lostOn, pickInferenceNode } from './placement';
import { Reaper } from './reaper';
import { SandboxJobs } from './sandbox-jobs';
import { PromptJobs } from './prompt-jobs';
import { message, timeoutOf, type DispatchLogger, type JobOutcome, type LeasedJobs } from './job-call';
import type { Ledger } from '../runs/ledger';

export { NO_INFERENCE_REASON } from './placement';

/** What the dispatcher needs from the node registry besides the nodes table. */
export interface NodeDirectory {
  /** The bearer token of the node's Worker API, opened from the vault; null when it has none. */
  workerToken(nodeId: string): Promise<string | null>;
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
  /**
   * Told of each task this process closed as completed or failed (a normal end, no node or no
   * inference path, a job lost for good), after the transaction committed. It must not block:
   * the dispatch loop waits for it (events out through connectors deliver in the background).
   */
  onTaskClosed?: (closed: ClosedTask) => void;
}

const RENEW_EVERY_MS = 10_000;
/** While a canceled task's job is still open here, ask its node to stop it again this often. */
const RESTOP_EVERY_MS = 2_000;

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
 *
 * The node is chosen in placement.ts, sandbox jobs are called in sandbox-jobs.ts (their log lines
 * stored by job-logs.ts), prompt jobs in prompt-jobs.ts, and lost jobs taken back in reaper.ts.
 */
export class Dispatcher implements JobControl {
  /** This process's identity in `jobs.held_by`. */
  readonly id = randomUUID();
  private readonly db: Db;
  private readonly nodes: NodeDirectory;
  /** The logger `start` was given; `log` forwards to it, so the parts built earlier use it too. */
  private sink: DispatchLogger = silent;
  private readonly log: DispatchLogger = {
    info: (obj, msg) => this.sink.info(obj, msg),
    warn: (obj, msg) => this.sink.warn(obj, msg),
    error: (obj, msg) => this.sink.error(obj, msg),
  };
  private readonly client: NodeClient;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly graceSeconds: number;
  private readonly inference: NodeClient | undefined;
  private readonly reaper: Reaper;
  private readonly sandboxJobs: SandboxJobs;
  private readonly promptJobs: PromptJobs;
  private readonly onTaskClosed: ((closed: ClosedTask) => void) | undefined;

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
    this.onTaskClosed = opts.onTaskClosed;
    const leased: LeasedJobs = { end: (job, o) => this.end(job, o), lose: (job, detail) => this.lose(job, detail), target: (nodeId) => this.target(nodeId) };
    this.reaper = new Reaper(this.db, this.id, this.log, (closed) => this.closed(closed));
    this.sandboxJobs = new SandboxJobs(this.db, this.client, leased, this.log, opts.ledger);
    this.promptJobs = new PromptJobs(this.db, leased, this.log, opts.inference);
  }

  /** Starts the loop; from now on it reports to `log` (the gateway's logger in the app). */
  async start(log?: DispatchLogger): Promise<void> {
    if (this.running) return;
    if (log) this.sink = log;
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
        // The generation is the job: stopping it is aborting the call (PromptJobs.run ends it canceled).
        f.abort.abort();
      } else if (s.task_closed && Date.now() - f.lastStopAt >= RESTOP_EVERY_MS) {
        f.lastStopAt = Date.now();
        this.sendStop(f.jobId, f.taskId, f.nodeId);
      }
    }
  }

  /** Jobs on stale or deleted nodes, or with an expired lease: requeue, or fail them. */
  private async reapLost(): Promise<void> {
    const { ended, requeued } = await this.reaper.reap(this.batchSize);
    for (const id of ended) this.inflight.get(id)?.abort.abort();
    if (requeued) this.wakeup.wake();
  }

  /** The node lost a job it was running (see `Reaper.lose`); a requeued job is dispatched at once. */
  private async lose(job: RunningJob, detail: string): Promise<void> {
    if (await this.reaper.lose(job, detail)) this.wake();
  }

  /** Leases queued jobs to nodes (or fails those that cannot run), then calls the nodes. */
  private async claim(): Promise<void> {
    const started: RunningJob[] = [];
    let progressed = false;
    let full = false;
    const closed: ClosedTask[] = [];
    await this.db.transaction(async (tx) => {
      closed.length = 0;
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
            await failQueuedJob(tx, { jobId: job.id, taskId: job.task_id, code: choice.code, reason: choice.reason }, closed);
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
            await failQueuedJob(tx, { jobId: job.id, taskId: job.task_id, code: 'no_dispatchable_node', reason }, closed);
            progressed = true;
          }
          // Otherwise every dispatchable node is busy: the job waits, oldest first.
        }
      }
    });
    this.closed(closed);
    for (const job of started) this.launch(job);
    if (full && progressed) this.wakeup.wake();
  }

  private launch(job: RunningJob): void {
    if (this.inflight.has(job.id)) return;
    const f: InFlight = { jobId: job.id, kind: job.kind, taskId: job.task_id, nodeId: job.node_id, leaseId: job.lease_id, abort: new AbortController(), lastStopAt: 0, done: Promise.resolve() };
    this.inflight.set(job.id, f);
    f.done = (job.kind === 'inference' ? this.promptJobs.run(job, f.abort.signal) : this.sandboxJobs.run(job, f.abort.signal))
      .catch((err: unknown) => this.log.error({ job_id: job.id, err: message(err) }, 'dispatching a job failed; its lease decides what happens next'))
      .finally(() => {
        if (this.inflight.get(job.id) === f) this.inflight.delete(job.id);
      });
  }

  /** Records how a job ended (its output redacted), only under the lease the call was made with. */
  private async end(job: RunningJob, o: JobOutcome): Promise<void> {
    const entry: AttemptEntry = { attempt: job.attempt, node_id: job.node_id, outcome: o.outcome, at: new Date().toISOString(), by: this.id, ...(o.detail ? { detail: o.detail.slice(0, 500) } : {}) };
    const result = o.result && (await redactedOutput(o.result));
    const closed: ClosedTask[] = [];
    const recorded = await this.db.transaction((tx) => {
      closed.length = 0;
      return endRunningJob(tx, { jobId: job.id, leaseId: job.lease_id, status: o.status, result: result as Record<string, unknown> | null, failureCode: o.failureCode, reason: o.reason, entry, lines: o.lines }, closed);
    });
    this.closed(closed);
    if (!recorded) this.log.info({ job_id: job.id, lease_id: job.lease_id }, "ignored a result: the job's lease had moved on (requeued, taken over or ended)");
  }

  /** Tells the listener of tasks closed by a committed transaction; its failures stay its own. */
  private closed(tasks: ClosedTask[]): void {
    for (const t of tasks) {
      try {
        this.onTaskClosed?.(t);
      } catch (err) {
        this.log.error({ task_id: t.taskId, err: message(err) }, 'a task-closed listener failed');
      }
    }
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

  private target(nodeId: string): Promise<NodeTarget | null> {
    return workerApiTarget(this.db, nodeId, (id) => this.nodes.workerToken(id));
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
 * A job's output is stored redacted, as its log lines are (the lines are made from it when they
 * were not streamed): whole, so that a secret over several lines is seen.
 */
async function redactedOutput(r: JobRunResult): Promise<JobRunResult> {
  const out = await redactAll([r.stdout ?? '', r.stderr ?? ''], { remember: false });
  return { ...r, stdout: out.texts[0]!, stderr: out.texts[1]! };
}
