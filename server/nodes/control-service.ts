import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { incrementBase32, ulid } from 'ulid';
import type { BootstrapPayload, CapabilityReport, ConfigAck, NodeConfig, RegisterRequest } from '../../node-manager/contract/control-plane';
import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import { sameSecret } from '../http/credentials';
import type { RequestContext } from '../http/principal';
import { HttpProblem, badRequest, conflict, notFound, tooManyRequests, unauthorized } from '../http/problem';
import type { Vault } from '../vault/envelope';
import type { NodeClaims, NodeTokens } from './node-tokens';
import type { JoinPsk } from './psk';
import {
  findNode,
  findNodeBySlug,
  insertNode,
  recordConfigAck,
  recordRegistration,
  recordReport,
  setConfigVersion,
  setWorkerTokenCiphertext,
  workerTokenContext,
  type NodeRow,
  type ReportedFacts,
} from './store';

/** What the control plane tells every node to obey. */
const SANDBOX_POLICY = { default_network_policy: 'none', allowed_network_policies: ['none', 'restricted'] };
const CONSTRAINTS = { max_request_bytes: 10 * 1024 * 1024, max_job_timeout_seconds: 10_800 };

// Bad join keys per client address before it must wait: a node retrying with an old key is
// fine, someone guessing keys is slowed down (a generated key is 256 bits; one set in the
// environment may be weaker).
const BAD_PSK_TRIES = 20;
const BAD_PSK_WINDOW_SECONDS = 10 * 60;

export interface ControlPlaneOptions {
  /** How often nodes must report (NodeConfig.heartbeat_interval_seconds). */
  heartbeatSeconds: number;
  /** The Ollama image a node runs when it starts its own (CYNODE_OLLAMA_IMAGE). */
  ollamaImage: string;
}

/**
 * The node-facing side: registration with the join PSK, the node's
 * config and its acknowledgement, and capability reports, which are also the heartbeat.
 */
