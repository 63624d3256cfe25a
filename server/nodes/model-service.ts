import { appendAudit } from '../audit/record';
import type { Db } from '../db';
import { HttpProblem, notFound } from '../http/problem';
import type { Vault } from '../vault/envelope';
import type { NodeAdminAct } from './admin-service';
import { NodeCallError, type NodeClient, type NodeTarget } from './node-client';
import { findNode, workerTokenFor, type NodeRow } from './store';

/** One model on a node, as its Ollama lists it. */
export interface NodeModel {
  name: string;
  size: number | null;
  digest: string | null;
  modified_at: string | null;
}

/** One step of a pull, as the admin sees it. */
export type PullEvent =
  | { event: 'progress'; data: { status: string; completed: number | null; total: number | null; percent: number | null } }
  | { event: 'done'; data: { status: 'success'; model: string } }
  | { event: 'error'; data: { message: string } };

/** Calls that only list or delete answer quickly or not at all. */
const SHORT_CALL_MS = 30_000;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Model management on one node through its Worker API: list, pull with
 * progress, delete. The node's Ollama does the work; this side finds the node, authenticates to
 * it, translates its answers and audits what admins did. Permission checks are the routes' job.
 */
export class NodeModelService {
  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly client: NodeClient,
  ) {}

  async list(nodeId: string): Promise<NodeModel[]> {
    const node = await this.node(nodeId);
    const models = await this.call(node, (target) => this.client.listModels(target, AbortSignal.timeout(SHORT_CALL_MS)));
    return models.map((m) => ({ name: str(m.name) ?? str(m.model) ?? '', size: num(m.size), digest: str(m.digest), modified_at: str(m.modified_at) })).filter((m) => m.name !== '');
  }

  /** Deletes a model; 404 when the node does not have it. Audited either way it succeeds. */
  async delete(act: NodeAdminAct, nodeId: string, model: string): Promise<void> {
    const node = await this.node(nodeId);
    await this.call(node, (target) =>
      this.client.deleteModel(target, model, AbortSignal.timeout(SHORT_CALL_MS)).catch((err: unknown) => {
        throw err instanceof NodeCallError && err.status === 404 ? notFound(`Model ${model} on node ${node.node_slug}`) : err;
      }),
    );
    await this.audit(act, 'model_deleted', 'success', node, model, {});
  }

  /**
   * Starts a pull and yields its progress. Errors before the node starts pulling are thrown
   * (404 unknown node, 502/503 when the node cannot); once it pulls, the outcome is the last
   * event: `done`, or `error` with Ollama's message. `signal` ends it early (the caller left);
   * the node's Ollama then stops the pull.
   */
  async pull(act: NodeAdminAct, nodeId: string, model: string, signal: AbortSignal): Promise<AsyncGenerator<PullEvent>> {
    const node = await this.node(nodeId);
    const steps = await this.call(node, (target) => this.client.pullModel(target, model, signal));
    const audit = (outcome: 'success' | 'failure', details: Record<string, unknown>) => this.audit(act, 'model_pulled', outcome, node, model, details);

    return (async function* () {
      let outcome: PullEvent | undefined;
      try {
        for await (const step of steps) {
          if (typeof step.error === 'string') {
            outcome = { event: 'error', data: { message: step.error } };
            break;
          }
          const status = str(step.status) ?? '';
          if (status === 'success') {
            outcome = { event: 'done', data: { status: 'success', model } };
            break;
          }
          const completed = num(step.completed);
          const total = num(step.total);
          yield { event: 'progress', data: { status, completed, total, percent: completed !== null && total ? Math.floor((completed / total) * 100) : null } };
        }
      } catch (err) {
        if (signal.aborted) {
          await audit('failure', { reason: 'the client left before the pull ended' });
          return;
        }
        outcome = { event: 'error', data: { message: `the node stopped answering: ${(err as Error).message}` } };
      }
      outcome ??= { event: 'error', data: { message: 'the pull ended without success' } };
      await audit(outcome.event === 'done' ? 'success' : 'failure', outcome.event === 'error' ? { reason: outcome.data.message } : {});
      yield outcome;
    })();
  }

  private async node(id: string): Promise<NodeRow> {
    const node = await findNode(this.db, id);
    if (!node) throw notFound('Node');
    return node;
  }

  /** A call to the node, its refusals as problems: its own 503 (no Ollama) stays 503, anything else is a bad gateway. */
  private async call<T>(node: NodeRow, send: (target: NodeTarget) => Promise<T>): Promise<T> {
    const token = await workerTokenFor(this.db, this.vault, node.id);
    if (!node.worker_api_target_url || !token) throw new HttpProblem(409, `Node ${node.node_slug} has not completed its registration (no Worker API yet)`);
    try {
      return await send({ url: node.worker_api_target_url, token });
    } catch (err) {
      if (!(err instanceof NodeCallError)) throw err;
      if (err.status === undefined) throw new HttpProblem(502, `Node ${node.node_slug} did not answer at ${node.worker_api_target_url}`);
      const said = err.said ?? '';
      if (err.status === 503) throw new HttpProblem(503, `Node ${node.node_slug}: ${said || 'inference is not running on this node'}`, {}, { 'retry-after': '5' });
      if (err.status === 400 || err.status === 404) throw new HttpProblem(400, `Node ${node.node_slug} refused: ${said}`);
      throw new HttpProblem(502, `Node ${node.node_slug} answered ${err.status}: ${said}`);
    }
  }

  private audit(act: NodeAdminAct, action: string, outcome: 'success' | 'failure', node: NodeRow, model: string, details: Record<string, unknown>): Promise<void> {
    return appendAudit(
      this.db,
      { category: 'admin', action, outcome, actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'node', resourceId: node.id, scopeType: 'system', details: { node_slug: node.node_slug, model, ...details } },
      act.ctx,
    );
  }
}
