import { randomUUID } from 'node:crypto';
import type { ProcessState } from '../../node-manager/contract/worker-api';
import { appendAudit } from '../audit/record';
import type { Db } from '../db';
import { NodeCallError, NodeClient, type NodeTarget } from '../nodes/node-client';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, conflict, notFound, tooManyRequests } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { appendEvents } from '../runs/record';
import { findVisibleRun, taskOfWritableRun } from '../runs/queries';
import type { RunRow } from '../runs/store';
import { findVisibleTask } from '../tasks/queries';
import {
  deleteUnstartedProcess,
  endProcess,
  findProcess,
  insertProcess,
  jobRunning,
  processesOfRun,
  runningSandbox,
  type ProcessEnd,
  type ProcessRow,
} from './store';

/** How long one watch call waits on the node for the process to end before asking again. */
const WATCH_WAIT_MS = 25_000;
/** Pause after a failed watch call (node restarting, network blip). */
const WATCH_RETRY_MS = 1_000;

export interface ProcessOutput {
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export interface ProcessServiceOptions {
  db: Db;
  authz: Authorizer;
  /** Default: a client of its own. */
  client?: NodeClient;
  /** The Worker API of a node and the token it expects; null when it has none on record. */
  target(nodeId: string): Promise<NodeTarget | null>;
  log: { warn(obj: object, msg: string): void };
}

const SANDBOX_ENDED = 'the sandbox ended';

/**
 * Background processes in a run's sandbox: started in the container of the run's running job, on
 * the node that runs it, and never outliving it. The database row is the record (for audit: run,
 * task, job, node, who started it, the argv, the env names but never their values); the node is
 * the truth while the process runs. Its end is recorded once, by whoever learns of it first: the
 * watcher this gateway keeps on each process it started, or any read of a process still marked
 * running (which covers a gateway that restarted meanwhile). Start, end and terminate are `process`
 * events in the run's ledger and rows in the audit log.
 */
export class ProcessService {
  private readonly closing = new AbortController();
  private readonly watchers = new Set<Promise<void>>();

  private readonly client: NodeClient;

  constructor(private readonly o: ProcessServiceOptions) {
    this.client = o.client ?? new NodeClient();
  }

  async start(principal: Principal, runId: string, input: { command: string[]; env?: Record<string, string> }, ctx: RequestContext): Promise<ProcessRow> {
    const run = await this.writable(principal, runId, ctx);
    const sandbox = await runningSandbox(this.o.db, run.id);
    if (!sandbox) throw conflict('The run has no running sandbox job to start a process in');
    const target = await this.o.target(sandbox.node_id);
    if (!target) throw conflict("The node running the run's job cannot be reached (no Worker API address or token on record)");

    const env = input.env ?? {};
    // Recorded before the node hears of it, so no process runs that the audit trail does not name.
    const row = await insertProcess(this.o.db, { id: randomUUID(), sandbox, command: input.command, envNames: Object.keys(env), startedBy: principal.userId });
    let state: ProcessState;
    try {
      state = await this.client.startProcess(target, { version: 1, job_id: sandbox.job_id, process_id: row.id, command: input.command, env }, { signal: this.closing.signal });
    } catch (err) {
      if (err instanceof NodeCallError && (err.status === 409 || err.status === 429)) {
        await deleteUnstartedProcess(this.o.db, row.id);
        if (err.status === 429) throw tooManyRequests("The run's sandbox already runs as many processes as it may", 5);
        throw conflict("The run's sandbox is not running (any more)");
      }
      // The node may or may not have started it; it ends with the sandbox either way.
      await this.settle(row, { status: 'failed', exitCode: null, reason: 'the node did not confirm the start', endedAt: new Date(), stdout: '', stderr: '', truncated: false });
      throw new HttpProblem(502, "The node running the run's job did not answer the start of the process");
    }
    await this.o.db.transaction(async (tx) => {
      await appendEvents(tx, row.run_id, [{ kind: 'process', data: { process_id: row.id, action: 'started' }, idempotencyKey: `process:${row.id}:started` }]);
      await appendAudit(
        tx,
        {
          category: 'access',
          action: 'run.process.start',
          outcome: 'success',
          actorId: principal.userId,
          actorHandle: principal.handle,
          resourceType: 'run_process',
          resourceId: row.id,
          details: { run_id: row.run_id, task_id: row.task_id, job_id: row.job_id, node_id: row.node_id, env_names: row.env_names },
        },
        ctx,
      );
    });
    const settled = state.status === 'running' ? row : await this.settleFrom(row, state);
    if (settled.status === 'running') this.watch(settled);
    return settled;
  }

