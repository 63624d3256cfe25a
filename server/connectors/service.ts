import { randomUUID } from 'node:crypto';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import { badRequest, notFound } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import { redactJson } from '../redaction/redaction';
import type { Authorizer } from '../rbac/service';
import { ADMIN_ACTION, auditConnector, connectorProblem, lockInstance, requireManage, visibleInstance, type ConnectorAct } from './access';
import { parseAllowList } from './egress';
import { credentialState, type ConnectorHealth } from './health';
import type { ConnectorPolicy } from './policy';
import {
  deleteInstance,
  findInstance,
  groupIsActive,
  insertInstance,
  listInstances,
  readEgressAllow,
  updateInstance,
  writeEgressAllow,
  type InstanceRow,
  type InstanceStatus,
} from './store';
import { checkAgainst, isConnectorError, type ConnectorTypeSpec } from './types/contract';
import { catalog, driverFor } from './types/index';

export interface InstallRequest {
  type: string;
  name: string;
  config: Record<string, unknown>;
  ownerGroupId?: string;
  projectId?: string;
}

const isPageCursor = (v: unknown): v is { at: string; id: string } =>
  typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).at === 'string' && typeof (v as Record<string, unknown>).id === 'string';

function specOf(type: string): ConnectorTypeSpec {
  const driver = driverFor(type);
  if (!driver) throw connectorProblem(400, 'validation_error', `There is no connector type "${type}"; GET /v1/connectors/catalog lists them`);
  return driver.spec;
}

/**
 * A configuration must match its type's schema and hold no secret: credentials are sealed for
 * the executor, while a configuration is stored and shown as it is.
 */
async function checkConfig(spec: ConnectorTypeSpec, config: Record<string, unknown>): Promise<void> {
  try {
    checkAgainst(spec.configSchema, config, 'The configuration');
    // What the schema cannot say, such as an MCP command being on the administrator's list.
    driverFor(spec.type)?.checkConfig?.(config);
  } catch (e) {
    if (isConnectorError(e)) throw connectorProblem(400, 'validation_error', e.message);
    throw e;
  }
  const { count } = await redactJson(config, { remember: false });
  if (count > 0) throw connectorProblem(400, 'validation_error', 'The configuration looks like it holds a secret; add it as a credential instead');
}

