import type { Db } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, badRequest, conflict, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import type { LiveStreams } from '../http/live-streams';
import { redactJson } from '../redaction/redaction';
import { findOwnSession } from '../sessions/queries';
import type { TaskRow } from '../tasks/store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RunEventHub } from './hub';
import { SseWriter, streamRunEvents, streamTaskLogs } from './stream';
import type { Ledger } from './ledger';
import { findVisibleRun, taskLogLines, taskOfWritableRun } from './queries';
import { appendEvents, insertRun } from './record';
import { isTerminal, type RunStatus } from './status';
import { findRun, listVisibleRuns, logLines, updateRunMetadata, type LogFilter, type LogStream, type RunEventRow, type RunFilter, type RunRow } from './store';

/** Free-form metadata is stored redacted, like chat messages (see redactJson). */
const redactedMetadata = async (m: Record<string, unknown>) => (await redactJson(m, { remember: false })).value;

export const MAX_LOG_ENTRIES = 1000;
export const MAX_LOG_MESSAGE = 64 * 1024;
/** A run's metadata as JSON, in bytes. */
export const MAX_METADATA_BYTES = 64 * 1024;

function checkMetadata(metadata: Record<string, unknown> | undefined): void {
  if (metadata !== undefined && Buffer.byteLength(JSON.stringify(metadata), 'utf8') > MAX_METADATA_BYTES) {
    throw new HttpProblem(413, `metadata is larger than ${MAX_METADATA_BYTES} bytes (64 KiB) as JSON`);
  }
}

export interface CreateRunInput {
  task_id: string;
  job_id?: string;
  session_id?: string;
  parent_run_id?: string;
  status?: RunStatus;
  metadata?: Record<string, unknown>;
}

/**
 * What runs need from the tasks domain: who may see a task. Injected (the task service), because
 * tasks build on runs (a task's job gets its run in the task's transaction), not the other way.
 */
export interface TaskAccess {
  /** A task the user may see, by id or by their own task name; null otherwise. */
  findVisible(userId: string, ref: string): Promise<TaskRow | null>;
}

/**
 * Runs: one execution trace each, always of a task. Who may see a run is who may see its task
 * (its creator, or someone who may read tasks in its project); anyone else gets 404. Writing to
 * a run (status, logs) takes the task's creator or someone who may create tasks there.
 */
