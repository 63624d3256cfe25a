import type { CredentialSecret, FailureClass, HealthResult, OperationSpec } from './types/contract';

/*
 * The boundary between the gateway and the connector executor, the separate process that alone
 * can decrypt connector credentials (docs/decisions/0004-vault-format.md). The gateway holds the
 * executor's public key: it can seal a credential to it, and it hands the executor sealed
 * credentials with each call, but it has no code path to a plaintext.
 */

/** Where a credential's ciphertext belongs; bound into its JWE, so a copy in another row does not open. */
export interface CredentialBinding {
  instanceId: string;
  credentialId: string;
  version: number;
}

/** A stored credential as the executor receives it: ciphertext only. */
export interface SealedCredential extends CredentialBinding {
  jwe: string;
}

/** One operation on one connector instance, as the gateway asks the executor to run it. */
export interface OperationCall {
  /** The gateway's request id, for the executor's log lines and history. */
  requestId: string;
  instanceId: string;
  type: string;
  config: Record<string, unknown>;
  credential: SealedCredential | null;
  operation: string;
  params: Record<string, unknown>;
  /** At most the operation's declared cap; the executor enforces the smaller. */
  timeoutMs: number;
  /** Destinations an admin allowed for this installation, beyond `CYNODE_CONNECTOR_ALLOW`. */
  egressAllow: readonly string[];
}

/**
 * What happened. A result has passed the operation's result schema and the size cap; the gateway
 * still redacts it before anyone sees it. `message` is plain words, never the peer's body or a
 * secret.
 */
export type OperationOutcome =
  | { ok: true; result: unknown; providerStatus?: number; attempts: number; durationMs: number }
  | { ok: false; failure: FailureClass; message: string; providerStatus?: number; attempts: number; durationMs: number };

export type HealthCall = Omit<OperationCall, 'operation' | 'params'>;

/**
 * An instance's operations as the executor knows them: a type's declared ones, or for a type
 * whose operations come from its peer (MCP) what the peer offers, discovered with the instance's
 * credential. Over IPC the schemas arrive as plain JSON Schema (no TypeBox markers).
 */
export type OperationsOutcome = { ok: true; operations: OperationSpec[] } | { ok: false; failure: FailureClass; message: string };

/** The gateway's handle on the executor. */
export interface ConnectorExecutor {
  /** Encrypts a credential to the executor's public key (JWE, ECDH-ES+A256KW / A256GCM). */
  seal(secret: CredentialSecret, binding: CredentialBinding): Promise<string>;
  /**
   * With a `gate`, the executor prepares the call at once (checks the config, opens the
   * credential) but contacts the peer only once the gate resolves; if it rejects, the call ends
   * cancelled before anything is sent. The gateway overlaps its history write with this
   * preparation (docs/decisions/0006-connector-call-overhead.md).
   */
  invoke(call: OperationCall, signal?: AbortSignal, gate?: Promise<unknown>): Promise<OperationOutcome>;
  health(call: HealthCall, signal?: AbortSignal): Promise<HealthResult>;
  /** The instance's operations; discovered ones are cached in the executor per instance, config and credential version. */
  operations(call: HealthCall, signal?: AbortSignal): Promise<OperationsOutcome>;
  close(): Promise<void>;
}
