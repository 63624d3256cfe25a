import { randomBytes } from 'node:crypto';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem } from '../http/problem';
import type { ChatAuditEntry } from './store';
import type { ChatService, Generated, Redacted } from './service';
import { PM_MODEL, parseChatRequest } from './request';
import { ToolCallMinter, type OpenAiToolCall } from './tool-calls';

/** pino's shape (the request's logger fits). */
export interface CompletionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The event stream of a streaming answer (the route's SSE writer, server/chat/sse.ts). */
export interface CompletionStream {
  /** The response has started: a failure now goes out as an event, not as a status. */
  readonly opened: boolean;
  token(t: string): void;
  toolCalls(calls: OpenAiToolCall[]): void;
  finish(reason: string, usage?: Record<string, number>): void;
  error(problem: HttpProblem): void;
  stop(): void;
}

/** One POST /v1/chat/completions, as the route hands it over. */
export interface CompletionCall {
  /** The body as sent: checked here, so that a bad one is audited like any failure. */
  body: unknown;
  /** `OpenAI-Project`: project id or slug; else the caller's default project. */
  projectRef: string | undefined;
  /** `X-Cynode-Thread-Id`: one of the caller's threads in that project. */
  threadId: string | undefined;
  ctx: RequestContext;
  /** Aborts when the client goes away before the answer is finished. */
  clientGone: AbortSignal;
  /** Starts the event stream of a `stream: true` answer. */
  openStream(meta: { id: string; created: number; model: string }): CompletionStream;
  log: CompletionLogger;
}

/** The answer without `stream: true`, in OpenAI's chat.completion shape. */
export interface ChatCompletionBody {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: 'assistant'; content: string | null; tool_calls?: Array<Omit<OpenAiToolCall, 'index'>> }; finish_reason: 'stop' | 'length' | 'tool_calls' }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Either the body to send, or the answer (or its failure) already went out on the stream. */
export type CompletionAnswer = { streamed: false; body: ChatCompletionBody } | { streamed: true };

/**
 * A model the gateway answers itself rather than a node: the project-manager agent
 * (server/agent/). Attached by the composition root, since it needs domains that build on chat.
 */
export interface AgentModel {
  readonly id: string;
  /** Whether it can answer this caller now (GET /v1/models lists it only then). */
  available(principal: Principal, ctx: RequestContext): Promise<boolean>;
  /** The whole completion, with its own audit row, as complete() would answer it. */
  complete(principal: Principal, call: CompletionCall): Promise<CompletionAnswer>;
}

/** The model as parseChatRequest reads it: absent, null or blank means the project manager agent. */
function agentAsked(body: unknown): boolean {
  const model = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
  return model === undefined || model === null || model === PM_MODEL || (typeof model === 'string' && model.trim() === '');
}

const internalError = () => new HttpProblem(500, 'An unexpected error occurred; the request id identifies it in the server log', { code: 'cynodeai_internal_error' });

/** A completion's audit row before anything is known: an error until the answer says otherwise. */
export function completionAudit(userId: string, requestId: string, model: string | null): ChatAuditEntry {
  return { userId, projectId: null, threadId: null, outcome: 'error', errorCode: null, model, nodeId: null, stream: false, attempts: 0, redactionApplied: false, redactionKinds: [], durationMs: 0, requestId };
}

/**
 * The chat completion pipeline: authenticated already; validate, resolve the project, redact,
 * persist the user message, route, generate (streaming or not), persist the answer, answer; one
 * chat audit row whatever happens. The steps themselves are ChatService's.
 */
export class ChatCompletions {
  private agent?: AgentModel;

  constructor(
    private readonly chat: ChatService,
    /** The whole completion's cap (504 cynodeai_completion_timeout). */
    private readonly timeoutSeconds: number,
  ) {}

  attachAgent(agent: AgentModel): void {
    this.agent = agent;
  }

  /** GET /v1/models: the agent first while it can answer, then the node models the caller may use. */
  async models(principal: Principal, ctx: RequestContext): Promise<string[]> {
    const [usable, agent] = await Promise.all([this.chat.models(principal, ctx), this.agent?.available(principal, ctx) ?? false]);
    return agent ? [this.agent!.id, ...usable.filter((m) => m !== this.agent!.id)] : usable;
  }

