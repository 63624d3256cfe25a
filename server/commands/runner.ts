import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import { appendEvents, type NewRunEvent } from '../runs/record';
import { isTerminal } from '../runs/status';
import type { RunRow } from '../runs/store';
import { cancelTaskIn } from '../tasks/cancel';
import type { JobControl } from '../tasks/service';
import { Wakeup } from '../lib/wakeup';
import { COMMANDS_CHANNEL, claimCommands, openRunTree, releaseCommandClaims, runningJobOf, setRunPaused, settleCommand, type ClaimedCommand } from './store';

/** How long a runner's claim on a command holds; one that dies mid-way delays the command this long. */
const LEASE_SECONDS = 30;
const BATCH = 50;

/** Freezing and thawing a job's sandbox on its node (./sandbox-control.ts). */
export interface SandboxControl {
  pause(job: { id: string; taskId: string; nodeId: string }): Promise<'paused' | 'running' | 'not_running'>;
  resume(job: { id: string; taskId: string; nodeId: string }): Promise<'paused' | 'running' | 'not_running'>;
}

/** pino's shape (Fastify's logger fits). */
export interface RunnerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
const silent: RunnerLogger = { info() {}, warn() {}, error() {} };

export interface CommandRunnerOptions {
  db: Db;
  jobs: JobControl;
  sandboxes: SandboxControl;
  /** The loop runs at least this often (a wake-up or NOTIFY runs it sooner). */
  pollIntervalMs?: number;
}

/** What the node did with a pause or resume: froze or thawed the sandbox, had none running, or failed. */
type NodeStep = { done: boolean } | { failed: string };

/** A command's outcome, decided while its run is locked. */
type Outcome = { state: 'applied'; events: NewRunEvent[]; after?: () => void } | { state: 'rejected'; reason: string };

class Rejected extends Error {}

/**
 * Applies accepted run commands, in seq order per run. Every
 * gateway process runs one; a command is claimed with a lease (SKIP LOCKED) so exactly one of
 * them applies it, and a run's next command becomes claimable only once the one before it is
 * settled. Its first round picks up whatever was accepted but not applied before a crash.
 *
 * Each outcome is written in one transaction with the command's state, a `command` event on the
 * run's ledger and an audit row; what it changes on a node (stopping, freezing a sandbox) happens
 * outside it: a freeze before, so a command the node refused is rejected; a stop after, like
 * POST /v1/tasks/{id}/cancel, retried by the dispatcher while the job runs.
 */
