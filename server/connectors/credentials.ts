import { randomUUID } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import type { Db, Queryable } from '../db';
import { conflict, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { auditConnector, connectorProblem, lockInstance, requireManage, visibleInstance, type ConnectorAct } from './access';
import type { ConnectorExecutor } from './executor-api';
import type { ConnectorPolicy } from './policy';
import {
  findCredential,
  insertCredential,
  listCredentials,
  moveInstanceStatus,
  rotateCredential,
  setCredentialStatus,
  type CredentialRow,
  type InstanceRow,
} from './store';
import { credentialSchemas, type CredentialSecret, type CredentialType } from './types/contract';
import { driverFor } from './types/index';

export interface CredentialInput {
  type: CredentialType;
  /** The secret part, shaped as `credentialSchemas[type]` says. */
  secret: Record<string, unknown>;
  expiresAt?: Date;
}

/**
 * The key id of a JWE, from its protected header (JSON serialisation, or the first part of the
 * compact one): stored next to the ciphertext so a rotation of the executor's key can find what
 * it must re-seal. Reading the header needs no key.
 */
export function keyIdOf(jwe: string): string | null {
  try {
    const protectedHeader = jwe.trimStart().startsWith('{') ? (JSON.parse(jwe) as { protected?: unknown }).protected : jwe.split('.')[0];
    if (typeof protectedHeader !== 'string') return null;
    const header = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' ? header.kid : null;
  } catch {
    return null;
  }
}

/** Never echoes the value: only where it failed, by its JSON pointer. */
function checkSecret(type: CredentialType, secret: Record<string, unknown>): CredentialSecret {
  const schema = credentialSchemas[type];
  if (!Value.Check(schema, secret)) {
    const first = Value.Errors(schema, secret).First();
    throw connectorProblem(400, 'validation_error', `The ${type} credential is not valid${first?.path ? ` at ${first.path}` : ''}: ${first?.message ?? 'it does not match its schema'}`);
  }
  return { type, ...secret } as CredentialSecret;
}

/** Instances waiting for a credential (or whose credential ran out) become usable with a new one. */
async function credentialArrived(tx: Queryable, instance: InstanceRow): Promise<void> {
  await moveInstanceStatus(tx, instance.id, ['provisioning', 'credential_expired'], 'active', null);
}

/**
 * Credentials of connector instances. The secret is sealed to the executor's key before it is
 * stored; every answer and audit row carries metadata only.
 */
export class ConnectorCredentialService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly policy: ConnectorPolicy,
    private readonly executor: ConnectorExecutor,
  ) {}

  async list(act: ConnectorAct, instanceId: string): Promise<CredentialRow[]> {
    await visibleInstance(this.db, this.authz, act.by, instanceId);
    return listCredentials(this.db, instanceId);
  }

  async create(act: ConnectorAct, instanceId: string, input: CredentialInput): Promise<CredentialRow> {
    const instance = await this.managed(act, instanceId);
    const spec = driverFor(instance.type)!.spec;
    if (!spec.credentialTypes.includes(input.type)) {
      throw connectorProblem(400, 'validation_error', `A ${spec.title} connector takes a credential of type ${spec.credentialTypes.join(' or ')}`);
    }
    const secret = checkSecret(input.type, input.secret);
    const id = randomUUID();
    const jwe = await this.executor.seal(secret, { instanceId, credentialId: id, version: 1 });
    return this.db.transaction(async (tx) => {
      const locked = await lockInstance(tx, instanceId);
      await insertCredential(tx, { id, instanceId, type: input.type, jwe, keyId: keyIdOf(jwe), expiresAt: input.expiresAt ?? null, by: act.by.userId });
      await credentialArrived(tx, locked);
      await auditConnector(tx, act, 'connector_credential_created', instance, { credential_id: id, type: input.type, version: 1 });
      return (await findCredential(tx, instanceId, id))!;
    });
  }

  /** A new secret under the same credential, as its next version; the old ciphertext is gone. */
  async rotate(act: ConnectorAct, instanceId: string, credentialId: string, input: { secret: Record<string, unknown>; expiresAt?: Date }): Promise<CredentialRow> {
    const instance = await this.managed(act, instanceId);
    const current = await findCredential(this.db, instanceId, credentialId);
    if (!current) throw notFound('Credential');
    if (current.status === 'revoked') throw conflict('A revoked credential cannot be rotated; add a new one');
    const secret = checkSecret(current.type, input.secret);
    const version = current.version + 1;
    const jwe = await this.executor.seal(secret, { instanceId, credentialId, version });
    return this.db.transaction(async (tx) => {
      const locked = await findCredential(tx, instanceId, credentialId, { lock: true });
      if (!locked || locked.status === 'revoked') throw conflict('The credential was revoked meanwhile');
      // Sealed for `version`: someone else's rotation in between would make the binding wrong.
      if (locked.version !== current.version) throw conflict('The credential was rotated meanwhile; try again');
      await rotateCredential(tx, credentialId, { version, jwe, keyId: keyIdOf(jwe), expiresAt: input.expiresAt ?? null });
      await credentialArrived(tx, instance);
      await auditConnector(tx, act, 'connector_credential_rotated', instance, { credential_id: credentialId, type: current.type, version });
      return (await findCredential(tx, instanceId, credentialId))!;
    });
  }

  /** Revoked: the ciphertext is dropped for good. Disabled: kept, and a rotation brings it back. */
  async setStatus(act: ConnectorAct, instanceId: string, credentialId: string, status: 'revoked' | 'disabled'): Promise<CredentialRow> {
    const instance = await this.managed(act, instanceId);
    return this.db.transaction(async (tx) => {
      const locked = await findCredential(tx, instanceId, credentialId, { lock: true });
      if (!locked) throw notFound('Credential');
      if (locked.status === 'revoked' && status === 'disabled') throw conflict('The credential is already revoked');
      if (locked.status !== status) {
        await setCredentialStatus(tx, credentialId, status);
        await auditConnector(tx, act, status === 'revoked' ? 'connector_credential_revoked' : 'connector_credential_disabled', instance, {
          credential_id: credentialId,
          type: locked.type,
          version: locked.version,
        });
      }
      return (await findCredential(tx, instanceId, credentialId))!;
    });
  }

  private async managed(act: ConnectorAct, instanceId: string): Promise<InstanceRow> {
    const instance = await visibleInstance(this.db, this.authz, act.by, instanceId);
    await requireManage(this.policy, act, instance);
    return instance;
  }
}
