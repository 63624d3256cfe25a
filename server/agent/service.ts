import { randomBytes } from 'node:crypto';
import type { AgentTokenService } from '../agents/service';
import { principalOf } from '../agents/service';
import { completionAudit, type AgentModel, type CompletionAnswer, type CompletionCall, type CompletionStream } from '../chat/completion';
import { PM_MODEL, parseChatRequest } from '../chat/request';
import { chatError, type ChatService, type Generated } from '../chat/service';
import type { ChatMessage } from '../chat/openai-features';
import type { Db } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, conflict } from '../http/problem';
import type { McpCaller } from '../mcp/caller';
import { argsShape, type McpService, type ToolOutcome } from '../mcp/service';
import type { InferenceNode } from '../nodes/queries';
import { redactJson } from '../redaction/redaction';
import type { SessionService } from '../sessions/service';
import type { ApprovalService, ApprovalRow, ApprovalStatus, Decision } from './approvals';
import { runAgentLoop, type StepEvent } from './loop';
import type { AgentSettingsProvider } from './settings';
import { TurnTrail } from './trail';

export { preferenceSettings } from './settings';
import { functionTools, resultText } from './tools';

/** Who the model is told it is: short, since small models follow short prompts best. */
export const SYSTEM_PROMPT =
  "You are CyNode's project manager (cynodeai.pm). You act for the user only through the tools you are given: " +
  'create and run tasks, read their results, runs, sessions, projects and nodes. To run shell commands, call task.create with ' +
  'input_mode "commands", then task.result with its task_id and wait_seconds to wait for the output. Never invent results: ' +
  'report briefly what the tools returned, failures included.';

export interface PmAgentDeps {
  chat: ChatService;
  mcp: McpService;
  agentTokens: AgentTokenService;
  sessions: SessionService;
  settings: AgentSettingsProvider;
  /** Where the turn's runs are written (the run ledger, migration 0018). */
  db: Db;
  /** Calls held for the user's approval. */
  approvals: ApprovalService;
}

/** The aborted-promise of a signal: a tool call the client no longer waits for is not waited for. */
const aborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => {
    const fail = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });

/** Progress lines of a streamed turn: what the agent does, as it does it. */
function progressLine(e: StepEvent): string | null {
  if (e.kind === 'tool_call') return `▸ ${e.name.slice(0, 100)} ${argsPreview(e.args)}\n`;
  if (e.kind === 'tool_result') return e.outcome.ok ? `✓ ${e.name.slice(0, 100)}\n` : `✗ ${e.name.slice(0, 100)}: ${e.outcome.error.type}\n`;
  return null;
}

type TrailEntry = { role: 'assistant' | 'tool'; content: string; metadata: Record<string, unknown> };

/** A step as its thread keeps it: tool calls by name and argument shape, results with their status. */
function trailEntry(e: StepEvent): TrailEntry | null {
  if (e.kind === 'tool_calls') return { role: 'assistant', content: e.content, metadata: { model: PM_MODEL, agent_step: e.step, tool_calls: e.calls.map((c) => ({ id: c.id, name: c.name, args_shape: argsShape(c.args) })) } };
  if (e.kind === 'tool_result') {
    return { role: 'tool', content: e.content, metadata: { agent_step: e.step, tool_call_id: e.callId, tool_name: e.name, status: e.outcome.ok ? 'success' : 'error', ...(e.outcome.ok ? {} : { error_type: e.outcome.error.type }) } };
  }
  return null;
}

const approvalPending = (row: ApprovalRow): ToolOutcome => ({
  ok: false,
  error: { type: 'approval_pending', message: `${row.tool_name} changes something and waits for the user's approval (${row.id}); this turn ends with the question to the user` },
});

/** The turn's answer when calls wait for approval: what would run, and how to answer. */
function approvalRequest(held: readonly ApprovalRow[]): string {
  const lines = held.map((r) => `- ${r.tool_name.slice(0, 100)} ${argsPreview(r.args)} (approval ${r.id})`);
  return `I need your approval before I run:\n${lines.join('\n')}\nReply "approve" to run ${held.length > 1 ? 'them' : 'it'} or "deny" to drop ${held.length > 1 ? 'them' : 'it'}.`;
}

