import { setTimeout as timeout } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { orderedUuid } from '../lib/ordered-uuid';
import type { Db } from '../db';
import { GroupCommit } from '../db/group-commit';
import { Memo } from '../db/memo';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import type { PolicyService } from '../policy/service';
import type { ProjectRow } from '../projects/store';
import { redactAll, type SecretKind } from '../redaction/redaction';
import { NodeCallError, type ChatOutcome, type EmbedOutcome, type NodeClient, type NodeTarget, type OllamaToolCall } from '../nodes/node-client';
import {
  ACTIVE_THREAD_HOURS,
  appendAnswers,
  appendChatAudits,
  appendMessages,
  appendToActiveThread,
  findOwnThread,
  insertThread,
  listMessages,
  listOwnThreads,
  renameOwnThread,
  deleteOwnThread,
  projectForChat,
  type ChatAuditEntry,
  type MessageRow,
  type NewAnswer,
  type NewMessage,
  type ThreadRow,
} from './store';
import { inferenceNodes, type InferenceNode } from '../nodes/queries';
import { PM_MODEL, type ChatRequest } from './request';
import { ModelCapabilities } from './capabilities';
import { replaceLeaves, stringLeaves, type Capability } from './openai-features';
import { toOllamaMessages, type OpenAiToolCall } from './tool-calls';

export interface ChatSettings {
  /** Whole-completion cap; then 504 cynodeai_completion_timeout. */
  timeoutSeconds: number;
  /** Extra attempts after a transient upstream failure before any content was sent. */
  retries: number;
  /** First backoff between attempts; doubles each time. */
  backoffMs: number;
}

/** OpenAI-shaped error: status plus `error.code` (rendered by the server's error handler). */
export const chatError = (status: number, code: string, message: string) => new HttpProblem(status, message, { code });

/** Ollama keeps a model loaded five minutes after its last use by default. */
const WARM_FOR_MS = 5 * 60_000;

/** A request whose every message is redacted: all that may be stored or sent from now on. */
export interface Redacted {
  request: ChatRequest;
  kinds: SecretKind[];
  count: number;
  /**
   * The model as logs, the audit and stored answers name it: redacted, since the client may send
   * any text there. The request keeps the model as sent, for the node.
   */
  model: string;
}

export interface Generated {
  outcome: ChatOutcome;
  node: InferenceNode;
  attempts: number;
}

/** Lower is better: the desktop's own node first, then the least loaded. */
function rank(n: InferenceNode, busy: Map<string, number>): [number, number] {
  return [n.labels.includes('orchestrator_host') ? 0 : 1, n.running + (busy.get(n.id) ?? 0)];
}

/**
 * Chat: OpenAI-compatible completions routed to nodes serving inference, threads and their
 * (redacted) messages, and one chat audit row per completion.
 */
