import type { Queryable } from '../db';
import { ACTIVE_GROUPS_OF_USER } from '../groups/memberships';
import type { CredentialType } from './types/contract';

export type InstanceStatus = 'provisioning' | 'active' | 'degraded' | 'error' | 'credential_expired' | 'disabled';
export type CredentialStatus = 'active' | 'disabled' | 'revoked';

export interface InstanceRow {
  id: string;
  type: string;
  name: string;
  owner_user_id: string | null;
  owner_group_id: string | null;
  project_id: string | null;
  config: Record<string, unknown>;
  status: InstanceStatus;
  last_error: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** What every read of a credential gives: never its ciphertext. */
export interface CredentialRow {
  id: string;
  instance_id: string;
  type: CredentialType;
  version: number;
  status: CredentialStatus;
  key_id: string | null;
  created_at: Date;
  rotated_at: Date | null;
  expires_at: Date | null;
}

export interface OperationRow {
  seq: string;
  id: string;
  request_id: string;
  subject_id: string;
  instance_id: string;
  operation: string;
  decision: 'allow' | 'deny';
  decision_audit_id: string | null;
  outcome: 'pending' | 'success' | 'failure';
  failure_class: string | null;
  message: string | null;
  duration_ms: number | null;
  provider_status: number | null;
  attempts: number;
  credential_id: string | null;
  credential_version: number | null;
  task_id: string | null;
  idempotency_key: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const INSTANCE = `SELECT id, type, name, owner_user_id, owner_group_id, project_id, config, status, last_error, created_by, created_at, updated_at
  FROM connector_instances`;
const CREDENTIAL = 'SELECT id, instance_id, type, version, status, key_id, created_at, rotated_at, expires_at FROM connector_credentials';
const OPERATION = `SELECT seq::text AS seq, id, request_id, subject_id, instance_id, operation, decision, decision_audit_id, outcome, failure_class, message, duration_ms,
  provider_status, attempts, credential_id, credential_version, task_id, idempotency_key, created_at, finished_at FROM connector_operations`;

export async function insertInstance(
  q: Queryable,
  i: { type: string; name: string; ownerUserId: string | null; ownerGroupId: string | null; projectId: string | null; config: Record<string, unknown>; by: string },
): Promise<string> {
  const rows = await q.query<{ id: string }>(
    `INSERT INTO connector_instances (type, name, owner_user_id, owner_group_id, project_id, config, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [i.type, i.name, i.ownerUserId, i.ownerGroupId, i.projectId, JSON.stringify(i.config), i.by],
  );
  return rows[0]!.id;
}

/** A live (not deleted) instance. */
export async function findInstance(q: Queryable, id: string, opts: { lock?: boolean } = {}): Promise<InstanceRow | null> {
  const rows = await q.query<InstanceRow>(`${INSTANCE} WHERE id = $1 AND deleted_at IS NULL${opts.lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ?? null;
}

/**
 * Live instances the user owns or whose owning group they are an active member of (all of them
 * when `all`), ordered by creation, after `after` when given.
 */
export async function listInstances(q: Queryable, f: { userId: string; all: boolean; after?: { at: string; id: string }; limit: number }): Promise<InstanceRow[]> {
  // $1 only when the query uses it: PostgreSQL refuses a parameter it cannot type (an admin's
  // listing, which names no user, answered 500).
  const params: unknown[] = f.all ? [] : [f.userId];
  const where = ['deleted_at IS NULL'];
  if (!f.all) where.push(`(owner_user_id = $1 OR owner_group_id IN (${ACTIVE_GROUPS_OF_USER}))`);
  if (f.after) {
    params.push(f.after.at, f.after.id);
    where.push(`(created_at, id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(f.limit);
  return q.query<InstanceRow>(`${INSTANCE} WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT $${params.length}`, params);
}


export async function isActiveGroupMember(q: Queryable, userId: string, groupId: string): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>(`SELECT $2::uuid IN (${ACTIVE_GROUPS_OF_USER}) AS ok`, [userId, groupId]);
  return rows[0]?.ok === true;
}

export async function groupIsActive(q: Queryable, groupId: string): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM groups WHERE id = $1 AND is_active) AS ok', [groupId]);
  return rows[0]?.ok === true;
}

export async function updateInstance(q: Queryable, id: string, patch: { name?: string; config?: Record<string, unknown>; status?: InstanceStatus; lastError?: string | null }): Promise<void> {
  const params: unknown[] = [id];
  const sets = ['updated_at = now()'];
  const set = (column: string, value: unknown) => {
    params.push(value);
    sets.push(`${column} = $${params.length}`);
  };
  if (patch.name !== undefined) set('name', patch.name);
  if (patch.config !== undefined) set('config', JSON.stringify(patch.config));
  if (patch.status !== undefined) set('status', patch.status);
  if (patch.lastError !== undefined) set('last_error', patch.lastError);
  await q.query(`UPDATE connector_instances SET ${sets.join(', ')} WHERE id = $1`, params);
}

/** Moves an instance from one of `from` to `to`; false when it was in none of them (someone else moved it). */
export async function moveInstanceStatus(q: Queryable, id: string, from: readonly InstanceStatus[], to: InstanceStatus, lastError: string | null): Promise<boolean> {
  const rows = await q.query<{ id: string }>(
    `UPDATE connector_instances SET status = $3, last_error = $4, updated_at = now()
     WHERE id = $1 AND deleted_at IS NULL AND status = ANY($2::text[]) RETURNING id`,
    [id, from, to, lastError],
  );
  return rows.length > 0;
}

/**
 * Turns `credential_expired` every instance whose current credential (the newest active one, as
 * `usableCredential` picks it) has expired, so the owner sees it before a call fails. Returns their ids.
 */
export async function markExpiredInstances(q: Queryable): Promise<string[]> {
  const rows = await q.query<{ id: string }>(
    `UPDATE connector_instances i SET status = 'credential_expired', last_error = 'The connector credential has expired', updated_at = now()
     WHERE i.deleted_at IS NULL AND i.status IN ('active', 'error', 'degraded')
       AND (SELECT c.expires_at <= now() FROM connector_credentials c
            WHERE c.instance_id = i.id AND c.status = 'active' AND c.jwe IS NOT NULL
            ORDER BY coalesce(c.rotated_at, c.created_at) DESC, c.id LIMIT 1)
     RETURNING i.id`,
  );
  return rows.map((r) => r.id);
}

/** Instances in `status` (for background health checks). */
export async function instancesIn(q: Queryable, status: InstanceStatus): Promise<InstanceRow[]> {
  return q.query<InstanceRow>(`${INSTANCE} WHERE deleted_at IS NULL AND status = $1 ORDER BY updated_at LIMIT 100`, [status]);
}

/** Soft delete: history rows keep naming it; every credential is revoked and loses its ciphertext. */
export async function deleteInstance(q: Queryable, id: string): Promise<void> {
  await q.query(`UPDATE connector_instances SET deleted_at = now(), status = 'disabled', updated_at = now() WHERE id = $1`, [id]);
  await q.query(`UPDATE connector_credentials SET status = 'revoked', jwe = NULL WHERE instance_id = $1`, [id]);
}

export async function insertCredential(
  q: Queryable,
  c: { id: string; instanceId: string; type: CredentialType; jwe: string; keyId: string | null; expiresAt: Date | null; by: string },
): Promise<void> {
  await q.query(
    `INSERT INTO connector_credentials (id, instance_id, type, version, jwe, key_id, expires_at, created_by) VALUES ($1, $2, $3, 1, $4, $5, $6, $7)`,
    [c.id, c.instanceId, c.type, c.jwe, c.keyId, c.expiresAt, c.by],
  );
}

export async function findCredential(q: Queryable, instanceId: string, id: string, opts: { lock?: boolean } = {}): Promise<CredentialRow | null> {
  const rows = await q.query<CredentialRow>(`${CREDENTIAL} WHERE instance_id = $1 AND id = $2${opts.lock ? ' FOR UPDATE' : ''}`, [instanceId, id]);
  return rows[0] ?? null;
}

export async function listCredentials(q: Queryable, instanceId: string): Promise<CredentialRow[]> {
  return q.query<CredentialRow>(`${CREDENTIAL} WHERE instance_id = $1 ORDER BY created_at, id`, [instanceId]);
}

/** Replaces the ciphertext with one sealed for the next version. */
export async function rotateCredential(q: Queryable, id: string, c: { version: number; jwe: string; keyId: string | null; expiresAt: Date | null }): Promise<void> {
  await q.query(`UPDATE connector_credentials SET version = $2, jwe = $3, key_id = $4, expires_at = $5, rotated_at = now(), status = 'active' WHERE id = $1`, [
    id,
    c.version,
    c.jwe,
    c.keyId,
    c.expiresAt,
  ]);
}

/** Disabled keeps the ciphertext (it can be rotated back to use); revoked drops it for good. */
export async function setCredentialStatus(q: Queryable, id: string, status: 'disabled' | 'revoked'): Promise<void> {
  await q.query(`UPDATE connector_credentials SET status = $2, jwe = CASE WHEN $2 = 'revoked' THEN NULL ELSE jwe END WHERE id = $1`, [id, status]);
}

/** The credential an invocation uses: the newest active one, with its ciphertext (for the executor only). */
export async function usableCredential(
  q: Queryable,
  instanceId: string,
): Promise<(CredentialRow & { jwe: string }) | null> {
  const rows = await q.query<CredentialRow & { jwe: string }>(
    `SELECT id, instance_id, type, version, status, key_id, created_at, rotated_at, expires_at, jwe FROM connector_credentials
     WHERE instance_id = $1 AND status = 'active' AND jwe IS NOT NULL ORDER BY coalesce(rotated_at, created_at) DESC, id LIMIT 1`,
    [instanceId],
  );
  return rows[0] ?? null;
}

/** What an invocation reads before it calls: the instance, the credential it would use, and the egress allow list. */
export interface InstanceForCall {
  instance: InstanceRow;
  /** The newest active credential with its ciphertext (as usableCredential), or null. */
  credential: { id: string; version: number; expires_at: Date | null; jwe: string } | null;
  /** Whether the instance ever had a credential (as hasCredentials). */
  hadCredentials: boolean;
  egressAllow: string[];
}

/**
 * findInstance, usableCredential, hasCredentials and readEgressAllow in one statement: an
 * invocation needs all four, and each round trip to the database was a share of every call's
 * overhead (docs/decisions/0006-connector-call-overhead.md).
 */
export async function instanceForCall(q: Queryable, id: string): Promise<InstanceForCall | null> {
  const rows = await q.query<InstanceRow & { c_id: string | null; c_version: number | null; c_expires_at: Date | null; c_jwe: string | null; had_credentials: boolean; egress_allow: string[] | null }>(
    `SELECT i.id, i.type, i.name, i.owner_user_id, i.owner_group_id, i.project_id, i.config, i.status, i.last_error, i.created_by, i.created_at, i.updated_at,
       c.id AS c_id, c.version AS c_version, c.expires_at AS c_expires_at, c.jwe AS c_jwe,
       EXISTS (SELECT 1 FROM connector_credentials h WHERE h.instance_id = i.id) AS had_credentials,
       (SELECT egress_allow FROM connector_settings WHERE id) AS egress_allow
     FROM connector_instances i
     LEFT JOIN LATERAL (
       SELECT id, version, expires_at, jwe FROM connector_credentials
       WHERE instance_id = i.id AND status = 'active' AND jwe IS NOT NULL ORDER BY coalesce(rotated_at, created_at) DESC, id LIMIT 1
     ) c ON true
     WHERE i.id = $1 AND i.deleted_at IS NULL`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  const { c_id, c_version, c_expires_at, c_jwe, had_credentials, egress_allow, ...instance } = row;
  return {
    instance,
    credential: c_id !== null && c_jwe !== null ? { id: c_id, version: c_version!, expires_at: c_expires_at, jwe: c_jwe } : null,
    hadCredentials: had_credentials,
    egressAllow: egress_allow ?? [],
  };
}

export async function hasCredentials(q: Queryable, instanceId: string): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM connector_credentials WHERE instance_id = $1) AS ok', [instanceId]);
  return rows[0]?.ok === true;
}

export async function insertOperation(
  q: Queryable,
  o: {
    requestId: string;
    subjectId: string;
    instanceId: string;
    operation: string;
    decision: 'allow' | 'deny';
    decisionAuditId: string | null;
    outcome: 'pending' | 'failure';
    failureClass?: string;
    message?: string;
    taskId: string | null;
    idempotencyKey: string | null;
    credentialId?: string | null;
    credentialVersion?: number | null;
  },
): Promise<string | null> {
  const rows = await q.query<{ id: string }>(
    `INSERT INTO connector_operations (request_id, subject_id, instance_id, operation, decision, outcome, failure_class, message, task_id, idempotency_key,
       credential_id, credential_version, decision_audit_id, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, CASE WHEN $6 = 'pending' THEN NULL ELSE now() END)
     ON CONFLICT DO NOTHING RETURNING id`,
    [o.requestId, o.subjectId, o.instanceId, o.operation, o.decision, o.outcome, o.failureClass ?? null, o.message ?? null, o.taskId, o.idempotencyKey, o.credentialId ?? null, o.credentialVersion ?? null, o.decisionAuditId],
  );
  return rows[0]?.id ?? null;
}

export async function finishOperation(
  q: Queryable,
  id: string,
  o: { outcome: 'success' | 'failure'; failureClass: string | null; message: string | null; durationMs: number; providerStatus: number | null; attempts: number; result: unknown },
): Promise<void> {
  await q.query(
    `UPDATE connector_operations SET outcome = $2, failure_class = $3, message = $4, duration_ms = $5, provider_status = $6, attempts = $7, result = $8, finished_at = now()
     WHERE id = $1`,
    [id, o.outcome, o.failureClass, o.message, o.durationMs, o.providerStatus, o.attempts, o.result === undefined ? null : JSON.stringify(o.result)],
  );
}

/** The recorded call under an idempotency key, with its stored result. */
export async function operationByKey(q: Queryable, instanceId: string, operation: string, key: string): Promise<(OperationRow & { result: unknown }) | null> {
  const rows = await q.query<OperationRow & { result: unknown }>(
    `SELECT seq::text AS seq, id, request_id, subject_id, instance_id, operation, decision, outcome, failure_class, message, duration_ms,
       provider_status, attempts, credential_id, credential_version, task_id, idempotency_key, created_at, finished_at, result, decision_audit_id
     FROM connector_operations WHERE instance_id = $1 AND operation = $2 AND idempotency_key = $3`,
    [instanceId, operation, key],
  );
  return rows[0] ?? null;
}

/** Newest first; the page before `beforeSeq` when given. */
export async function listOperations(q: Queryable, instanceId: string, f: { beforeSeq?: string; limit: number }): Promise<OperationRow[]> {
  const params: unknown[] = [instanceId];
  let where = 'instance_id = $1';
  if (f.beforeSeq !== undefined) {
    params.push(f.beforeSeq);
    where += ` AND seq < $${params.length}::bigint`;
  }
  params.push(f.limit);
  return q.query<OperationRow>(`${OPERATION} WHERE ${where} ORDER BY seq DESC LIMIT $${params.length}`, params);
}

export async function readEgressAllow(q: Queryable): Promise<{ entries: string[]; updated_at: Date; updated_by: string | null }> {
  const rows = await q.query<{ egress_allow: string[]; updated_at: Date; updated_by: string | null }>('SELECT egress_allow, updated_at, updated_by FROM connector_settings WHERE id');
  const row = rows[0];
  return { entries: row?.egress_allow ?? [], updated_at: row?.updated_at ?? new Date(0), updated_by: row?.updated_by ?? null };
}

export async function writeEgressAllow(q: Queryable, entries: readonly string[], by: string): Promise<void> {
  await q.query(
    `INSERT INTO connector_settings (id, egress_allow, updated_by, updated_at) VALUES (true, $1, $2, now())
     ON CONFLICT (id) DO UPDATE SET egress_allow = EXCLUDED.egress_allow, updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [JSON.stringify(entries), by],
  );
}

/** Credentials whose ciphertext is sealed to a key pair other than `kid` (what key rotation must rewrap). */
export async function credentialsSealedToOtherKeys(
  q: Queryable,
  kid: string,
): Promise<Array<{ id: string; instance_id: string; version: number; jwe: string }>> {
  return q.query<{ id: string; instance_id: string; version: number; jwe: string }>(
    `SELECT id, instance_id, version, jwe FROM connector_credentials WHERE jwe IS NOT NULL AND (key_id IS NULL OR key_id <> $1) ORDER BY id`,
    [kid],
  );
}

/** The same credential version, its ciphertext moved to another executor key pair. */
export async function replaceCredentialCiphertext(q: Queryable, old: { id: string; version: number; jwe: string }, c: { jwe: string; keyId: string }): Promise<void> {
  await q.query(`UPDATE connector_credentials SET jwe = $4, key_id = $5 WHERE id = $1 AND version = $2 AND jwe = $3`, [old.id, old.version, old.jwe, c.jwe, c.keyId]);
}
