import type { Db } from '../db';
import type { ToolOutcome } from '../mcp/service';
import { argsShape } from '../mcp/service';
import { appendEvents, insertRun, type NewRunEvent } from '../runs/record';
import type { RunStatus } from '../runs/status';

/** Ids a tool's result names (what the call created or touched), for the trail's links. */
const LINKED_IDS = ['task_id', 'run_id', 'job_id', 'session_id'] as const;

export interface TrailScope {
  db: Db;
  userId: string;
  /** The turn's session: every step's run is in it, so `GET /v1/sessions/{id}/runs` lists the turn. */
  sessionId: string;
  threadId: string;
  /** The agent's model id (cynodeai.pm). */
  agentModel: string;
  log: { warn(obj: object, msg: string): void };
}

/**
 * One agent turn in the run ledger (README "The project-manager agent"): a run of kind
 * `agent_step` per step, in the turn's session, whose events say what the step did: the model
 * call (model, node, duration), each tool call (name, argument names and types only, outcome,
 * error type, the ids it created) and, on the last step, the answer. Each run ends completed,
 * failed or canceled with the turn.
 *
 * A step's events are kept until the step ends, then written with its status and the next
 * step's run in one transaction: one write per step rather than one per event (on PGlite every
 * transaction is a round of messages to the database thread, and they came to about 9 ms a step).
 * So a step's events appear in the ledger when it ends. Writes are queued in order and do not
 * hold the loop up; `end` waits for them. A trail that cannot be written is logged and the turn
 * goes on: the chat thread keeps the turn as well.
 */
export class TurnTrail {
  private queue: Promise<void> = Promise.resolve();
  private current: string | null = null;
  /** Events of the step under way, written when it ends. */
  private pending: NewRunEvent[] = [];
  /** Arguments of the current step's calls by call id (results carry only the id). */
  private readonly argsOf = new Map<string, Record<string, unknown>>();
  readonly runIds: string[] = [];

  constructor(private readonly s: TrailScope) {}

  /** A new step: the previous step's run completes, the new one starts running. */
  step(step: number): void {
    const ended = this.take();
    this.enqueue(async () => {
      const run = await this.s.db.transaction(async (tx) => {
        if (this.current) await appendEvents(tx, this.current, withStatus(ended, 'completed'), { status: 'completed', error: null });
        return insertRun(tx, {
          taskId: null,
          kind: 'agent_step',
          sessionId: this.s.sessionId,
          createdBy: this.s.userId,
          status: 'running',
          metadata: { agent_model: this.s.agentModel, thread_id: this.s.threadId, step },
        });
      });
      this.current = run.id;
      this.runIds.push(run.id);
    });
  }

  modelCall(e: { model: string; nodeId: string | null; durationMs: number; toolCalls: number; ok: boolean; errorType?: string }): void {
    this.event({
      type: 'model_call',
      model: e.model,
      node_id: e.nodeId,
      duration_ms: Math.round(e.durationMs * 10) / 10,
      tool_calls: e.toolCalls,
      status: e.ok ? 'success' : 'error',
      ...(e.errorType ? { error_type: e.errorType } : {}),
    });
  }

  /** The calls the model asked for in this step (their arguments stay here: only their shape is recorded). */
  calls(calls: ReadonlyArray<{ id: string; args: Record<string, unknown> }>): void {
    for (const c of calls) this.argsOf.set(c.id, c.args);
  }

  toolCall(e: { callId: string; name: string; outcome: ToolOutcome; dispatched: boolean }, extra: Record<string, unknown> = {}): void {
    const linked: Record<string, string> = {};
    if (e.outcome.ok) for (const k of LINKED_IDS) if (typeof e.outcome.result[k] === 'string') linked[k] = e.outcome.result[k];
    this.event({
      type: 'tool_call',
      call_id: e.callId,
      name: e.name.slice(0, 200),
      args_shape: argsShape(this.argsOf.get(e.callId) ?? {}),
      status: e.outcome.ok ? 'success' : 'error',
      ...(e.outcome.ok ? {} : { error_type: e.outcome.error.type }),
      dispatched: e.dispatched,
      ...linked,
      ...extra,
    });
  }

  /** A held call the user decided since the last turn: what came of it. */
  decided(row: { id: string; tool_name: string; args: Record<string, unknown>; status: string }, outcome: ToolOutcome): void {
    const callId = `call_${row.id}`;
    this.argsOf.set(callId, row.args);
    this.toolCall({ callId, name: row.tool_name, outcome, dispatched: row.status === 'approved' }, { approval_id: row.id, approval: row.status });
  }

  /** Extra facts of the step (a held approval); `data.type` names them. */
  note(data: Record<string, unknown>): void {
    this.event(data);
  }

  /** The turn ended: the last step's run records how, and ends with `status`. */
  async end(status: Extract<RunStatus, 'completed' | 'failed' | 'canceled'>, data: Record<string, unknown>): Promise<void> {
    const ended = [...this.take(), { kind: 'event' as const, data: { type: 'turn_end', ...data } }];
    this.enqueue(async () => {
      const runId = this.current;
      if (runId) await this.s.db.transaction((tx) => appendEvents(tx, runId, withStatus(ended, status), { status, error: status === 'completed' ? null : String(data.reason ?? status) }));
      this.current = null;
    });
    await this.queue;
  }

  private event(data: Record<string, unknown>): void {
    this.pending.push({ kind: 'event', data });
  }

  /** The events of the step that is ending, leaving none pending. */
  private take(): NewRunEvent[] {
    const ended = this.pending;
    this.pending = [];
    return ended;
  }

  private enqueue(op: () => Promise<void>): void {
    this.queue = this.queue.then(op).catch((err: unknown) => this.s.log.warn({ err, session_id: this.s.sessionId }, 'could not write the agent turn to the run ledger'));
  }
}

const withStatus = (events: NewRunEvent[], status: RunStatus): NewRunEvent[] => [...events, { kind: 'status', data: { status } }];