export class RunService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly tasks: TaskAccess,
    readonly ledger: Ledger,
    readonly hub: RunEventHub,
    /** Open event streams: capped per user and address, ended when their caller loses access. */
    private readonly streams: LiveStreams,
  ) {}

  async create(principal: Principal, input: CreateRunInput, ctx: RequestContext): Promise<RunRow> {
    checkMetadata(input.metadata);
    const task = await this.tasks.findVisible(principal.userId, input.task_id);
    if (!task) throw notFound('Task');
    await this.requireWrite(principal, task, ctx);
    if (input.job_id !== undefined) {
      const jobs = await this.db.query('SELECT 1 FROM jobs WHERE id = $1 AND task_id = $2', [input.job_id, task.id]);
      if (jobs.length === 0) throw badRequest('job_id is not a job of this task');
    }
    if (input.session_id !== undefined && !(await findOwnSession(this.db, principal.userId, input.session_id))) throw notFound('Session');
    if (input.parent_run_id !== undefined && !(await findVisibleRun(this.db, principal.userId, input.parent_run_id))) throw notFound('Parent run');
    const metadata = input.metadata === undefined ? undefined : await redactedMetadata(input.metadata);
    return this.db.transaction((tx) =>
      insertRun(tx, {
        taskId: task.id,
        jobId: input.job_id,
        sessionId: input.session_id ?? task.session_id,
        parentRunId: input.parent_run_id,
        createdBy: principal.userId,
        status: input.status,
        metadata,
      }),
    );
  }

  async get(principal: Principal, id: string): Promise<RunRow> {
    const run = await findVisibleRun(this.db, principal.userId, id);
    if (!run) throw notFound('Run');
    return run;
  }

  list(principal: Principal, f: Omit<RunFilter, 'visibleTo'>): Promise<{ runs: RunRow[]; more: boolean }> {
    return listVisibleRuns(this.db, { ...f, visibleTo: principal.userId });
  }

  /** The runs of one of the caller's sessions (404 for anyone else's, like one that does not exist). */
  async listOfSession(principal: Principal, sessionId: string, f: { afterId?: string; limit: number }): Promise<{ runs: RunRow[]; more: boolean }> {
    const session = await findOwnSession(this.db, principal.userId, sessionId);
    if (!session) throw notFound('Session');
    return this.list(principal, { sessionId: session.id, ...f });
  }

  /** Every log line of every run of a task the caller was just shown, runs in order. */
  taskLogs(taskId: string): Promise<RunEventRow[]> {
    return taskLogLines(this.db, taskId);
  }

  /** Replays a run's events after `start` on an open stream, then follows new ones until the run ends. */
  streamEvents(sse: SseWriter, runId: string, start: number): Promise<void> {
    return streamRunEvents({ db: this.db, ledger: this.ledger, hub: this.hub, sse, runId, start });
  }

  /** A task's log lines so far on an open stream, then live ones until the task ends. */
  streamTaskLogs(sse: SseWriter, taskId: string, stream?: 'stdout' | 'stderr'): Promise<void> {
    return streamTaskLogs({ db: this.db, ledger: this.ledger, hub: this.hub, sse, taskId, stream });
  }

  /** PATCH: a new status (as a `status` event) and/or metadata. A run that ended stays ended. */
  async update(principal: Principal, id: string, input: { status?: RunStatus; metadata?: Record<string, unknown>; error?: string }, ctx: RequestContext): Promise<RunRow> {
    checkMetadata(input.metadata);
    const run = await this.writable(principal, id, ctx);
    if (input.status !== undefined && input.status !== run.status && isTerminal(run.status)) {
      throw conflict(`The run has already ended (${run.status}); its status cannot change`);
    }
    const metadata = input.metadata === undefined ? undefined : await redactedMetadata(input.metadata);
    await this.db.transaction(async (tx) => {
      if (metadata !== undefined) await updateRunMetadata(tx, run.id, metadata);
      if (input.status !== undefined && input.status !== run.status) {
        await appendEvents(tx, run.id, [{ kind: 'status', data: { status: input.status, previous: run.status, by: principal.userId } }], { status: input.status, error: input.error ?? null });
      }
    });
    return (await findRun(this.db, run.id))!;
  }

  async appendLogs(principal: Principal, id: string, entries: ReadonlyArray<{ stream: LogStream; message?: string; data?: unknown }>, ctx: RequestContext): Promise<number> {
    const run = await this.writable(principal, id, ctx);
    const r = await this.ledger.append(
      run.id,
      entries.map((e) => ({ kind: 'log' as const, stream: e.stream, message: e.message ?? null, data: e.data ?? null })),
    );
    return r.seqs.filter((s) => s !== null).length;
  }

  async events(principal: Principal, id: string, after: number, limit: number): Promise<{ run: RunRow; items: RunEventRow[] }> {
    const run = await this.get(principal, id);
    return { run, items: await this.ledger.read(run.id, after, limit) };
  }

  async logs(principal: Principal, id: string, f: LogFilter): Promise<{ run: RunRow; entries: RunEventRow[]; more: boolean }> {
    const run = await this.get(principal, id);
    return { run, ...(await logLines(this.db, [run.id], f)) };
  }

  /**
   * A server-sent events response on a run, or on a task's runs, that the caller was just shown
   * (429 when they hold too many). It ends once its caller may no longer see it.
   */
  openStream(request: FastifyRequest, reply: FastifyReply, heartbeatMs: number, of: { run: RunRow } | { task: TaskRow }): SseWriter {
    const userId = request.principal!.userId;
    const watch =
      'run' in of
        ? { scope: `run:${of.run.id}`, stillAllowed: async () => (await findVisibleRun(this.db, userId, of.run.id)) !== null }
        : { scope: `task:${of.task.id}`, stillAllowed: async () => (await this.tasks.findVisible(userId, of.task.id)) !== null };
    return this.streams.admit(request, watch, () => new SseWriter(request, reply, heartbeatMs));
  }

  private async writable(principal: Principal, id: string, ctx: RequestContext): Promise<RunRow> {
    const run = await this.get(principal, id);
    const task = (await this.tasks.findVisible(principal.userId, taskOfWritableRun(run)))!;
    await this.requireWrite(principal, task, ctx);
    return run;
  }

  private async requireWrite(principal: Principal, task: TaskRow, ctx: RequestContext): Promise<void> {
    if (task.created_by === principal.userId) return;
    await this.authz.require(principal, 'task.create', ctx, { projectId: task.project_id, resourceType: 'task', resourceId: task.id });
  }
}
