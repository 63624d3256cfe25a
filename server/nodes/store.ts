import type { Queryable } from '../db';
import type { Vault } from '../vault/envelope';
import { dispatchableCondition, reachableCondition } from './queries';

/*
 * SQL of the nodes domain: the `nodes` table (migrations/0002), the running jobs that point at a
 * node, and the join PSK in `system_settings`. Secrets are stored only sealed (server/vault).
 */

export type NodeStatus = 'active' | 'stale';
export type AdminState = 'enabled' | 'disabled' | 'draining';

export interface NodeRow {
  id: string;
  node_slug: string;
  display_name: string | null;
  labels: string[];
  status: NodeStatus;
  admin_state: AdminState;
  worker_api_target_url: string | null;
  worker_api_token_ciphertext: string | null;
  /** Digest of the node's own secret (migrations/0010); null for a node an earlier version registered, until it registers again. */
  node_secret_sha256: string | null;
  /** The registration its current node token belongs to. */
  registration_id: string | null;
  config_version: string | null;
  config_hash: string | null;
  config_ack_version: string | null;
  config_ack_status: 'applied' | 'failed' | null;
  config_ack_error: Record<string, unknown> | null;
  config_ack_at: Date | null;
  capability: Record<string, unknown> | null;
  capability_hash: string | null;
  max_concurrency: number;
  last_seen_at: Date | null;
  registered_at: Date;
  created_at: Date;
  updated_at: Date;
}

/** The Vault context of a node's Worker API bearer token: the ciphertext opens only in this row. */
export const workerTokenContext = (nodeId: string) => `node:${nodeId}:worker-token`;

/** A node the dispatcher may lease jobs to. */
export interface DispatchableNode {
  id: string;
  node_slug: string;
  /** Where its Worker API listens (`POST {url}/v1/worker/jobs:run`). */
  worker_api_target_url: string;
  /** How many jobs it runs at once (its capability report's `sandbox.max_concurrency`, else 1). */
  max_concurrency: number;
}

/**
 * Every node that may take new jobs now, by slug. Stable API for the dispatcher: the set is
 * re-read on every call (nodes turn stale, are disabled or re-acked at any time), so callers
 * should not cache it across dispatch rounds.
 */
export async function dispatchableNodes(q: Queryable): Promise<DispatchableNode[]> {
  return q.query<DispatchableNode>(
    `SELECT n.id, n.node_slug, n.worker_api_target_url, n.max_concurrency FROM nodes n WHERE ${dispatchableCondition('n')} ORDER BY n.node_slug`,
  );
}

/**
 * The bearer token the orchestrator presents to this node's Worker API (`Authorization: Bearer
 * <token>`), opened from its sealed column; null when the node does not exist (deleted) or has no
 * token yet. Throws VaultError when the ciphertext cannot be opened (another master key).
 * Stable API for the dispatcher; never log or persist what it returns.
 */
export async function workerTokenFor(q: Queryable, vault: Vault, nodeId: string): Promise<string | null> {
  const rows = await q.query<{ worker_api_token_ciphertext: string | null }>('SELECT worker_api_token_ciphertext FROM nodes WHERE id = $1', [nodeId]);
  const sealed = rows[0]?.worker_api_token_ciphertext;
  return sealed ? vault.open(sealed, workerTokenContext(nodeId)) : null;
}