export class ControlPlaneService {
  private readonly badPsk = new RateLimiterMemory({ keyPrefix: 'node_register_bad_psk', points: BAD_PSK_TRIES, duration: BAD_PSK_WINDOW_SECONDS });

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly tokens: NodeTokens,
    private readonly psk: JoinPsk,
    private readonly opts: ControlPlaneOptions,
  ) {}

  /**
   * The join key admits a node. A new name creates it (201) and records the digest of its secret;
   * a taken name registers again (200) only with that same secret, else 409, audited, and nothing
   * about the node changes. Every registration voids the node tokens of earlier ones and mints a
   * new Worker API token, which the node fetches with its config: whoever held an earlier token
   * learns nothing from it about the new one.
   */
  async register(req: RegisterRequest, baseUrl: string, ctx: RequestContext): Promise<{ created: boolean; payload: BootstrapPayload }> {
    const tried = await this.badPsk.get(ctx.ip);
    if (tried && tried.consumedPoints >= BAD_PSK_TRIES) throw tooManyRequests('Too many registrations with a wrong key from this address; retry later', Math.ceil(tried.msBeforeNext / 1000));
    if (!(await this.psk.matches(req.psk))) {
      await this.badPsk.consume(ctx.ip).catch(() => {});
      await appendAudit(this.db, { category: 'auth', action: 'node_register_refused', outcome: 'failure', actorId: null, resourceType: 'node', reason: 'wrong join key', details: { node_slug: req.capability.node.node_slug } }, ctx);
      // One message whatever was wrong with the key.
      throw unauthorized('Registration refused: the join key (psk) is not valid');
    }

    const cap = req.capability;
    const slug = cap.node.node_slug;
    const facts = factsOf(cap);
    const secretSha256 = sha256(req.node_secret);
    const registrationId = randomUUID();
    const outcome = await this.db.transaction(async (tx) => {
      let row = await findNodeBySlug(tx, slug, { forUpdate: true });
      let isNew = false;
      if (!row) {
        row = await insertNode(tx, randomUUID(), slug);
        // Null: a registration of the same slug committed in between; this one must prove it is that node.
        if (row) isNew = true;
        else row = await findNodeBySlug(tx, slug, { forUpdate: true });
      }
      if (!row) throw new HttpProblem(503, 'The node was deleted while registering; retry');
      // A row without a digest was registered by an earlier version: this registration records it.
      if (!isNew && row.node_secret_sha256 !== null && !sameSecret(row.node_secret_sha256, secretSha256)) return { refused: row };
      await recordReport(tx, row.id, facts, { registration: true });
      const workerTokenSealed = this.vault.seal(randomBytes(32).toString('base64url'), workerTokenContext(row.id));
      const updated = (await recordRegistration(tx, row.id, { registrationId, workerTokenSealed, secretSha256 }))!;
      await this.desiredState(tx, updated);
      const details = { node_slug: slug, new: isNew, ...(!isNew && row.node_secret_sha256 === null ? { secret_recorded: true } : {}) };
      await appendAudit(tx, { category: 'admin', action: 'node_registered', outcome: 'success', actorId: null, resourceType: 'node', resourceId: row.id, scopeType: 'system', details }, ctx);
      return { node: updated, created: isNew };
    });

    if (outcome.refused) {
      await appendAudit(
        this.db,
        { category: 'auth', action: 'node_register_refused', outcome: 'failure', actorId: null, resourceType: 'node', resourceId: outcome.refused.id, scopeType: 'system', reason: "name taken; not that node's secret", details: { node_slug: slug } },
        ctx,
      );
      throw conflict(
        `Node name "${slug}" is taken by a registered node, and this is not that node: its secret does not match. ` +
          'If this machine is that node, start it with the state directory it first registered from; otherwise choose another name, ' +
          `or have an admin delete node "${slug}" first.`,
      );
    }
    const { node, created } = outcome;
    const { token, expiresAt } = await this.tokens.sign({ nodeId: node.id, nodeSlug: node.node_slug, registrationId });
    return {
      created,
      payload: {
        version: 1,
        issued_at: new Date().toISOString(),
        node_id: node.id,
        orchestrator: {
          base_url: baseUrl,
          endpoints: { worker_registration_url: `${baseUrl}/v1/nodes/register`, node_config_url: `${baseUrl}/v1/nodes/config`, node_report_url: `${baseUrl}/v1/nodes/capability` },
        },
        auth: { node_jwt: token, expires_at: expiresAt.toISOString() },
      },
    };
  }

  /** The node's config; its version changes only when what it says changes. */
  async config(node: NodeClaims, baseUrl: string): Promise<NodeConfig> {
    return this.db.transaction(async (tx) => {
      const row = await this.nodeOf(tx, node);
      const { version, token, desired } = await this.desiredState(tx, row);
      return {
        version: 1,
        config_version: version,
        issued_at: new Date().toISOString(),
        node_slug: row.node_slug,
        orchestrator: { base_url: baseUrl, endpoints: { worker_api_target_url: desired.worker_api_target_url, node_report_url: `${baseUrl}/v1/nodes/capability` } },
        policy: desired.policy,
        worker_api: { orchestrator_bearer_token: token },
        inference_backend: desired.inference_backend,
        constraints: desired.constraints,
        heartbeat_interval_seconds: desired.heartbeat_interval_seconds,
      };
    });
  }

  /** Records what the node did with a config; `applied` for the current version makes it dispatchable. */
  async ack(node: NodeClaims, ack: ConfigAck): Promise<void> {
    if (ack.node_slug !== node.nodeSlug) throw badRequest(`node_slug "${ack.node_slug.slice(0, 64)}" is not the node this token was issued to`);
    const recorded = await recordConfigAck(this.db, node.nodeId, node.registrationId, { version: ack.config_version, status: ack.status, error: ack.status === 'failed' ? (ack.error ?? null) : null, at: ack.ack_at });
    if (!recorded) throw (await findNode(this.db, node.nodeId)) ? replaced() : nodeGone();
  }

  /**
   * The heartbeat: fresh facts, and a stale node is active again. For a deleted node it answers
   * 401, not 404: the token was revoked with the
   * row, and a node that gets 401 registers again, which recreates it.
   */
  async report(node: NodeClaims, cap: CapabilityReport, ctx: RequestContext): Promise<void> {
    if (cap.node.node_slug !== node.nodeSlug) throw badRequest(`node.node_slug "${cap.node.node_slug}" is not the node this token was issued to`);
    const facts = factsOf(cap);
    await this.db.transaction(async (tx) => {
      const before = await findNode(tx, node.nodeId, { forUpdate: true });
      if (!before) throw unauthorized('This node token belongs to a node that was deleted; register again');
      if (before.registration_id !== node.registrationId) throw replaced();
      const after = (await recordReport(tx, before.id, facts, { registration: false }))!;
      // The Worker API URL is part of the config: a node that moved gets a new config version.
      await this.desiredState(tx, after);
      if (before.status === 'stale') {
        await appendAudit(tx, { category: 'admin', action: 'node_active', outcome: 'success', actorId: null, resourceType: 'node', resourceId: before.id, scopeType: 'system', details: { node_slug: before.node_slug } }, ctx);
      }
    });
  }

  /** The node row, locked for this transaction; 404 once an admin deleted it, 401 once the node registered again. */
  private async nodeOf(tx: Queryable, node: NodeClaims): Promise<NodeRow> {
    const row = await findNode(tx, node.nodeId, { forUpdate: true });
    if (!row) throw nodeGone();
    if (row.registration_id !== node.registrationId) throw replaced();
    return row;
  }

  /**
   * What the node should run with, and its config version: a new ULID when the content's hash
   * differs from the one behind the current version, otherwise the current one. The row must be
   * locked by the caller's transaction, so concurrent calls cannot mint two versions.
   */
  private async desiredState(tx: Queryable, row: NodeRow) {
    let token: string;
    if (row.worker_api_token_ciphertext) {
      token = this.vault.open(row.worker_api_token_ciphertext, workerTokenContext(row.id));
    } else {
      // Only a row from before tokens existed; give it one now.
      token = randomBytes(32).toString('base64url');
      await setWorkerTokenCiphertext(tx, row.id, this.vault.seal(token, workerTokenContext(row.id)));
    }
    const desired = {
      node_slug: row.node_slug,
      worker_api_target_url: row.worker_api_target_url ?? '',
      policy: { sandbox: SANDBOX_POLICY },
      inference_backend: inferenceBackend(row.capability, row.labels, this.opts.ollamaImage),
      constraints: CONSTRAINTS,
      heartbeat_interval_seconds: this.opts.heartbeatSeconds,
    };
    // The token counts only through its digest: a new token is a new config version, and the
    // stored hash tells nothing about a token of 256 random bits.
    const hash = sha256(canonicalJson({ ...desired, worker_api_token_sha256: sha256(token) }));
    let version = row.config_version;
    if (!version || row.config_hash !== hash) {
      version = nextConfigVersion(row.config_version);
      await setConfigVersion(tx, row.id, version, hash);
    }
    return { version, token, desired };
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

/**
 * Whether a node should start its own Ollama, simplified and deterministic:
 * not when it uses an Ollama it did not start, when its user disabled inference, when it cannot
 * run one, or when it is labelled sandbox_only; otherwise yes, with the image for its GPUs.
 * (No policy vetoes nodes yet, so `require` needs no exception.)
 */
export function inferenceBackend(capability: Json | null, labels: string[], image: string): NodeConfig['inference_backend'] {
  const inference = obj(capability?.inference);
  if (inference.existing_service === true || inference.mode === 'disabled' || inference.supported !== true || labels.includes('sandbox_only')) return { enabled: false };
  const devices = Array.isArray(obj(capability?.gpu).devices) ? (obj(capability?.gpu).devices as unknown[]).map(obj) : [];
  const looks = (re: RegExp) => devices.some((d) => re.test(`${String(d.vendor ?? '')} ${String(d.model ?? '')}`));
  const rocm = devices.some((d) => obj(d.features).rocm_version !== undefined) || looks(/amd|radeon|instinct/i);
  const cuda = devices.some((d) => obj(d.features).cuda_capability !== undefined) || looks(/nvidia|geforce|rtx|tesla/i);
  const variant = rocm ? 'rocm' : cuda ? 'cuda' : 'cpu';
  // Ollama publishes its ROCm build under the :rocm tag; an image with a tag is taken as meant.
  const tagged = /:[^/]+$/.test(image);
  return { enabled: true, variant, image: variant === 'rocm' && !tagged ? `${image}:rocm` : image };
}

const nodeGone = () => notFound('Node (it was deleted; register again)');
const replaced = () => unauthorized('This node token was replaced: the node registered again since; register again to get a new one');

function factsOf(cap: CapabilityReport): ReportedFacts {
  let url: URL;
  try {
    url = new URL(cap.worker_api.base_url);
  } catch {
    throw badRequest('capability.worker_api.base_url is not a valid URL');
  }
  if (url.username || url.password || url.search || url.hash) throw badRequest('capability.worker_api.base_url must be scheme://host:port[/path], without credentials, query or fragment');
  const maxConcurrency = cap.sandbox?.max_concurrency;
  return {
    displayName: cap.node.name ?? null,
    labels: cap.node.labels ?? [],
    // The dispatcher appends /v1/worker/...; one spelling without a trailing slash.
    workerApiTargetUrl: url.toString().replace(/\/+$/, ''),
    maxConcurrency: typeof maxConcurrency === 'number' && maxConcurrency >= 1 ? maxConcurrency : 1,
    capability: cap,
    capabilityHash: sha256(canonicalJson(cap)),
  };
}

/** ULIDs sort by time; within one millisecond (or after a clock step back) the successor still sorts after. */
export function nextConfigVersion(previous: string | null): string {
  const next = ulid();
  return previous && next <= previous ? incrementBase32(previous) : next;
}

function sha256(s: string): string {
  return `sha256:${createHash('sha256').update(s, 'utf8').digest('hex')}`;
}

/** JSON with object keys sorted, so equal content always hashes the same whatever order it came in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
