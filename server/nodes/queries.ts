import type { Queryable } from '../db';
import type { NodeStatus } from './store';
import type { NodeTarget as WorkerApiTarget } from './node-client';

/*
 * What other domains may read about nodes: which may be sent work now, the ones serving
 * inference, and where one's Worker API is. The dispatcher, processes, commands and chat build on it.
 */

/**
 * A node the orchestrator can talk to now, as a condition on the nodes table
 * under `alias`: reporting (`active`), not disabled or draining, has applied the config it was
 * last given, and can be reached and authenticated. What it may be given depends on what it
 * runs: sandboxes (dispatchableCondition) or inference (servingCondition).
 */
export function reachableCondition(alias = 'n'): string {
  const a = alias;
  return `(${a}.status = 'active' AND ${a}.admin_state = 'enabled'
    AND ${a}.config_ack_status = 'applied' AND ${a}.config_ack_version = ${a}.config_version
    AND ${a}.worker_api_target_url IS NOT NULL AND ${a}.worker_api_token_ciphertext IS NOT NULL)`;
}

/**
 * When the orchestrator may lease a node sandbox jobs: reachable and running sandboxes. The one
 * definition behind `dispatchableNodes`, the admin list's `dispatchable` flag, and the
 * dispatcher's queries.
 */
export function dispatchableCondition(alias = 'n'): string {
  return `(${reachableCondition(alias)} AND (${alias}.capability->'sandbox'->>'supported')::boolean IS TRUE)`;
}

/**
 * When the orchestrator may send a node inference (an inference path): reachable and
 * its latest report says Ollama runs. Sandboxes are not required: a GPU box that only serves
 * models is an inference path all the same.
 */
export function servingCondition(alias = 'n'): string {
  return `(${reachableCondition(alias)} AND (${alias}.capability->'inference'->>'running')::boolean IS TRUE)`;
}

/** A node that serves inference now, with what it has. */
export interface InferenceNode {
  id: string;
  node_slug: string;
  worker_api_target_url: string;
  labels: string[];
  models: string[];
  /** Inference jobs (prompt tasks) running on it. */
  running: number;
  /** Its Worker API token, sealed (server/vault); opened only to call it. */
  token_ciphertext: string;
}

/**
 * The nodes serving inference now (servingCondition, the rule readiness counts too), by slug,
 * with their models, running inference jobs and sealed tokens: what chat and prompt-task routing
 * choose from. Re-read per call, like dispatchableNodes.
 */
export async function inferenceNodes(q: Queryable): Promise<InferenceNode[]> {
  const rows = await q.query<{ id: string; node_slug: string; worker_api_target_url: string; labels: unknown; models: unknown; running: number; token_ciphertext: string }>(
    `SELECT n.id, n.node_slug, n.worker_api_target_url, n.labels, n.capability->'inference'->'available_models' AS models,
            n.worker_api_token_ciphertext AS token_ciphertext,
            (SELECT count(*)::int FROM jobs j WHERE j.node_id = n.id AND j.status = 'running' AND j.kind = 'inference') AS running
     FROM nodes n
     WHERE ${servingCondition('n')}
     ORDER BY n.node_slug`,
  );
  return rows.map((r) => ({
    id: r.id,
    node_slug: r.node_slug,
    worker_api_target_url: r.worker_api_target_url,
    labels: Array.isArray(r.labels) ? r.labels.filter((l): l is string => typeof l === 'string') : [],
    models: Array.isArray(r.models) ? r.models.filter((m): m is string => typeof m === 'string') : [],
    running: r.running,
    token_ciphertext: r.token_ciphertext,
  }));
}

/** Where a node's Worker API is, and whether it reports. */
export interface NodeTarget {
  id: string;
  node_slug: string;
  worker_api_target_url: string | null;
  status: NodeStatus;
}

export async function nodeTarget(q: Queryable, nodeId: string): Promise<NodeTarget | null> {
  const rows = await q.query<NodeTarget>('SELECT id, node_slug, worker_api_target_url, status FROM nodes WHERE id = $1', [nodeId]);
  return rows[0] ?? null;
}

/**
 * Where to call a node's Worker API: its address on record and its bearer token (`workerToken`
 * opens it from the vault); null when the node is gone or has either not yet.
 */
export async function workerApiTarget(q: Queryable, nodeId: string, workerToken: (nodeId: string) => Promise<string | null>): Promise<WorkerApiTarget | null> {
  const node = await nodeTarget(q, nodeId);
  if (!node?.worker_api_target_url) return null;
  const token = await workerToken(nodeId);
  return token ? { url: node.worker_api_target_url, token } : null;
}
