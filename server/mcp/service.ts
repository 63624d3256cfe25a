import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Value } from '@sinclair/typebox/value';
import type { Db } from '../db';
import { GroupCommit } from '../db/group-commit';
import { unstorable } from '../db/storable';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import type { PolicyService } from '../policy/service';
import type { Authorizer } from '../rbac/service';
import type { McpCaller } from './caller';
import type { ToolDef } from './catalog';
import { appendToolCalls, listToolCalls, type ToolCallEntry, type ToolCallFilter, type ToolCallRecord } from './store';

/** A tool call's answer: the tool's result, or an error a client can act on (never a stack). */
export type ToolOutcome = { ok: true; result: Record<string, unknown> } | { ok: false; error: { type: string; message: string } };

export interface McpOptions {
  /** Longest a tool may run before the call answers `timeout` (the work it started may go on). */
  toolTimeoutMs?: number;
  /** Told of failures a caller only sees as `internal` or `audit_failed`. */
  onError?: (err: unknown, what: string) => void;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idArg = (args: Record<string, unknown>, key: string): string | null => {
  const v = args[key];
  return typeof v === 'string' && UUID.test(v) ? v.toLowerCase() : null;
};

/** Error types by HTTP status, for service refusals that name no code of their own. */
const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_arguments',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  422: 'invalid_arguments',
  429: 'rate_limited',
  502: 'upstream_error',
  503: 'unavailable',
};

/** The argument names and JSON types only: what the audit may keep of a call's input. */
export function argsShape(args: Record<string, unknown>): Record<string, string> {
  const shape: Record<string, string> = {};
  for (const [k, v] of Object.entries(args).slice(0, 50)) shape[k.slice(0, 100)] = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
  return shape;
}

class ToolTimeout extends Error {}

/**
 * The MCP server's pipeline (docs/decisions/0007-tool-surface.md), the same for every tools/call and
 * failing closed: the caller (resolved by the route) → the tool must exist → the access rules
 * must allow `tool.call` on `Tool::"<name>"` → the arguments must match the tool's schema → an
 * agent bound to a task may name only that task → the service runs, within a time limit → the
 * call is written to the tool-call audit whatever happened. tools/list shows only the tools the
 * rules allow the caller.
 */