export async function findNode(q: Queryable, id: string, opts: { forUpdate?: boolean } = {}): Promise<NodeRow | null> {
  const rows = await q.query<NodeRow>(`SELECT * FROM nodes WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ?? null;
}

export async function findNodeBySlug(q: Queryable, slug: string, opts: { forUpdate?: boolean } = {}): Promise<NodeRow | null> {
  const rows = await q.query<NodeRow>(`SELECT * FROM nodes WHERE node_slug = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`, [slug]);
  return rows[0] ?? null;
}

/** A new node row, or null when another registration of the same slug won the race. */
export async function insertNode(q: Queryable, id: string, slug: string): Promise<NodeRow | null> {
  const rows = await q.query<NodeRow>(`INSERT INTO nodes (id, node_slug, last_seen_at) VALUES ($1, $2, now()) ON CONFLICT (node_slug) DO NOTHING RETURNING *`, [id, slug]);
  return rows[0] ?? null;
}

export interface ReportedFacts {
  displayName: string | null;
  labels: string[];
  workerApiTargetUrl: string;
  maxConcurrency: number;
  capability: unknown;
  capabilityHash: string;
}

/** What every capability report (registration included) records; the node is seen, so active. */
export async function recordReport(q: Queryable, id: string, f: ReportedFacts, opts: { registration: boolean }): Promise<NodeRow | null> {
  const rows = await q.query<NodeRow>(
    `UPDATE nodes SET display_name = $2, labels = $3::jsonb, worker_api_target_url = $4, max_concurrency = $5,
       capability = $6::jsonb, capability_hash = $7, status = 'active', last_seen_at = now(),
       registered_at = CASE WHEN $8 THEN now() ELSE registered_at END, updated_at = now()
     WHERE id = $1 RETURNING *`,
    [id, f.displayName, JSON.stringify(f.labels), f.workerApiTargetUrl, f.maxConcurrency, JSON.stringify(f.capability), f.capabilityHash, opts.registration],
  );
  return rows[0] ?? null;
}

/**
 * What a registration changes besides the facts: a new registration id (voiding node tokens of
 * earlier ones), a new sealed Worker API token, and the secret's digest when it was not recorded.
 */
export async function recordRegistration(q: Queryable, id: string, r: { registrationId: string; workerTokenSealed: string; secretSha256: string }): Promise<NodeRow | null> {
  const rows = await q.query<NodeRow>(
    `UPDATE nodes SET registration_id = $2, worker_api_token_ciphertext = $3, node_secret_sha256 = COALESCE(node_secret_sha256, $4), updated_at = now()
     WHERE id = $1 RETURNING *`,
    [id, r.registrationId, r.workerTokenSealed, r.secretSha256],
  );
  return rows[0] ?? null;
}

/** Every node's sealed Worker API token (master key rotation opens and seals each again). */
export async function sealedWorkerTokens(q: Queryable): Promise<{ id: string; sealed: string }[]> {
  return q.query<{ id: string; sealed: string }>('SELECT id, worker_api_token_ciphertext AS sealed FROM nodes WHERE worker_api_token_ciphertext IS NOT NULL ORDER BY id FOR UPDATE');
}

export async function setWorkerTokenCiphertext(q: Queryable, id: string, sealed: string): Promise<void> {
  await q.query('UPDATE nodes SET worker_api_token_ciphertext = $2, updated_at = now() WHERE id = $1', [id, sealed]);
}

export async function setConfigVersion(q: Queryable, id: string, version: string, hash: string): Promise<void> {
  await q.query('UPDATE nodes SET config_version = $2, config_hash = $3, updated_at = now() WHERE id = $1', [id, version, hash]);
}

/** Records an ack from the node's current registration; false when the node is gone or registered again since. */
export async function recordConfigAck(q: Queryable, id: string, registrationId: string, ack: { version: string; status: 'applied' | 'failed'; error: unknown; at: string }): Promise<boolean> {
  const rows = await q.query(
    `UPDATE nodes SET config_ack_version = $2, config_ack_status = $3, config_ack_error = $4::jsonb, config_ack_at = $5, updated_at = now()
     WHERE id = $1 AND registration_id = $6 RETURNING id`,
    [id, ack.version, ack.status, ack.error === undefined || ack.error === null ? null : JSON.stringify(ack.error), ack.at, registrationId],
  );
  return rows.length > 0;
}

export async function setAdminState(q: Queryable, id: string, state: AdminState): Promise<void> {
  await q.query('UPDATE nodes SET admin_state = $2, updated_at = now() WHERE id = $1', [id, state]);
}

export async function deleteNodeRow(q: Queryable, id: string): Promise<void> {
  await q.query('DELETE FROM nodes WHERE id = $1', [id]);
}

/**
 * Active nodes silent for longer than `staleAfterSeconds` turn stale, in one statement so that
 * several orchestrators on one database each see a node go stale exactly once.
 */
export async function markStale(q: Queryable, staleAfterSeconds: number): Promise<Array<{ id: string; node_slug: string; last_seen_at: Date | null }>> {
  return q.query(
    `UPDATE nodes SET status = 'stale', updated_at = now()
     WHERE status = 'active' AND (last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => $1))
     RETURNING id, node_slug, last_seen_at`,
    [staleAfterSeconds],
  );
}

export interface NodeView extends NodeRow {
  dispatchable: boolean;
  running_jobs: number;
}

const VIEW = `SELECT n.*, ${dispatchableCondition('n')} AS dispatchable,
    (SELECT count(*)::int FROM jobs j WHERE j.node_id = n.id AND j.status = 'running') AS running_jobs
  FROM nodes n`;

export async function listNodeViews(q: Queryable): Promise<NodeView[]> {
  return q.query<NodeView>(`${VIEW} ORDER BY n.node_slug`);
}

export async function findNodeView(q: Queryable, id: string): Promise<NodeView | null> {
  const rows = await q.query<NodeView>(`${VIEW} WHERE n.id = $1`, [id]);
  return rows[0] ?? null;
}

export interface RunningJob {
  job_id: string;
  task_id: string;
  started_at: Date | null;
}

export async function runningJobsOf(q: Queryable, nodeId: string): Promise<RunningJob[]> {
  return q.query<RunningJob>(`SELECT id AS job_id, task_id, started_at FROM jobs WHERE node_id = $1 AND status = 'running' ORDER BY started_at NULLS LAST, id`, [nodeId]);
}

export async function countRunningJobs(q: Queryable, nodeId: string): Promise<number> {
  const rows = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE node_id = $1 AND status = 'running'`, [nodeId]);
  return rows[0]?.n ?? 0;
}