/** A decided call as the agent reads it back: its call and its result, as if made in this turn. */
function resumed(settled: ReadonlyArray<{ row: ApprovalRow; outcome: ToolOutcome }>): ChatMessage[] {
  return settled.flatMap(({ row, outcome }) => {
    const id = `call_${row.id}`;
    return [
      { role: 'assistant' as const, content: '', toolCalls: [{ id, name: row.tool_name, arguments: row.args }] },
      { role: 'tool' as const, content: resultText(outcome), toolCallId: id, toolName: row.tool_name },
    ];
  });
}

const argsPreview = (args: Record<string, unknown>): string => {
  const s = JSON.stringify(args);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
};

/**
 * The project-manager agent as a chat model (`cynodeai.pm`): each completion is one agent turn.
 * The agent acts through the MCP pipeline as a `project_manager` agent of the user (an agent
 * token's identity, never the user's credential), with the model the settings name, or the first
 * served model that can call tools.
 */
export class PmAgent implements AgentModel {
  readonly id = PM_MODEL;

  private readonly approvals: ApprovalService;

  constructor(private readonly d: PmAgentDeps) {
    this.approvals = d.approvals;
  }

  /** The caller's approvals (GET /v1/agent/approvals), newest first. */
  listApprovals(principal: Principal, status: ApprovalStatus | undefined, limit: number): Promise<ApprovalRow[]> {
    return this.approvals.list(principal, status, limit);
  }

  /**
   * A decision over the API (POST /v1/agent/approvals/{id}): an approved call runs now, as an agent
   * of its turn's session; the thread's next turn tells the agent what came of it.
   */
  async decideApproval(principal: Principal, id: string, decision: Decision, ctx: RequestContext): Promise<ApprovalRow> {
    return this.approvals.decide(principal, id, decision, 'api', ctx, async (row) => {
      if (row.session_id === null || row.project_id === null) throw conflict('The approval’s session or project is gone');
      const settings = await this.d.settings(principal, { projectId: row.project_id }, ctx);
      const caller = await this.agentCaller(principal, row.session_id, row.project_id, settings.maxSeconds, ctx);
      try {
        return await this.runApproved(caller, row, ctx);
      } finally {
        void this.revoke(principal, caller, ctx);
      }
    });
  }

  /** An approved call through the MCP pipeline (policy and audit decide it again, as for any call). */
  private runApproved(caller: McpCaller, row: ApprovalRow, ctx: RequestContext): Promise<ToolOutcome> {
    const args = row.tool_name === 'task.create' && row.args.session_id === undefined ? { ...row.args, session_id: caller.agent!.sessionId } : row.args;
    return this.d.mcp.callTool(caller, row.tool_name, args, ctx);
  }

  async available(principal: Principal, ctx: RequestContext): Promise<boolean> {
    const settings = await this.d.settings(principal, {}, ctx);
    return (await this.backing(principal, settings.model, ctx, AbortSignal.timeout(15_000))) !== null;
  }

  /** The model behind the agent and the nodes that serve it with the `tools` capability; null when none. */
  private async backing(principal: Principal, wanted: string | undefined, ctx: RequestContext, signal: AbortSignal): Promise<{ model: string; candidates: InferenceNode[] } | null> {
    const order = wanted !== undefined && wanted !== PM_MODEL ? [wanted] : await this.d.chat.models(principal, ctx);
    for (const model of order) {
      try {
        const candidates = await this.d.chat.able(await this.d.chat.candidates(principal, model, ctx), model, ['tools'], signal);
        return { model, candidates };
      } catch {
        // Not served, not allowed, or cannot call tools: the next one.
      }
    }
    return null;
  }