export class ChatService {
  /** Completions in flight per node, in this process: part of "least loaded". */
  private readonly busy = new Map<string, number>();
  /** Aborts every generation still running when the server stops. */
  private readonly closing = new AbortController();
  /**
   * Each caller's chat project and permissions there, keyed by user and project reference:
   * dropped on any access change (server/db/memo.ts dropOnChange).
   */
  readonly projects = new Memo<Awaited<ReturnType<typeof projectForChat>>>(30_000);
  /**
   * The nodes serving inference, dropped when a node changes (dropOnChange). Their load counts
   * may be a second old: they only rank equally good nodes.
   */
  readonly serving = new Memo<InferenceNode[]>(1000);
  /**
   * The active thread of each (user, project) this process last wrote to: a message for it is
   * then a plain append that concurrent completions share one statement for. Only the first
   * message of a pair, or one after the two-hour rotation, asks the database to choose.
   */
  private readonly activeThreads = new LRUCache<string, string>({ max: 10_000 });
  private readonly messageWrites = new GroupCommit<NewMessage, MessageRow | null>(async (messages) => {
    const stored = await appendMessages(this.db, messages);
    return messages.map((m) => stored.get(m.id) ?? null);
  });
  private readonly answerWrites = new GroupCommit<NewAnswer, boolean>(async (answers) => {
    const stored = await appendAnswers(this.db, answers);
    return answers.map((a) => stored.has(a.id));
  });
  private readonly auditWrites = new GroupCommit<ChatAuditEntry, void>(async (entries) => {
    await appendChatAudits(this.db, entries);
    return entries.map(() => undefined);
  });

  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly client: NodeClient,
    /** Opens a node's sealed Worker API token (never logged, never stored opened). */
    private readonly openToken: (node: InferenceNode) => string,
    readonly settings: ChatSettings,
    /** Who may use which model (`model.use`): each decision is audited there. */
    private readonly policy: PolicyService,
  ) {}

  /** The models the caller may use: of the union of what nodes serving inference have, those the rules allow. */
  async models(principal: Principal, ctx?: RequestContext): Promise<string[]> {
    return (await this.modelsServed(principal, ctx)).usable;
  }

  /** Whether the rules let the caller use this model, whether or not a node has it now. */
  mayUse(principal: Principal, model: string, ctx?: RequestContext): Promise<boolean> {
    return this.policy.allows({ userId: principal.userId, action: 'model.use', resource: { type: 'Model', id: model } }, ctx);
  }

  /** What nodes serving inference have (`served`) and, of those, what the caller may use. */
  async modelsServed(principal: Principal, ctx?: RequestContext): Promise<{ usable: string[]; served: string[] }> {
    const nodes = await this.servingNodes();
    const served = [...new Set(nodes.flatMap((n) => n.models))].sort();
    return { usable: await this.policy.permitted(principal.userId, 'model.use', served, (id) => ({ type: 'Model', id }), ctx), served };
  }

  /**
   * The project of a chat: the `OpenAI-Project` header (id or slug) or the caller's default
   * project. Unknown or invisible → 404; visible but no chat.use → 403.
   */
  async project(principal: Principal, ref: string | undefined, ctx: RequestContext): Promise<ProjectRow> {
    const given = ref !== undefined && ref.trim() !== '' ? ref.trim() : null;
    const found = await this.projects.get(`${principal.userId}|${given ?? ''}`, () => projectForChat(this.db, principal.userId, given));
    if (given !== null && (!found || !found.may_read)) throw chatError(404, 'project_not_found', 'Project not found');
    if (!found) throw chatError(400, 'invalid_request', 'You have no default project; send the OpenAI-Project header');
    const { may_read: _r, may_chat: mayChat, ...project } = found;
    if (!mayChat) {
      // Audited like every other denial.
      await this.authz.require(principal, 'chat.use', ctx, { projectId: project.id, resourceType: 'project', resourceId: project.id }).catch(() => {});
      throw chatError(403, 'permission_denied', 'You are not allowed to chat in this project');
    }
    if (!project.is_active) throw chatError(409, 'project_inactive', `Project "${project.slug}" is deleted`);
    return project;
  }

  /** Step 4 of the pipeline: every message redacted before anything is stored or sent. */
  async redact(request: ChatRequest): Promise<Redacted> {
    // Tool calls sent back are text too: each string in their arguments is redacted like content.
    const texts = request.messages.flatMap((m) => [m.content, ...(m.toolCalls ? stringLeaves(m.toolCalls.map((c) => c.arguments)) : [])]);
    const [r, model] = await Promise.all([redactAll(texts), redactAll([request.model])]);
    let at = 0;
    const next = () => r.texts[at++]!;
    const messages = request.messages.map((m) => {
      const content = next();
      return m.toolCalls ? { ...m, content, toolCalls: m.toolCalls.map((c) => ({ ...c, arguments: replaceLeaves(c.arguments, next) as Record<string, unknown> })) } : { ...m, content };
    });
    return { request: { ...request, messages }, kinds: r.kinds, count: r.count, model: model.texts[0]! };
  }

  /**
   * Step 5: the newest user message (redacted), or the tool results the request ends with, in
   * the thread named by X-Cynode-Thread-Id (the caller's own, in this project; else 404) or in
   * the active thread of (user, project). Returns the thread id.
   */
  async persistUserMessage(principal: Principal, r: Redacted, project: ProjectRow, threadId: string | undefined): Promise<string> {
    // A turn that sends tool results back is stored as those results (role tool), not as a repeat of the question.
    const all = r.request.messages;
    let first = all.length;
    while (first > 0 && all[first - 1]!.role === 'tool') first--;
    if (first < all.length) {
      const [head, ...rest] = all.slice(first);
      const id = await this.persistTurn(principal, r, project, threadId, 'tool', head!.content, { tool_call_id: head!.toolCallId, ...(head!.toolName ? { tool_name: head!.toolName } : {}) });
      for (const m of rest) await this.append({ threadId: id, role: 'tool', content: m.content, metadata: { tool_call_id: m.toolCallId, ...(m.toolName ? { tool_name: m.toolName } : {}) } });
      return id;
    }
    const newestUser = [...all].reverse().find((m) => m.role === 'user')!;
    return this.persistTurn(principal, r, project, threadId, 'user', newestUser.content, {});
  }

  private async persistTurn(principal: Principal, r: Redacted, project: ProjectRow, threadId: string | undefined, role: 'user' | 'tool', content: string, extra: Record<string, unknown>): Promise<string> {
    const metadata = r.count > 0 || Object.keys(extra).length > 0 ? { ...extra, ...(r.count > 0 ? { redaction_kinds: r.kinds } : {}) } : null;
    const pair = `${principal.userId}|${project.id}`;
    if (threadId === undefined) {
      const active = this.activeThreads.get(pair);
      // Not stored when that thread has been idle too long (rotation): then the database chooses.
      if (active && (await this.append({ threadId: active, role, content, metadata, activeWithinHours: ACTIVE_THREAD_HOURS }))) return active;
      const chosen = await appendToActiveThread(this.db, { userId: principal.userId, projectId: project.id, role, content, metadata });
      return this.markActive(pair, chosen);
    }
    const named = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(threadId) ? await findOwnThread(this.db, principal.userId, threadId) : null;
    if (!named || named.project_id !== project.id || !(await this.append({ threadId: named.id, role, content, metadata }))) {
      throw chatError(404, 'thread_not_found', 'Thread not found');
    }
    // The thread used last is the active one.
    return this.markActive(pair, named.id);
  }

  /** Appends to an existing thread; null when the thread is gone (or, with activeWithinHours, idle). */
  private append(m: Omit<NewMessage, 'id'>): Promise<MessageRow | null> {
    // Ordered ids: messages appended within one clock tick still list in the order they were written.
    return this.messageWrites.submit({ id: orderedUuid(), ...m });
  }

  private markActive(pair: string, threadId: string): string {
    this.activeThreads.set(pair, threadId);
    return threadId;
  }

  /**
   * The nodes that can answer `model`; 503 when no node serves inference at all (or, for the
   * project manager agent, none runs one yet), 404 when none has the model.
   */
  async candidates(principal: Principal, model: string, ctx?: RequestContext): Promise<InferenceNode[]> {
    if (model === PM_MODEL) {
      throw chatError(503, 'cynodeai_inference_unavailable', `The project manager agent (${PM_MODEL}) does not run on any node yet; choose a model from GET /v1/models`);
    }
    const nodes = await this.servingNodes();
    if (nodes.length === 0) throw chatError(503, 'cynodeai_inference_unavailable', 'No node serves inference now: a node must be registered, enabled, and running Ollama');
    const having = nodes.filter((n) => n.models.includes(model));
    // A model the caller may not use answers as one that does not exist: it is not theirs to know of.
    if (having.length === 0 || !(await this.mayUse(principal, model, ctx))) throw chatError(404, 'model_not_found', `The model "${model.slice(0, 200)}" does not exist or you do not have access to it; GET /v1/models lists the models you can use`);
    return having;
  }

  /**
   * Calls a node with the model, retrying transient failures (before any content was passed on)
   * on the next best node, with backoff. `signal` ends it at once (client gone, or timeout).
   */
  async generate(
    candidates: InferenceNode[],
    body: Pick<ChatRequest, 'model' | 'messages' | 'options' | 'tools' | 'format'>,
    opts: { signal: AbortSignal; onToken?: (t: string) => void; onToolCalls?: (calls: OllamaToolCall[]) => void; onAttempt?: (node: InferenceNode) => void },
  ): Promise<Generated> {
    const request = {
      model: body.model,
      messages: toOllamaMessages(body.messages),
      stream: true,
      ...(Object.keys(body.options).length > 0 ? { options: body.options } : {}),
      ...(body.tools ? { tools: body.tools } : {}),
      ...(body.format !== undefined ? { format: body.format } : {}),
    };
    const signal = AbortSignal.any([opts.signal, this.closing.signal]);
    const failed = new Set<string>();
    let delay = this.settings.backoffMs;
    let last: unknown;
    for (let attempt = 1; attempt <= this.settings.retries + 1; attempt++) {
      if (signal.aborted) break;
      const pool = candidates.filter((n) => !failed.has(n.id));
      const node = this.best(pool.length > 0 ? pool : candidates);
      opts.onAttempt?.(node);
      try {
        const target = await this.target(node);
        this.busy.set(node.id, (this.busy.get(node.id) ?? 0) + 1);
        try {
          const outcome = await this.client.chat(target, request, { signal, onToken: opts.onToken, onToolCalls: opts.onToolCalls });
          this.warmed.set(`${node.id}|${body.model}`, true);
          return { outcome, node, attempts: attempt };
        } finally {
          const n = (this.busy.get(node.id) ?? 1) - 1;
          if (n <= 0) this.busy.delete(node.id);
          else this.busy.set(node.id, n);
        }
      } catch (err) {
        last = err;
        if (signal.aborted) break;
        if (!(err instanceof NodeCallError) || !err.transient || err.started) break;
        failed.add(node.id);
        if (attempt <= this.settings.retries) await sleep(delay, signal);
        delay *= 2;
      }
    }
    if (opts.signal.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    if (this.closing.signal.aborted) throw chatError(503, 'cynodeai_inference_unavailable', 'The server is shutting down; retry shortly');
    // What the node said, and its address, are for the admin's log (the route logs `cause`); the caller gets the fact.
    const problem = chatError(502, 'cynodeai_inference_failed', 'Inference failed on the node serving this model; try again later (an admin finds the details in the server log)');
    problem.cause = last ?? new Error('the node gave no answer');
    throw problem;
  }

  private capabilitiesOf?: ModelCapabilities;
  private get capabilities(): ModelCapabilities {
    return (this.capabilitiesOf ??= new ModelCapabilities(this.client, (n) => this.target(n)));
  }

  /** Of the candidates, those whose model can do what the request needs (/api/show, cached); else 400 (502 when no node could say). */
  able(candidates: InferenceNode[], model: string, needs: Capability[] | undefined, signal: AbortSignal): Promise<InferenceNode[]> {
    return this.capabilities.able(candidates, model, needs ?? [], signal);
  }

  /** Embeddings of each input from the best of the candidates; a failure is a 502 whose cause the route logs. */
  async embed(candidates: InferenceNode[], body: { model: string; input: string[]; dimensions?: number }, signal: AbortSignal): Promise<EmbedOutcome> {
    const node = this.best(candidates);
    try {
      return await this.client.embed(await this.target(node), body, AbortSignal.any([signal, this.closing.signal, AbortSignal.timeout(this.settings.timeoutSeconds * 1000)]));
    } catch (err) {
      const problem = chatError(502, 'cynodeai_inference_failed', 'Embedding failed on the node serving this model; try again later (an admin finds the details in the server log)');
      problem.cause = err;
      throw problem;
    }
  }

  /** The node a call goes to first: the desktop's own, else the least loaded. */
  private best(nodes: InferenceNode[]): InferenceNode {
    return [...nodes].sort((a, b) => {
      const [la, ra] = rank(a, this.busy);
      const [lb, rb] = rank(b, this.busy);
      return la - lb || ra - rb;
    })[0]!;
  }

  /** The (node, model) pairs this process had loaded in the last five minutes: a completion or a warm call. */
  private readonly warmed = new LRUCache<string, true>({ max: 10_000, ttl: WARM_FOR_MS });

  /**
   * POST /v1/chat/warm: asks the node that would answer `model` to load it, without waiting for
   * it (a chat never waits on this). Debounced: a model that node used or loaded in the last five
   * minutes is already warm. Same 404/503 as a completion for a model nobody can serve.
   */
  async warm(principal: Principal, model: string): Promise<'warming' | 'already_warm'> {
    const node = this.best(await this.candidates(principal, model));
    const key = `${node.id}|${model}`;
    if (this.warmed.has(key)) return 'already_warm';
    this.warmed.set(key, true);
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.settings.timeoutSeconds * 1000)]);
    // Ollama loads a model when asked to chat with no messages.
    this.target(node)
      .then((target) => this.client.chat(target, { model, messages: [], stream: true }, { signal }))
      .catch(() => this.warmed.delete(key));
    return 'warming';
  }

  private servingNodes(): Promise<InferenceNode[]> {
    return this.serving.get('all', () => inferenceNodes(this.db));
  }

  /** Ends every generation still running (the server is stopping). */
  close(): void {
    this.closing.abort();
  }

  /** Opened tokens by ciphertext: a token changes only with its ciphertext (a new config). */
  private readonly tokens = new LRUCache<string, string>({ max: 1000 });

  private async target(node: InferenceNode): Promise<NodeTarget> {
    let token = this.tokens.get(node.token_ciphertext);
    if (token === undefined) {
      token = this.openToken(node);
      this.tokens.set(node.token_ciphertext, token);
    }
    return { url: node.worker_api_target_url, token };
  }

  /**
   * Step 7: the assistant's answer, once complete, in the same thread, written together with the
   * completion's audit row (`served`). When this throws, neither was stored.
   */
  async persistAnswer(threadId: string, model: string, g: Generated, served: ChatAuditEntry, toolCalls?: OpenAiToolCall[]): Promise<void> {
    const calls = toolCalls?.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
    const metadata = { model, node_id: g.node.id, ...(calls && calls.length > 0 ? { tool_calls: calls } : {}) };
    if (!(await this.answerWrites.submit({ id: orderedUuid(), threadId, content: g.outcome.content, metadata, audit: served }))) {
      throw new Error(`chat thread ${threadId} disappeared before the answer was stored`);
    }
  }

  /**
   * The steps of an agent turn in its thread, before its answer: the model's tool calls and their
   * results, redacted like every message, so the thread replays the turn.
   */
  async appendSteps(threadId: string, steps: ReadonlyArray<{ role: 'assistant' | 'tool'; content: string; metadata: Record<string, unknown> }>): Promise<void> {
    if (steps.length === 0) return;
    const clean = await redactAll(steps.map((m) => m.content));
    // Submitted together so the group commit writes them in one statement; their ordered ids keep
    // them listed in the order of the turn.
    await Promise.all(steps.map((m, i) => this.append({ threadId, role: m.role, content: clean.texts[i]!, metadata: m.metadata })));
  }

  async audit(entry: ChatAuditEntry): Promise<void> {
    await this.auditWrites.submit(entry);
  }

  /* Threads (native REST). */

  async createThread(principal: Principal, projectRef: string | undefined, title: string | undefined, ctx: RequestContext): Promise<ThreadRow> {
    const project = await this.threadProject(principal, projectRef, ctx);
    // A title is often the first words of a message (the console does that): redacted like one.
    const clean = title === undefined ? null : (await redactAll([title])).texts[0]!;
    const thread = await insertThread(this.db, { userId: principal.userId, projectId: project.id, title: clean });
    // Creating a thread makes it the active one.
    this.markActive(`${principal.userId}|${project.id}`, thread.id);
    return thread;
  }

  /** PATCH /v1/chat/threads/{id}: a new title (redacted like a message), or none. */
  async renameThread(principal: Principal, id: string, title: string | null): Promise<ThreadRow> {
    const clean = title === null ? null : (await redactAll([title])).texts[0]!;
    const t = await renameOwnThread(this.db, principal.userId, id, clean);
    if (!t) throw new HttpProblem(404, 'Thread not found');
    return t;
  }

  /** DELETE /v1/chat/threads/{id}: the thread and its messages, for good; audited (without content). */
  async deleteThread(principal: Principal, id: string, ctx: RequestContext): Promise<void> {
    const messages = await this.db.transaction(async (tx) => {
      const n = await deleteOwnThread(tx, principal.userId, id);
      if (n !== null) {
        await appendAudit(tx, { category: 'admin', action: 'chat_thread_deleted', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'chat_thread', resourceId: id, details: { messages: n } }, ctx);
      }
      return n;
    });
    if (messages === null) throw new HttpProblem(404, 'Thread not found');
    // A remembered active thread that is gone is found out at the next append anyway; forget it now.
    for (const [pair, threadId] of [...this.activeThreads.entries()]) if (threadId === id) this.activeThreads.delete(pair);
  }

  async listThreads(principal: Principal, projectRef: string | undefined, limit: number, offset: number, ctx: RequestContext): Promise<ThreadRow[]> {
    const projectId = projectRef === undefined ? undefined : (await this.threadProject(principal, projectRef, ctx)).id;
    return listOwnThreads(this.db, { userId: principal.userId, projectId, limit, offset });
  }

  async thread(principal: Principal, id: string): Promise<ThreadRow> {
    const t = await findOwnThread(this.db, principal.userId, id);
    if (!t) throw new HttpProblem(404, 'Thread not found');
    return t;
  }

  async messages(principal: Principal, id: string, limit: number, offset: number): Promise<MessageRow[]> {
    const t = await this.thread(principal, id);
    return listMessages(this.db, t.id, limit, offset);
  }

  /**
   * POST /v1/chat/threads/{id}/messages: a user message appended by a client, redacted like a
   * completion's. The thread becomes the active one of its project.
   */
  async postMessage(principal: Principal, id: string, role: string, content: string): Promise<{ message: MessageRow; redacted: Redacted }> {
    const t = await this.thread(principal, id);
    if (role !== 'user') throw new HttpProblem(400, `Clients may only append user messages (got role "${role.slice(0, 40)}")`);
    const redacted = await this.redact({ model: PM_MODEL, messages: [{ role: 'user', content }], stream: false, includeUsage: false, options: {} });
    const message = await this.append({ threadId: t.id, role: 'user', content: redacted.request.messages[0]!.content, metadata: redacted.count > 0 ? { redaction_kinds: redacted.kinds } : null });
    if (!message) throw new HttpProblem(404, 'Thread not found');
    if (t.project_id !== null) this.markActive(`${principal.userId}|${t.project_id}`, t.id);
    return { message, redacted };
  }

  /** Problem-details flavour of project(): the thread routes are native endpoints. */
  private async threadProject(principal: Principal, ref: string | undefined, ctx: RequestContext): Promise<ProjectRow> {
    try {
      return await this.project(principal, ref, ctx);
    } catch (err) {
      if (err instanceof HttpProblem) {
        const { code: _code, ...rest } = err.extensions;
        throw new HttpProblem(err.status, err.detail, rest, err.headers);
      }
      throw err;
    }
  }
}

/** Waits `ms`, or less when `signal` aborts (the caller checks the signal next). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> => timeout(ms, undefined, { signal }).catch(() => {});
