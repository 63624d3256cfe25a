import type { HealthResult } from '../types/contract';
import type { CredentialBinding, HealthCall, OperationCall, OperationOutcome, OperationsOutcome, SealedCredential } from '../executor-api';

/*
 * The messages between the gateway (client.ts) and the executor process (main.ts), over the IPC
 * channel of child_process.fork. Every request carries an id; its answer carries the same id, so
 * many calls can be in flight at once. Nothing here is secret except `start.vaultKey` (a key
 * derived from the master key for the executor's own vault), which crosses only this channel.
 */

/** One executor key pair as stored (connector_executor_keys): the private half sealed by the executor's vault. */
export interface ExecutorKeyRecord {
  kid: string;
  publicJwk: JsonWebKey;
  privateKeySealed: string;
}

export type ExecutorRequest =
  /** First message: the executor's vault key (base64) and every stored key pair. */
  | { id: number; kind: 'start'; vaultKey: string; keys: ExecutorKeyRecord[]; logLevel: string }
  /** Stored key pairs, sent again when one appears that the executor does not hold yet. */
  | { id: number; kind: 'keys'; keys: ExecutorKeyRecord[] }
  /** A new key pair; the gateway stores it. */
  | { id: number; kind: 'generate' }
  /** `gated`: prepare, but reach the peer only after a `go` for this id (a `cancel` ends it). */
  | { id: number; kind: 'invoke'; call: OperationCall; gated?: boolean }
  /** Call `target`, sent gated, may reach its peer now. */
  | { id: number; kind: 'go'; target: number }
  | { id: number; kind: 'health'; call: HealthCall }
  /** The instance's operations (an MCP server's tools), from the executor's cache or discovered. */
  | { id: number; kind: 'operations'; call: HealthCall }
  /** The gateway gave up on call `target` (its caller went away). */
  | { id: number; kind: 'cancel'; target: number }
  /** Opens each credential and seals it again to key `kid`, inside the executor. */
  | { id: number; kind: 'rewrap'; credentials: SealedCredential[]; kid: string }
  /** These stored key pairs' private halves sealed again under another vault key (master key rotation). */
  | { id: number; kind: 'reseal'; vaultKey: string; keys: ExecutorKeyRecord[] };

export type ExecutorAnswer = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

export type AnswerOf<K extends ExecutorRequest['kind']> = K extends 'invoke'
  ? OperationOutcome
  : K extends 'health'
    ? HealthResult
    : K extends 'operations'
      ? OperationsOutcome
      : K extends 'generate'
      ? ExecutorKeyRecord
      : K extends 'rewrap'
        ? string[]
        : K extends 'reseal'
          ? ExecutorKeyRecord[]
          : null;

/**
 * The JWE's additional authenticated data: where the credential belongs. The executor supplies it
 * from the call, never from the stored JWE, so a ciphertext copied to another row does not open.
 */
export function bindingAad(binding: CredentialBinding): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(['cynode-connector-credential', binding.instanceId, binding.credentialId, binding.version]));
}

/** The vault context of an executor private key. */
export function privateKeyContext(kid: string): string {
  return `connector-executor:${kid}:private-key`;
}

/** The purpose under which the executor's vault key is derived from the master key. */
export const EXECUTOR_VAULT_PURPOSE = 'connector-executor-vault';

export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';

/** The key id in a stored credential's JWE header (public), or null when it is not one of ours. */
export function kidOfJwe(jwe: string): string | null {
  try {
    const parsed = JSON.parse(jwe) as { protected?: unknown };
    if (typeof parsed.protected !== 'string') return null;
    const header = JSON.parse(Buffer.from(parsed.protected, 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' ? header.kid : null;
  } catch {
    return null;
  }
}
