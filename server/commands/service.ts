import type { Db } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { findVisibleRun, taskOfWritableRun } from '../runs/queries';
import { findVisibleTask } from '../tasks/queries';
import { COMMANDS_CHANNEL, acceptCommand, findOwnCommand, type CommandRow, type CommandType } from './store';

export const MAX_REASON = 1000;
export const MAX_EVENT_NAME = 200;

export interface SubmitCommandInput {
  command_id: string;
  type: CommandType;
  payload?: Record<string, unknown>;
}

/** What a payload of each type may hold; anything else is refused, so a typo is never silently ignored. */
function checkPayload(type: CommandType, payload: Record<string, unknown> | undefined): void {
  if (payload === undefined) {
    if (type === 'emit_event') throw badRequest('payload.name is required for emit_event');
    return;
  }
  const allowed = type === 'emit_event' ? ['name', 'data'] : ['reason'];
  const extra = Object.keys(payload).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw badRequest(`payload of ${type} may hold only ${allowed.join(', ')}; unexpected: ${extra.join(', ')}`);
  if (type === 'emit_event') {
    const name = payload.name;
    if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_EVENT_NAME) throw badRequest(`payload.name is required for emit_event: a non-blank string of at most ${MAX_EVENT_NAME} characters`);
  } else if (payload.reason !== undefined && (typeof payload.reason !== 'string' || payload.reason.length > MAX_REASON)) {
    throw badRequest(`payload.reason must be a string of at most ${MAX_REASON} characters`);
  }
}

/**
 * Durable commands on runs. Accepting one is a durable insert and nothing more; the runner
 * (./runner.ts) applies it. Only someone who may see the run may command it (404 otherwise),
 * and only someone who may act on its task: the creator, or holders of task.cancel (cancel) or
 * task.create (the others) in its project.
 */
export class CommandService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    /** Wakes this process's runner: a command is applied at once, not at the next poll. */
    private readonly wake: () => void,
  ) {}

  async submit(principal: Principal, runId: string, input: SubmitCommandInput, ctx: RequestContext): Promise<{ command: CommandRow; duplicate: boolean }> {
    const run = await findVisibleRun(this.db, principal.userId, runId);
    if (!run) throw notFound('Run');
    checkPayload(input.type, input.payload);
    const task = (await findVisibleTask(this.db, principal.userId, taskOfWritableRun(run)))!;
    if (task.created_by !== principal.userId) {
      await this.authz.require(principal, input.type === 'cancel' ? 'task.cancel' : 'task.create', ctx, { projectId: task.project_id, resourceType: 'run', resourceId: run.id });
    }
    const r = await acceptCommand(this.db, { commandId: input.command_id, subjectId: principal.userId, runId: run.id, type: input.type, payload: input.payload ?? null });
    if (!r.duplicate) {
      this.wake();
      // Other gateways' runners may be the ones free to apply it.
      await this.db.notify(COMMANDS_CHANNEL, String(r.command.seq)).catch(() => {});
    }
    return r;
  }

  /** The caller's own command; anyone else's is 404. */
  async get(principal: Principal, commandId: string): Promise<CommandRow> {
    const c = await findOwnCommand(this.db, principal.userId, commandId);
    if (!c) throw notFound('Command');
    return c;
  }
}