export class McpService {
  private readonly tools: ReadonlyMap<string, ToolDef>;
  private readonly audit = new GroupCommit<ToolCallRecord, void>(async (records) => {
    await appendToolCalls(this.db, records);
    return records.map(() => undefined);
  });

  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly policy: PolicyService,
    catalog: readonly ToolDef[],
    private readonly options: McpOptions = {},
  ) {
    this.tools = new Map(catalog.map((t) => [t.name, t]));
  }

  /** The tools this caller may call, in catalog order (each decided on its own; decisions are cached). */
  async listTools(caller: McpCaller, ctx: RequestContext): Promise<ToolDef[]> {
    const tools = [...this.tools.values()];
    const allowed = await Promise.all(tools.map(async (t) => (await this.decide(caller, t, undefined, ctx)).decision === 'allow'));
    return tools.filter((_, i) => allowed[i]);
  }

  async callTool(caller: McpCaller, name: string, rawArgs: unknown, ctx: RequestContext): Promise<ToolOutcome> {
    const started = performance.now();
    const args = rawArgs === undefined ? {} : rawArgs;
    const object = typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {};
    const record: ToolCallRecord = {
      id: randomUUID(),
      request_id: ctx.requestId,
      task_id: idArg(object, 'task_id'),
      project_id: idArg(object, 'project_id'),
      run_id: idArg(object, 'run_id'),
      subject_type: caller.agent ? 'agent' : 'user',
      user_id: caller.principal.userId,
      agent_id: caller.agent?.id ?? null,
      agent_role: caller.agent?.role ?? null,
      tool_name: name.slice(0, 200),
      decision: 'deny',
      status: 'error',
      duration_ms: 0,
      error_type: null,
      policy_audit_id: null,
      args_shape: argsShape(object),
    };
    const outcome = await this.pipeline(caller, name, args, object, record, ctx);
    record.duration_ms = Math.round(performance.now() - started);
    if (outcome.ok) record.status = 'success';
    else record.error_type = outcome.error.type;
    try {
      await this.audit.submit(record);
    } catch (err) {
      // Fail closed: a call the trail cannot show is not answered as a success.
      this.options.onError?.(err, 'a tool call could not be written to the tool-call audit');
      return { ok: false, error: { type: 'audit_failed', message: 'The call could not be audited; its result is withheld. Retry later.' } };
    }
    return outcome;
  }

  private async pipeline(caller: McpCaller, name: string, args: unknown, object: Record<string, unknown>, record: ToolCallRecord, ctx: RequestContext): Promise<ToolOutcome> {
    const tool = this.tools.get(name);
    if (!tool) return fail('unknown_tool', `There is no tool "${name.slice(0, 100)}"; tools/list names those you may call`);

    const decision = await this.decide(caller, tool, record.task_id ?? undefined, ctx);
    record.policy_audit_id = decision.auditId;
    if (decision.decision !== 'allow') return fail('policy_denied', `You are not allowed to call ${tool.name}`);

    const bad = typeof args !== 'object' || args === null || Array.isArray(args) ? 'arguments must be a JSON object' : unstorable(args, 'arguments');
    if (bad) return allowedButFailed(record, fail('invalid_arguments', bad));
    if (!Value.Check(tool.input, args)) {
      const first = Value.Errors(tool.input, args).First();
      const where = first?.path ? `arguments${first.path.replace(/\//g, '.')}` : 'arguments';
      return allowedButFailed(record, fail('invalid_arguments', `${where}: ${first?.message ?? 'do not match the tool input schema'}`));
    }

    // An agent bound to a task acts on that task only (docs/decisions/0007-tool-surface.md).
    const bound = caller.agent?.taskId;
    if (bound !== undefined && object.task_id !== undefined && object.task_id !== bound) {
      return fail('scope_mismatch', 'task_id is not the task this agent works on');
    }

    record.decision = 'allow';
    try {
      const result = await this.withTimeout(tool, Value.Default(tool.input, structuredClone(object)) as Record<string, unknown>, caller, ctx);
      // What the call created or read names its task and project when the arguments did not.
      if (record.task_id === null) record.task_id = idArg(result, 'task_id');
      if (record.project_id === null) record.project_id = idArg(result, 'project_id');
      return { ok: true, result };
    } catch (err) {
      return { ok: false, error: this.errorOf(err, tool.name) };
    }
  }

  private async withTimeout(tool: ToolDef, args: Record<string, unknown>, caller: McpCaller, ctx: RequestContext): Promise<Record<string, unknown>> {
    const controller = new AbortController();
    const ms = this.options.toolTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new ToolTimeout());
        controller.abort();
      }, ms);
    });
    try {
      return await Promise.race([tool.run(args, { caller, ctx, signal: controller.signal }), timeout]);
    } catch (err) {
      // A tool that gives up when aborted fails with its own error; the cause is still the time limit.
      throw timedOut ? new ToolTimeout() : err;
    } finally {
      clearTimeout(timer);
    }
  }

  private errorOf(err: unknown, tool: string): { type: string; message: string } {
    if (err instanceof ToolTimeout) return { type: 'timeout', message: `${tool} did not answer in time` };
    if (err instanceof HttpProblem && err.status < 500) {
      const code = typeof err.extensions.code === 'string' ? err.extensions.code : undefined;
      return { type: code ?? ERROR_TYPES[err.status] ?? 'error', message: err.detail };
    }
    if (err instanceof HttpProblem && err.status === 503) return { type: code503(err), message: err.detail };
    if (err instanceof HttpProblem && err.status === 502) return { type: 'upstream_error', message: err.detail };
    this.options.onError?.(err, `tool ${tool} failed`);
    return { type: 'internal', message: 'The tool failed unexpectedly; the request id identifies it in the server log' };
  }

  private decide(caller: McpCaller, tool: ToolDef, taskId: string | undefined, ctx: RequestContext) {
    return this.policy.decide(
      {
        userId: caller.principal.userId,
        ...(caller.agent ? { agent: { id: caller.agent.id, role: caller.agent.role } } : {}),
        action: 'tool.call',
        resource: { type: 'Tool', name: tool.name, readOnly: tool.readOnly },
        ...(taskId ? { context: { task: taskId } } : {}),
      },
      ctx,
    );
  }

  /** The tool-call audit, newest first, for those who may read the access audit (admins). */
  async auditLog(by: Principal, f: Omit<ToolCallFilter, 'beforeSeq'> & { cursor?: string }, ctx: RequestContext): Promise<{ entries: ToolCallEntry[]; nextCursor?: string }> {
    await this.authz.require(by, 'policy.audit.read', ctx, { resourceType: 'tool_call_audit' });
    const { cursor, ...filter } = f;
    const before = decodeCursor(cursor, (v): v is { seq: number } => typeof v === 'object' && v !== null && Number.isInteger((v as { seq?: unknown }).seq));
    const { entries, more } = await listToolCalls(this.db, { ...filter, beforeSeq: before?.seq });
    const last = entries.at(-1);
    return { entries, ...(more && last ? { nextCursor: encodeCursor({ seq: last.seq }) } : {}) };
  }
}

const fail = (type: string, message: string): ToolOutcome => ({ ok: false, error: { type, message } });

/** The rules allowed the call; it failed after (bad arguments). */
function allowedButFailed(record: ToolCallRecord, outcome: ToolOutcome): ToolOutcome {
  record.decision = 'allow';
  return outcome;
}

const code503 = (err: HttpProblem): string => (typeof err.extensions.code === 'string' ? err.extensions.code : 'unavailable');