  async list(principal: Principal, runId: string): Promise<ProcessRow[]> {
    const run = await this.visible(principal, runId);
    return Promise.all((await processesOfRun(this.o.db, run.id)).map(async (p) => (await this.refresh(p, 0)).row));
  }

  async get(principal: Principal, runId: string, processId: string): Promise<ProcessRow> {
    return (await this.refresh(await this.find(principal, runId, processId), 0)).row;
  }

  /** Live from the node while the process runs; what was kept once it ended. */
  async output(principal: Principal, runId: string, processId: string): Promise<ProcessOutput> {
    const { row, live } = await this.refresh(await this.find(principal, runId, processId), 0);
    if (live) return { stdout: live.stdout, stderr: live.stderr, truncated: live.truncated.stdout || live.truncated.stderr };
    if (row.status === 'running') throw new HttpProblem(503, 'The node running the process does not answer; try again', {}, { 'retry-after': '5' });
    return { stdout: row.stdout ?? '', stderr: row.stderr ?? '', truncated: row.truncated };
  }

  /** Ends a running process; one that has already ended stays as it is. */
  async terminate(principal: Principal, runId: string, processId: string, ctx: RequestContext): Promise<ProcessRow> {
    const run = await this.writable(principal, runId, ctx);
    const row = await findProcess(this.o.db, run.id, processId);
    if (!row) throw notFound('Process');
    if (row.status !== 'running') return row;
    const target = await this.o.target(row.node_id);
    if (target) {
      try {
        const state = await this.client.terminateProcess(target, { version: 1, process_id: row.id }, { signal: this.closing.signal });
        if (state.status !== 'running') return this.settleFrom(row, state, principal);
        return row;
      } catch (err) {
        if (!(err instanceof NodeCallError && err.status === 404)) throw new HttpProblem(502, 'The node running the process did not answer the terminate');
      }
    }
    return (await this.refresh(row, 0)).row;
  }