  /** Answers, or throws the problem to answer with (nothing of it went out yet). */
  async complete(principal: Principal, call: CompletionCall): Promise<CompletionAnswer> {
    // No model (or the agent's id) is a turn of the agent; its request is checked there.
    if (this.agent && this.agent.id === PM_MODEL && agentAsked(call.body)) return this.agent.complete(principal, call);
    const { chat, timeoutSeconds } = this;
    const started = performance.now();
    const audit = completionAudit(principal.userId, call.ctx.requestId, null);
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, call.clientGone]);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let sse: CompletionStream | undefined;
    let persistDone: Promise<void> | undefined;
    let persistError: unknown;
    let audited = false;
    // The model is recorded (audit, logs) only redacted: until the redaction is done, not at all.
    let redaction: Promise<Redacted> | undefined;
    try {
      const req = parseChatRequest(call.body);
      audit.stream = req.stream;
      // Read-only, so asked at once; its answer counts only once the project is allowed.
      const routing = chat.candidates(principal, req.model, call.ctx);
      routing.catch(() => {});
      redaction = chat.redact(req);
      redaction.catch(() => {});
      const [project, redacted] = await Promise.all([chat.project(principal, call.projectRef, call.ctx), redaction]);
      audit.model = redacted.model;
      audit.projectId = project.id;
      audit.redactionKinds = redacted.kinds;
      audit.redactionApplied = redacted.count > 0;

      // The user message is stored while the node is being asked (its latency overlaps ours);
      // nothing of the answer is released before it is stored, and a failed store aborts the call.
      // A named thread is checked first: a request into someone else's thread reaches no model.
      const named = call.threadId;
      const stored = named === undefined ? chat.persistUserMessage(principal, redacted, project, undefined) : Promise.resolve(await chat.persistUserMessage(principal, redacted, project, named));
      let threadId: string | undefined;
      // What arrives before the user message is stored waits, in order: tokens and tool calls.
      const held: Array<() => void> = [];
      const release = (send: () => void) => (threadId === undefined ? held.push(send) : send());
      persistDone = stored.then(
        (id) => {
          threadId = id;
          audit.threadId = id;
          for (const send of held.splice(0)) send();
        },
        (e: unknown) => {
          persistError = e;
          abort.abort();
        },
      );
      let candidates;
      try {
        // A feature the model lacks (tools, images) is a 400, not a silent downgrade.
        candidates = await chat.able(await routing, req.model, req.needs, signal);
      } catch (err) {
        // Routing failed (503, 404): the user message is still stored first, as the pipeline says.
        await persistDone;
        throw persistError ?? err;
      }

      timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, timeoutSeconds * 1000);
      const id = `chatcmpl-${randomBytes(12).toString('base64url')}`;
      const created = Math.floor(Date.now() / 1000);
      if (req.stream) sse = call.openStream({ id, created, model: req.model });
      const minter = new ToolCallMinter(req.singleToolCall === true);
      const calls: OpenAiToolCall[] = [];
      let g: Generated;
      try {
        g = await chat.generate(candidates, redacted.request, {
          signal,
          onToken: sse ? (t) => release(() => sse!.token(t)) : undefined,
          onToolCalls: (raw) => {
            const minted = minter.mint(raw);
            calls.push(...minted);
            if (sse && minted.length > 0) release(() => sse!.toolCalls(minted));
          },
          onAttempt: (n) => {
            audit.nodeId = n.id;
            audit.attempts++;
          },
        });
      } finally {
        clearTimeout(timer);
      }
      await persistDone;
      if (persistError) throw persistError;
      // The audit row goes with the answer: one write, before the client hears the end.
      audit.durationMs = performance.now() - started;
      await chat.persistAnswer(threadId!, redacted.model, g, { ...audit, outcome: 'success' }, calls);
      audit.outcome = 'success';
      audited = true;
      const usage = { prompt_tokens: g.outcome.promptTokens, completion_tokens: g.outcome.completionTokens, total_tokens: g.outcome.promptTokens + g.outcome.completionTokens };
      const finishReason = calls.length > 0 ? 'tool_calls' : g.outcome.doneReason === 'length' ? 'length' : 'stop';
      if (sse) {
        sse.finish(finishReason, req.includeUsage ? usage : undefined);
        return { streamed: true };
      }
      return {
        streamed: false,
        body: {
          id,
          object: 'chat.completion',
          created,
          model: req.model,
          choices: [
            {
              index: 0,
              // As OpenAI: an answer that is only tool calls has no content.
              message: calls.length > 0 ? { role: 'assistant', content: g.outcome.content === '' ? null : g.outcome.content, tool_calls: calls.map(({ index: _i, ...c }) => c) } : { role: 'assistant', content: g.outcome.content },
              finish_reason: finishReason,
            },
          ],
          usage,
        },
      };
    } catch (err) {
      let problem: HttpProblem;
      if (timedOut) {
        audit.outcome = 'timeout';
        problem = new HttpProblem(504, `The completion did not finish within ${timeoutSeconds} s`, { code: 'cynodeai_completion_timeout' });
      } else if (call.clientGone.aborted) {
        audit.outcome = 'canceled';
        problem = new HttpProblem(408, 'The request was canceled by the client', { code: 'cynodeai_request_canceled' });
      } else if (persistError instanceof HttpProblem) {
        problem = persistError;
      } else if (err instanceof HttpProblem) {
        problem = err;
      } else {
        call.log.error({ err }, 'chat completion failed');
        problem = internalError();
      }
      audit.errorCode = typeof problem.extensions.code === 'string' ? problem.extensions.code : 'invalid_request';
      audit.model ??= (await redaction?.then((r) => r.model, () => null)) ?? null;
      // A cause is what a node said (and where it is): the admin's log has it, the caller does not.
      if (problem.cause !== undefined) call.log.warn({ error_code: audit.errorCode, node_id: audit.nodeId, model: audit.model, err: String((problem.cause as Error).message ?? problem.cause) }, 'inference failed on the node');
      else if (audit.outcome !== 'success') call.log.info({ outcome: audit.outcome, error_code: audit.errorCode, node_id: audit.nodeId, model: audit.model }, 'chat completion did not succeed');
      if (!audited) {
        // The thread, if the user message was stored, belongs in the row.
        await persistDone;
        audit.durationMs = performance.now() - started;
        try {
          await chat.audit(audit);
        } catch (e) {
          // No answer leaves without its audit row: the request fails instead.
          call.log.error({ err: e }, 'could not write the chat audit row');
          problem = internalError();
        }
      }
      if (sse?.opened) {
        sse.error(problem);
        return { streamed: true };
      }
      sse?.stop();
      throw problem;
    } finally {
      if (audit.outcome === 'success') call.log.info({ model: audit.model, node_id: audit.nodeId, attempts: audit.attempts, duration_ms: Math.round(audit.durationMs) }, 'chat completion served');
    }
  }
}