/** Connector instances: install, read, change, switch on and off, delete; and the egress allow list. */
export class ConnectorService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly policy: ConnectorPolicy,
    private readonly health: ConnectorHealth,
  ) {}

  /** The types; `discovers` marks those whose operations each instance learns from its peer (mcp). */
  catalog(): (ConnectorTypeSpec & { discovers: boolean })[] {
    return catalog().map((spec) => ({ ...spec, discovers: driverFor(spec.type)?.discover !== undefined }));
  }

  async install(act: ConnectorAct, input: InstallRequest): Promise<InstanceRow> {
    const spec = specOf(input.type);
    await checkConfig(spec, input.config);
    if (input.ownerGroupId && !(await groupIsActive(this.db, input.ownerGroupId))) throw notFound('Group');
    if (input.projectId) await this.authz.requireProject(act.by, input.projectId, 'project.read', act.ctx);
    const id = randomUUID();
    const owner = input.ownerGroupId ? { ownerGroup: input.ownerGroupId } : { ownerUser: act.by.userId };
    const decision = await this.policy.decide(
      act.by,
      { action: 'connector.install', connector: { id, type: spec.type, ...owner, ...(input.projectId ? { project: input.projectId } : {}) } },
      act.ctx,
    );
    if (!decision.allowed) throw connectorProblem(403, 'policy_denied', 'You are not allowed to install this connector');
    return this.db.transaction(async (tx) => {
      const created = await insertInstance(tx, {
        type: spec.type,
        name: input.name,
        ownerUserId: input.ownerGroupId ? null : act.by.userId,
        ownerGroupId: input.ownerGroupId ?? null,
        projectId: input.projectId ?? null,
        config: input.config,
        by: act.by.userId,
      });
      // Types that need no credential are usable at once; the others once one is added.
      if (!spec.credentialRequired) await updateInstance(tx, created, { status: 'active' });
      const row = (await findInstance(tx, created))!;
      await auditConnector(tx, act, 'connector_installed', row, { type: spec.type, name: input.name, owner_group_id: input.ownerGroupId ?? null });
      return row;
    });
  }

  /** Instances the caller owns or shares through a group (every one for admins), oldest first. */
  async list(act: ConnectorAct, f: { cursor?: string; limit: number }): Promise<{ instances: InstanceRow[]; nextCursor?: string }> {
    const after = decodeCursor(f.cursor, isPageCursor);
    const all = await this.authz.can(act.by, ADMIN_ACTION);
    const rows = await listInstances(this.db, { userId: act.by.userId, all, after, limit: f.limit + 1 });
    const instances = rows.slice(0, f.limit);
    const last = instances.at(-1);
    return { instances, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ at: last.created_at.toISOString(), id: last.id }) } : {}) };
  }

  get(act: ConnectorAct, id: string): Promise<InstanceRow> {
    return visibleInstance(this.db, this.authz, act.by, id);
  }

  async update(act: ConnectorAct, id: string, patch: { name?: string; config?: Record<string, unknown> }): Promise<InstanceRow> {
    const instance = await visibleInstance(this.db, this.authz, act.by, id);
    await requireManage(this.policy, act, instance);
    if (patch.config !== undefined) await checkConfig(specOf(instance.type), patch.config);
    return this.db.transaction(async (tx) => {
      await lockInstance(tx, id);
      const fields = Object.entries(patch).filter(([, v]) => v !== undefined).map(([k]) => k);
      if (fields.length > 0) {
        await updateInstance(tx, id, patch);
        await auditConnector(tx, act, 'connector_updated', instance, { fields });
      }
      return (await findInstance(tx, id))!;
    });
  }

  /**
   * Switches an instance on: its health check decides whether it is `active` (or `error`, with
   * the probe's message); without a usable credential it stays `provisioning`.
   */
  async enable(act: ConnectorAct, id: string): Promise<InstanceRow> {
    const instance = await visibleInstance(this.db, this.authz, act.by, id);
    await requireManage(this.policy, act, instance);
    await checkConfig(specOf(instance.type), instance.config);
    const credential = await credentialState(this.db, instance);
    let status: InstanceStatus = 'active';
    let lastError: string | null = null;
    if (credential.kind === 'missing') status = 'provisioning';
    else if (credential.kind === 'expired') status = 'credential_expired';
    else {
      const probe = await this.health.probe(instance, act.ctx.requestId);
      if (!probe.ok) {
        status = probe.failure === 'transient' ? 'degraded' : 'error';
        lastError = probe.message;
      } else this.health.succeeded(id);
    }
    return this.db.transaction(async (tx) => {
      await lockInstance(tx, id);
      await updateInstance(tx, id, { status, lastError });
      await auditConnector(tx, act, 'connector_enabled', instance, { status });
      return (await findInstance(tx, id))!;
    });
  }

  async disable(act: ConnectorAct, id: string): Promise<InstanceRow> {
    const instance = await visibleInstance(this.db, this.authz, act.by, id);
    await requireManage(this.policy, act, instance);
    return this.db.transaction(async (tx) => {
      const locked = await lockInstance(tx, id);
      if (locked.status !== 'disabled') {
        await updateInstance(tx, id, { status: 'disabled' });
        await auditConnector(tx, act, 'connector_disabled', instance);
      }
      return (await findInstance(tx, id))!;
    });
  }

  /** Uninstall: the instance goes, its credentials are revoked (ciphertext dropped), its history stays. */
  async delete(act: ConnectorAct, id: string): Promise<void> {
    const instance = await visibleInstance(this.db, this.authz, act.by, id);
    await requireManage(this.policy, act, instance);
    await this.db.transaction(async (tx) => {
      await lockInstance(tx, id);
      await deleteInstance(tx, id);
      await auditConnector(tx, act, 'connector_deleted', instance, { type: instance.type });
    });
  }

  async egressAllow(act: ConnectorAct): Promise<{ entries: string[]; updated_at: Date; updated_by: string | null }> {
    await this.authz.require(act.by, ADMIN_ACTION, act.ctx, { resourceType: 'connector_egress' });
    return readEgressAllow(this.db);
  }

  /** Replaces the admin's allow list; every entry must parse, so a typo is an error, not a silent gap. */
  async setEgressAllow(act: ConnectorAct, entries: string[]): Promise<{ entries: string[]; updated_at: Date; updated_by: string | null }> {
    await this.authz.require(act.by, ADMIN_ACTION, act.ctx, { resourceType: 'connector_egress' });
    const cleaned = [...new Set(entries.map((e) => e.trim().toLowerCase()))];
    for (const entry of cleaned) {
      if (!entry || entry.includes(',')) throw badRequest(`"${entry}" is not one allow-list entry`);
      try {
        parseAllowList(entry);
      } catch (e) {
        throw badRequest((e as Error).message);
      }
    }
    return this.db.transaction(async (tx) => {
      const before = await readEgressAllow(tx);
      await writeEgressAllow(tx, cleaned, act.by.userId);
      await appendAudit(
        tx,
        {
          category: 'admin',
          action: 'connector_egress_allow_changed',
          outcome: 'success',
          actorId: act.by.userId,
          actorHandle: act.by.handle,
          resourceType: 'connector_egress',
          scopeType: 'system',
          details: { added: cleaned.filter((e) => !before.entries.includes(e)), removed: before.entries.filter((e) => !cleaned.includes(e)) },
        },
        act.ctx,
      );
      return readEgressAllow(tx);
    });
  }
}