  /** Stops the watchers (the processes run on in their sandboxes; reads still see their ends). */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.watchers]);
  }

  private async visible(principal: Principal, runId: string): Promise<RunRow> {
    const run = await findVisibleRun(this.o.db, principal.userId, runId);
    if (!run) throw notFound('Run');
    return run;
  }

  /** Starting and ending processes takes what writing to the run takes: its task's creator, or task.create in its project. */
  private async writable(principal: Principal, runId: string, ctx: RequestContext): Promise<RunRow> {
    const run = await this.visible(principal, runId);
    const task = (await findVisibleTask(this.o.db, principal.userId, taskOfWritableRun(run)))!;
    if (task.created_by !== principal.userId) {
      await this.o.authz.require(principal, 'task.create', ctx, { projectId: task.project_id, resourceType: 'task', resourceId: task.id });
    }
    return run;
  }

  private async find(principal: Principal, runId: string, processId: string): Promise<ProcessRow> {
    const run = await this.visible(principal, runId);
    const row = await findProcess(this.o.db, run.id, processId);
    if (!row) throw notFound('Process');
    return row;
  }

  /**
   * A row marked running brought up to date from its node (waiting up to waitMs for its end),
   * with the node's live state while it still runs. A node that cannot be asked leaves it running
   * unless its job has ended, which no process outlives.
   */
  private async refresh(row: ProcessRow, waitMs: number): Promise<{ row: ProcessRow; live?: ProcessState }> {
    if (row.status !== 'running') return { row };
    const target = await this.o.target(row.node_id);
    if (target) {
      try {
        const state = await this.client.processStatus(target, { version: 1, process_id: row.id, wait_ms: waitMs }, { signal: this.closing.signal });
        if (state.status === 'running') return { row, live: state };
        return { row: await this.settleFrom(row, state) };
      } catch (err) {
        if (this.closing.signal.aborted) return { row };
        const forgotten = err instanceof NodeCallError && err.status === 404;
        if (!forgotten) this.o.log.warn({ process_id: row.id, node_id: row.node_id, err: (err as Error).message }, 'could not ask the node about a process');
        if (await jobRunning(this.o.db, row.job_id)) {
          if (!forgotten) return { row };
          return { row: await this.settle(row, { status: 'failed', exitCode: null, reason: 'the node no longer knows this process', endedAt: new Date(), stdout: '', stderr: '', truncated: false }) };
        }
      }
    } else if (await jobRunning(this.o.db, row.job_id)) {
      return { row };
    }
    return { row: await this.settle(row, { status: 'terminated', exitCode: null, reason: SANDBOX_ENDED, endedAt: new Date(), stdout: '', stderr: '', truncated: false }) };
  }

  private settleFrom(row: ProcessRow, state: ProcessState, by?: Principal): Promise<ProcessRow> {
    return this.settle(
      row,
      {
        status: state.status === 'running' ? 'failed' : state.status,
        exitCode: state.exit_code ?? null,
        reason: state.reason ?? null,
        endedAt: state.ended_at ? new Date(state.ended_at) : new Date(),
        stdout: state.stdout,
        stderr: state.stderr,
        truncated: state.truncated.stdout || state.truncated.stderr,
      },
      by,
    );
  }

  /** Records the end once, with its ledger event and audit row; answers the row as it now is. */
  private async settle(row: ProcessRow, end: ProcessEnd, by?: Principal): Promise<ProcessRow> {
    const ended = await this.o.db.transaction(async (tx) => {
      const updated = await endProcess(tx, row.id, end);
      if (!updated) return null;
      const data = { process_id: row.id, action: end.status, ...(end.exitCode !== null ? { exit_code: end.exitCode } : {}), ...(end.reason ? { reason: end.reason } : {}) };
      await appendEvents(tx, row.run_id, [{ kind: 'process', data, idempotencyKey: `process:${row.id}:ended` }]);
      await appendAudit(tx, {
        category: 'access',
        action: end.status === 'terminated' && by ? 'run.process.terminate' : `run.process.${end.status === 'exited' ? 'exit' : end.status}`,
        outcome: 'success',
        actorId: by?.userId ?? null,
        actorHandle: by?.handle ?? null,
        resourceType: 'run_process',
        resourceId: row.id,
        reason: end.reason ?? undefined,
        details: { run_id: row.run_id, task_id: row.task_id, job_id: row.job_id, node_id: row.node_id, exit_code: end.exitCode },
      });
      return updated;
    });
    return ended ?? (await findProcess(this.o.db, row.run_id, row.id))!;
  }

  /** Follows a process this gateway started until its end is recorded, so the ledger learns of it unasked. */
  private watch(row: ProcessRow): void {
    const w = (async () => {
      let current = row;
      while (current.status === 'running' && !this.closing.signal.aborted) {
        const before = Date.now();
        try {
          current = (await this.refresh(current, WATCH_WAIT_MS)).row;
        } catch (err) {
          this.o.log.warn({ process_id: row.id, err: (err as Error).message }, 'process watch failed');
        }
        // A call that came back at once without news (node unreachable) is not repeated in a tight loop.
        if (current.status === 'running' && Date.now() - before < WATCH_RETRY_MS) await sleep(WATCH_RETRY_MS, this.closing.signal);
      }
    })();
    this.watchers.add(w);
    void w.finally(() => this.watchers.delete(w));
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