  async complete(principal: Principal, call: CompletionCall): Promise<CompletionAnswer> {
    const started = performance.now();
    const audit = completionAudit(principal.userId, call.ctx.requestId, PM_MODEL);
    let sse: CompletionStream | undefined;
    let caller: McpCaller | undefined;
    const startedTasks: string[] = [];
    /** The turn's steps, for its thread: written before the answer (or the failure). */
    const trail: TrailEntry[] = [];
    let threadOf: string | undefined;
    let turn: TurnTrail | undefined;
    try {
      // Checked here, so that a bad request is audited like any failure.
      const req = parseChatRequest(call.body);
      audit.stream = req.stream;
      const project = await this.d.chat.project(principal, call.projectRef, call.ctx);
      audit.projectId = project.id;
      const redacted = await this.d.chat.redact(req);
      audit.redactionKinds = redacted.kinds;
      audit.redactionApplied = redacted.count > 0;
      const threadId = await this.d.chat.persistUserMessage(principal, redacted, project, call.threadId);
      audit.threadId = threadId;
      threadOf = threadId;
      const settings = await this.d.settings(principal, { projectId: project.id }, call.ctx);
      const backing = await this.backing(principal, settings.model, call.ctx, AbortSignal.any([call.clientGone, AbortSignal.timeout(15_000)]));
      if (!backing) throw chatError(503, 'cynodeai_inference_unavailable', `The project manager agent (${PM_MODEL}) needs a served model with the "tools" capability; none is served now`);

      // The turn's session: the tasks the agent starts belong to it, so its runs list the turn's work.
      const session = await this.d.sessions.create(principal, { title: `${PM_MODEL} turn` });
      turn = new TurnTrail({ db: this.d.db, userId: principal.userId, sessionId: session.id, threadId, agentModel: PM_MODEL, log: call.log });
      const ledger = turn;
      caller = await this.agentCaller(principal, session.id, project.id, settings.maxSeconds, call.ctx);
      const agent0 = caller;
      const allowed = await this.d.mcp.listTools(caller, call.ctx);
      const tools = functionTools(allowed);
      // Calls held in this thread's last turn: decided by this message (or over the API before it).
      const newest = redacted.request.messages.at(-1);
      const settled = newest?.role === 'user' ? await this.approvals.settleForTurn(principal, threadId, newest.content, call.ctx, (row) => this.runApproved(agent0, row, call.ctx)) : [];
      for (const { row, outcome } of settled) if (row.tool_name === 'task.create' && outcome.ok) startedTasks.push(String(outcome.result.task_id));
      // With approval on, what changes something waits for the user: the turn ends asking.
      const held: ApprovalRow[] = [];
      const needApproval = new Set(settings.approval === 'mutating' ? allowed.filter((t) => !t.readOnly).map((t) => t.name) : []);

      const id = `chatcmpl-${randomBytes(12).toString('base64url')}`;
      const created = Math.floor(Date.now() / 1000);
      if (req.stream) sse = call.openStream({ id, created, model: PM_MODEL });
      let last: Generated | undefined;
      const agent = caller;
      const result = await runAgentLoop(
        { messages: [{ role: 'system', content: SYSTEM_PROMPT }, ...redacted.request.messages, ...resumed(settled)], tools, maxSteps: settings.maxSteps, maxSeconds: settings.maxSeconds, signal: call.clientGone },
        {
          generate: async (messages, fnTools, signal) => {
            const t0 = performance.now();
            try {
              last = await this.d.chat.generate(backing.candidates, { model: backing.model, messages, options: req.options, tools: fnTools }, {
                signal,
                onAttempt: (n) => {
                  audit.nodeId = n.id;
                  audit.attempts++;
                },
              });
            } catch (err) {
              const code = err instanceof HttpProblem && typeof err.extensions.code === 'string' ? err.extensions.code : 'error';
              ledger.modelCall({ model: backing.model, nodeId: audit.nodeId, durationMs: performance.now() - t0, toolCalls: 0, ok: false, errorType: code });
              throw err;
            }
            ledger.modelCall({ model: backing.model, nodeId: last.node.id, durationMs: performance.now() - t0, toolCalls: last.outcome.toolCalls.length, ok: true });
            return last.outcome;
          },
          callTool: async (name, args, signal) => {
            if (needApproval.has(name)) {
              const row = await this.approvals.hold(principal, { threadId, sessionId: session.id, projectId: project.id, toolName: name, args }, call.ctx);
              held.push(row);
              ledger.note({ type: 'approval_held', approval_id: row.id, name });
              return approvalPending(row);
            }
            // Every task the agent starts belongs to the turn's session.
            const sent = name === 'task.create' && args.session_id === undefined ? { ...args, session_id: session.id } : args;
            return Promise.race([this.d.mcp.callTool(agent, name, sent, call.ctx), aborted(signal)]);
          },
          waiting: () => (held.length > 0 ? approvalRequest(held) : null),
          onEvent: (e) => {
            if (e.kind === 'step') {
              ledger.step(e.step);
              // The first step's run also records the calls decided since the last turn.
              if (e.step === 1) for (const { row, outcome } of settled) ledger.decided(row, outcome);
            }
            else if (e.kind === 'tool_calls') ledger.calls(e.calls);
            else if (e.kind === 'tool_result') ledger.toolCall(e);
            if (e.kind === 'tool_result' && e.name === 'task.create' && e.outcome.ok) startedTasks.push(String(e.outcome.result.task_id));
            const entry = trailEntry(e);
            if (entry) trail.push(entry);
            const line = sse ? progressLine(e) : null;
            if (line) sse!.token(line);
          },
        },
      );
      audit.durationMs = performance.now() - started;
      await this.d.chat.appendSteps(threadId, trail.splice(0));
      const answer = result.answer;
      // The answer as the thread keeps it: redacted (tool output may have carried a secret).
      const answerEvent = { type: 'answer', ended: result.ended, steps: result.steps, content: (await redactJson(answer, { remember: false })).value };
      turn.note(answerEvent);
      await turn.end('completed', { ended: result.ended, steps: result.steps });
      const g: Generated = last ? { ...last, outcome: { ...last.outcome, content: answer, toolCalls: [] } } : { outcome: { content: answer, toolCalls: [], promptTokens: 0, completionTokens: 0, doneReason: 'stop' }, node: backing.candidates[0]!, attempts: 0 };
      await this.d.chat.persistAnswer(threadId, PM_MODEL, g, { ...audit, outcome: 'success' });
      audit.outcome = 'success';
      void this.revoke(principal, caller, call.ctx);
      const usage = { prompt_tokens: g.outcome.promptTokens, completion_tokens: g.outcome.completionTokens, total_tokens: g.outcome.promptTokens + g.outcome.completionTokens };
      if (sse) {
        sse.token(answer);
        sse.finish('stop', req.includeUsage ? usage : undefined);
        return { streamed: true };
      }
      return {
        streamed: false,
        body: { id, object: 'chat.completion', created, model: PM_MODEL, choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }], usage },
      };
    } catch (err) {
      let problem: HttpProblem;
      if (call.clientGone.aborted) {
        audit.outcome = 'canceled';
        problem = new HttpProblem(408, 'The request was canceled by the client', { code: 'cynodeai_request_canceled' });
      } else if (err instanceof HttpProblem) {
        problem = err;
      } else {
        call.log.error({ err }, 'the project manager agent failed');
        problem = new HttpProblem(500, 'An unexpected error occurred; the request id identifies it in the server log', { code: 'cynodeai_internal_error' });
      }
      audit.errorCode = typeof problem.extensions.code === 'string' ? problem.extensions.code : 'invalid_request';
      audit.durationMs = performance.now() - started;
      await turn?.end(call.clientGone.aborted ? 'canceled' : 'failed', { reason: audit.errorCode });
      // The work the turn started stops with it: the agent cancels its own tasks.
      if (caller) await this.cancelStarted(caller, startedTasks, call);
      // What the turn did before it ended stays readable in its thread.
      if (threadOf) await this.d.chat.appendSteps(threadOf, trail.splice(0)).catch((e: unknown) => call.log.error({ err: e }, 'could not store the agent turn’s steps'));
      if (caller) void this.revoke(principal, caller, call.ctx);
      await this.d.chat.audit(audit).catch((e: unknown) => call.log.error({ err: e }, 'could not write the chat audit row'));
      if (sse?.opened) {
        sse.error(problem);
        return { streamed: true };
      }
      sse?.stop();
      throw problem;
    }
  }

  /** A project_manager agent of the user, for this turn only (its token is revoked at the end). */
  private async agentCaller(principal: Principal, sessionId: string, projectId: string, maxSeconds: number, ctx: RequestContext): Promise<McpCaller> {
    const minted = await this.d.agentTokens.mint({ userId: principal.userId, role: 'project_manager', sessionId, projectId, ttlSeconds: Math.min(3600, maxSeconds + 60) }, ctx);
    const agent = await this.d.agentTokens.verify(minted.token);
    if (!agent) throw new Error('a freshly minted agent token did not verify');
    return { principal: principalOf(agent), agent: { id: agent.id, role: agent.role, sessionId } };
  }

  private async cancelStarted(caller: McpCaller, taskIds: string[], call: CompletionCall): Promise<void> {
    for (const taskId of taskIds) {
      const outcome: ToolOutcome = await this.d.mcp.callTool(caller, 'task.cancel', { task_id: taskId }, call.ctx);
      // A task that already ended is a conflict: nothing to stop.
      if (!outcome.ok && outcome.error.type !== 'conflict') call.log.warn({ task_id: taskId, error_type: outcome.error.type }, 'could not cancel a task the agent started');
    }
  }

  private async revoke(principal: Principal, caller: McpCaller, ctx: RequestContext): Promise<void> {
    await this.d.agentTokens.revoke(principal, caller.agent!.id, ctx).catch(() => {});
  }
}