/* The join PSK: `system_settings` row `node_join_psk`, value {"sealed": "v1.…"}. */

export const PSK_SETTING = 'node_join_psk';

export async function readSealedPsk(q: Queryable): Promise<string | null> {
  const rows = await q.query<{ value: { sealed?: unknown } }>('SELECT value FROM system_settings WHERE key = $1', [PSK_SETTING]);
  const sealed = rows[0]?.value.sealed;
  return typeof sealed === 'string' ? sealed : null;
}

/** Stores the first PSK unless another process already did; the caller re-reads either way. */
export async function insertSealedPskIfAbsent(q: Queryable, sealed: string): Promise<void> {
  await q.query('INSERT INTO system_settings (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO NOTHING', [PSK_SETTING, JSON.stringify({ sealed })]);
}

export async function replaceSealedPsk(q: Queryable, sealed: string, by: string): Promise<void> {
  await q.query(
    `INSERT INTO system_settings (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = system_settings.version + 1, updated_at = now(), updated_by = EXCLUDED.updated_by`,
    [PSK_SETTING, JSON.stringify({ sealed }), by],
  );
}

/** The same join key sealed again (master key rotation): neither its version nor who set it changes. */
export async function rewriteSealedPsk(q: Queryable, sealed: string): Promise<void> {
  await q.query('UPDATE system_settings SET value = $2::jsonb WHERE key = $1', [PSK_SETTING, JSON.stringify({ sealed })]);
}

/** How far the dispatchable nodes are from serving inference, for readiness. */
export interface InferenceCounts {
  /** Nodes the orchestrator can talk to now (reachableCondition). */
  reachable: number;
  /** Reachable and reporting `inference.running`. */
  serving: number;
  /** Serving and reporting at least one model. */
  withModels: number;
}

const RUNNING = `(n.capability->'inference'->>'running')::boolean IS TRUE`;
const MODELS = `n.capability->'inference'->'available_models'`;
const HAS_MODELS = `(CASE WHEN jsonb_typeof(${MODELS}) = 'array' THEN jsonb_array_length(${MODELS}) ELSE 0 END) > 0`;

export async function inferenceCounts(q: Queryable): Promise<InferenceCounts> {
  const rows = await q.query<InferenceCounts>(
    `SELECT count(*)::int AS reachable,
       count(*) FILTER (WHERE ${RUNNING})::int AS serving,
       count(*) FILTER (WHERE ${RUNNING} AND ${HAS_MODELS})::int AS "withModels"
     FROM nodes n WHERE ${reachableCondition('n')}`,
  );
  return rows[0] ?? { reachable: 0, serving: 0, withModels: 0 };
}