export class CommandRunner {
  readonly id = `commands:${randomUUID()}`;
  private readonly pollIntervalMs: number;
  private log: RunnerLogger = silent;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly wakeup = new Wakeup();
  private unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly o: CommandRunnerOptions) {
    this.pollIntervalMs = o.pollIntervalMs ?? 1000;
  }

  async start(log?: RunnerLogger): Promise<void> {
    if (this.running) return;
    if (log) this.log = log;
    this.running = true;
    this.unlisten = await this.o.db.listen(COMMANDS_CHANNEL, () => this.wake());
    this.loop = this.run();
  }

  /** Finishes the command in hand, then gives back its other claims so another runner takes them at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop;
    await this.unlisten?.().catch(() => {});
    await releaseCommandClaims(this.o.db, this.id).catch(() => {});
  }

  wake(): void {
    this.wakeup.wake();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.wakeup.begin();
      let applied = 0;
      try {
        applied = await this.round();
      } catch (err) {
        this.log.error({ err: message(err) }, 'command round failed; retrying');
      }
      // A run's next command is claimable only now that this round settled the one before it.
      if (this.running && applied === 0) await this.wakeup.pause(this.pollIntervalMs);
    }
  }

  private async round(): Promise<number> {
    const claimed = await claimCommands(this.o.db, this.id, LEASE_SECONDS, BATCH);
    for (const c of claimed) {
      if (!this.running) break;
      await this.apply(c);
    }
    return claimed.length;
  }

  private async apply(c: ClaimedCommand): Promise<void> {
    try {
      // Freezing happens on the node before the outcome is written: a refusal there rejects it.
      const prepared = await this.prepare(c);
      const after = await this.o.db.transaction(async (tx) => {
        const run = await lockRun(tx, c.run_id);
        let outcome: Outcome;
        try {
          outcome = await this.decide(tx, c, run, prepared);
        } catch (err) {
          if (!(err instanceof Rejected)) throw err;
          outcome = { state: 'rejected', reason: err.message };
        }
        await this.settle(tx, c, run, outcome);
        return outcome.state === 'applied' ? outcome.after : undefined;
      });
      after?.();
      this.log.info({ command_id: c.command_id, run_id: c.run_id, type: c.type }, 'run command settled');
    } catch (err) {
      this.log.error({ command_id: c.command_id, run_id: c.run_id, type: c.type, err: message(err) }, 'run command could not be applied');
      // A command that always fails must not block its run's later ones.
      await this.o.db
        .transaction(async (tx) => this.settle(tx, c, await lockRun(tx, c.run_id), { state: 'rejected', reason: 'the command could not be applied (internal error)' }))
        .catch(() => {});
    }
  }

  /** What must happen outside the database first: pausing or resuming the run's sandbox. */
  private async prepare(c: ClaimedCommand): Promise<NodeStep> {
    if (c.type !== 'pause' && c.type !== 'resume') return { done: false };
    const [run] = await this.o.db.query<RunRow>('SELECT * FROM runs WHERE id = $1', [c.run_id]);
    // Refused below anyway, or nothing runs anywhere to freeze.
    if (!run || isTerminal(run.status) || run.paused === (c.type === 'pause') || !run.job_id) return { done: false };
    const job = await runningJobOf(this.o.db, run.job_id);
    if (!job || job.kind !== 'sandbox') return { done: false };
    const target = { id: job.id, taskId: job.task_id, nodeId: job.node_id };
    try {
      const status = c.type === 'pause' ? await this.o.sandboxes.pause(target) : await this.o.sandboxes.resume(target);
      return { done: status !== 'not_running' };
    } catch (err) {
      return { failed: `the node could not ${c.type} the sandbox: ${message(err)}` };
    }
  }

  private async decide(tx: Queryable, c: ClaimedCommand, run: RunRow, prepared: NodeStep): Promise<Outcome> {
    if (isTerminal(run.status)) throw new Rejected(`the run has already ended (${run.status})`);
    const by = { command_id: c.command_id, by: c.subject_id };
    switch (c.type) {
      case 'pause':
      case 'resume': {
        const pause = c.type === 'pause';
        if (pause && run.paused) throw new Rejected('the run is already paused');
        if (!pause && !run.paused) throw new Rejected('the run is not paused');
        if ('failed' in prepared) throw new Rejected(prepared.failed);
        const reason = typeof c.payload?.reason === 'string' ? c.payload.reason : null;
        await setRunPaused(tx, run.id, pause, reason);
        const data = { status: run.status, change: pause ? 'paused' : 'resumed', paused: pause, ...(pause && reason ? { reason } : {}), sandbox_frozen: pause && prepared.done, ...by };
        return { state: 'applied', events: [{ kind: 'status', data }] };
      }
      case 'emit_event': {
        const name = String(c.payload?.name);
        return { state: 'applied', events: [{ kind: 'event', message: name, data: { name, data: c.payload?.data ?? null, ...by } }] };
      }
      case 'cancel':
        return this.cancel(tx, c, run);
    }
  }

  /**
   * The run and its open sub-runs end canceled. A run of a job cancels the job's task as
   * POST /v1/tasks/{id}/cancel does (queued jobs at once, running ones when their node stops
   * them); a run recorded by a client just gets its canceled status.
   */
  private async cancel(tx: Queryable, c: ClaimedCommand, run: RunRow): Promise<Outcome> {
    const reason = typeof c.payload?.reason === 'string' ? c.payload.reason : 'Canceled by a command.';
    // The outcome first: the ends below may close the run, after which a stream stops reading.
    await appendEvents(tx, run.id, [commandEvent(c, 'applied')]);
    const tree = await openRunTree(tx, run.id);
    const stop: Array<{ id: string; taskId: string; nodeId: string | null }> = [];
    const tasks = new Set<string>();
    for (const r of tree) {
      if (r.job_id === null) {
        await appendEvents(tx, r.id, [{ kind: 'status', data: { status: 'canceled', reason, command_id: c.command_id, ...(r.id === run.id ? {} : { via_run_id: run.id }) } }], { status: 'canceled' });
      } else if (!tasks.has(r.task_id)) {
        tasks.add(r.task_id);
        const running = await cancelTaskIn(tx, r.task_id);
        stop.push(...running.map((j) => ({ id: j.id, taskId: r.task_id, nodeId: j.node_id })));
      }
    }
    return { state: 'applied', events: [], after: stop.length > 0 ? () => this.o.jobs.stopJobs(stop) : undefined };
  }

  private async settle(tx: Queryable, c: ClaimedCommand, run: RunRow & { project_id: string | null }, outcome: Outcome): Promise<void> {
    const reason = outcome.state === 'rejected' ? outcome.reason : null;
    // Lost the claim (it ran out and another runner took the command): leave it to that one.
    if (!(await settleCommand(tx, c.seq, this.id, outcome.state, reason))) throw new Error('lost the claim on the command');
    const events = outcome.state === 'applied' ? outcome.events : [];
    // cancel wrote its outcome before the ends it caused.
    if (!(outcome.state === 'applied' && c.type === 'cancel')) events.push(commandEvent(c, outcome.state, reason));
    await appendEvents(tx, run.id, events);
    await appendAudit(tx, {
      category: 'admin',
      action: 'run_command',
      outcome: outcome.state === 'applied' ? 'success' : 'failure',
      actorId: c.subject_id,
      actorHandle: c.subject_handle,
      resourceType: 'run',
      resourceId: run.id,
      scopeType: 'project',
      scopeId: run.project_id,
      ...(reason ? { reason } : {}),
      details: { command_id: c.command_id, type: c.type, task_id: run.task_id, seq: c.seq },
    });
  }
}

function commandEvent(c: ClaimedCommand, outcome: 'applied' | 'rejected', reason?: string | null): NewRunEvent {
  return {
    kind: 'command',
    data: { command_id: c.command_id, type: c.type, outcome, ...(reason ? { reason } : {}) },
    // A command's outcome is written once, whichever runner writes it.
    idempotencyKey: `command:${c.seq}`,
  };
}

async function lockRun(tx: Queryable, runId: string): Promise<RunRow & { project_id: string | null }> {
  const rows = await tx.query<RunRow & { project_id: string | null }>(
    'SELECT r.*, (SELECT t.project_id FROM tasks t WHERE t.id = r.task_id) AS project_id FROM runs r WHERE r.id = $1 FOR UPDATE',
    [runId],
  );
  return rows[0]!;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
