import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { EgressGuard } from '../egress';

/**
 * What a connector type declares in code and what its driver does. The catalog, config and
 * parameter validation, the executor's timeouts and retries, and audit all read these
 * declarations; a driver only talks to its peer.
 */

/** How an operation failed, in the terms the executor, the circuit breaker and audit use. */
export type FailureClass = 'transient' | 'permanent' | 'policy_denied' | 'quota_exceeded' | 'validation_error';

/**
 * A failure a user may read: its message is plain words chosen by the driver, never the peer's
 * stack, answer body or a secret. `providerStatus` is the peer's status (HTTP status, SMTP reply
 * code) for history; `retryAfterMs` is the peer's own hint when it gave one.
 */
export class ConnectorError extends Error {
  readonly failure: FailureClass;
  readonly providerStatus: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(failure: FailureClass, message: string, details: { providerStatus?: number; retryAfterMs?: number } = {}) {
    super(message);
    this.name = 'ConnectorError';
    this.failure = failure;
    this.providerStatus = details.providerStatus;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export function isConnectorError(e: unknown): e is ConnectorError {
  return e instanceof ConnectorError;
}

/** Kinds of credential a type may accept; the plaintext shapes are `CredentialSecret`. */
export type CredentialType = 'password' | 'bearer_token' | 'basic' | 'custom_header' | 'api_key';

/** A decrypted credential. It lives for one invocation and is never logged or returned. */
export type CredentialSecret =
  | { type: 'password'; password: string }
  | { type: 'bearer_token'; token: string }
  | { type: 'basic'; username: string; password: string }
  | { type: 'custom_header'; name: string; value: string }
  | { type: 'api_key'; key: string };

/** JSON Schemas of each credential's secret part, for validating what a user submits. */
const HeaderSafe = { pattern: '^[^\\r\\n]*$' };
export const credentialSchemas: Readonly<Record<CredentialType, TSchema>> = {
  password: Type.Object({ password: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
  bearer_token: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192, ...HeaderSafe }) }, { additionalProperties: false }),
  basic: Type.Object(
    // RFC 7617: a user-id containing a colon cannot be sent.
    { username: Type.String({ minLength: 1, maxLength: 512, pattern: '^[^:\\r\\n]*$' }), password: Type.String({ maxLength: 4096 }) },
    { additionalProperties: false },
  ),
  custom_header: Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 128, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }),
      value: Type.String({ minLength: 1, maxLength: 8192, ...HeaderSafe }),
    },
    { additionalProperties: false },
  ),
  api_key: Type.Object({ key: Type.String({ minLength: 1, maxLength: 8192, ...HeaderSafe }) }, { additionalProperties: false }),
};

/**
 * Retries apply to transient failures only, and only to operations declared idempotent: an
 * operation that may have taken effect (a sent mail, a posted message) is never repeated.
 */
export interface RetryPolicy {
  /** Total attempts including the first; 1 means no retry. */
  attempts: number;
  /** Delay before the second attempt; it doubles for each later one. */
  backoffMs: number;
}

export interface OperationSpec {
  name: string;
  title: string;
  description: string;
  requestSchema: TSchema;
  resultSchema: TSchema;
  execution: 'sync' | 'async';
  /** Upper bound on one attempt; the executor may choose less, never more. */
  timeoutMs: number;
  idempotent: boolean;
  retry: RetryPolicy;
}

export interface ConnectorTypeSpec {
  type: string;
  title: string;
  description: string;
  configSchema: TSchema;
  credentialTypes: CredentialType[];
  /** False for types that can run without any credential (an open SMTP relay). */
  credentialRequired: boolean;
  operations: OperationSpec[];
}

export interface HealthContext {
  config: Record<string, unknown>;
  credential: CredentialSecret | null;
  signal: AbortSignal;
  egress: EgressGuard;
}

export interface InvokeContext extends HealthContext {
  operation: OperationSpec;
  params: Record<string, unknown>;
  /** Drivers that talk HTTP tell the peer's status here, so a success's history row has it too. */
  providerStatus?: (status: number) => void;
}

export type HealthResult = { ok: true } | { ok: false; failure: FailureClass; message: string };

export interface ConnectorDriver {
  spec: ConnectorTypeSpec;
  /** Runs one operation; throws ConnectorError on failure. */
  invoke(ctx: InvokeContext): Promise<unknown>;
  health(ctx: HealthContext): Promise<HealthResult>;
  /** For types whose operations come from the peer (MCP): what it offers now. */
  discover?(ctx: HealthContext): Promise<OperationSpec[]>;
  /**
   * Checks a discovered operation's parameters against its schema, which is the peer's plain
   * JSON Schema rather than a declared one; throws a validation_error naming the problem.
   */
  checkParams?(operation: OperationSpec, params: Record<string, unknown>): void;
  /** Checks of a configuration beyond its schema (an MCP command on the approved list); throws a validation_error. */
  checkConfig?(config: Record<string, unknown>): void;
}

/** The same transient-only retry rules for every declared operation. */
export const NO_RETRY: RetryPolicy = { attempts: 1, backoffMs: 0 };
export const READ_RETRY: RetryPolicy = { attempts: 3, backoffMs: 500 };

/** Whether a failure of this operation, after `attempt` attempts, may be tried again. */
export function mayRetry(operation: OperationSpec, error: unknown, attempt: number): boolean {
  return operation.idempotent && isConnectorError(error) && error.failure === 'transient' && attempt < operation.retry.attempts;
}

/**
 * Checks a value against a declared schema and throws a validation_error naming the first
 * problem by its JSON pointer (never echoing the value, which may be a secret).
 */
export function checkAgainst(schema: TSchema, value: unknown, what: string): void {
  if (Value.Check(schema, value)) return;
  const first = Value.Errors(schema, value).First();
  const where = first?.path ? ` at ${first.path}` : '';
  throw new ConnectorError('validation_error', `${what} is not valid${where}: ${first?.message ?? 'does not match its schema'}`);
}

/** Runs a health probe and turns its failure into a HealthResult. */
export async function probe(run: () => Promise<void>): Promise<HealthResult> {
  try {
    await run();
    return { ok: true };
  } catch (e) {
    if (isConnectorError(e)) return { ok: false, failure: e.failure, message: e.message };
    return { ok: false, failure: 'transient', message: 'The health check failed' };
  }
}

/** The credential of the expected kind, or a validation_error naming what the type accepts. */
export function credentialOf<T extends CredentialType>(
  credential: CredentialSecret | null,
  ...types: T[]
): Extract<CredentialSecret, { type: T }> {
  if (credential && (types as string[]).includes(credential.type)) return credential as Extract<CredentialSecret, { type: T }>;
  throw new ConnectorError('validation_error', `This connector needs a credential of type ${types.join(' or ')}`);
}

export type OperationHandler = (ctx: InvokeContext, params: Record<string, unknown>) => Promise<unknown>;

/**
 * A driver from its spec and one handler per declared operation: parameters are checked against
 * the operation's request schema before its handler runs.
 */
export function driverOf(
  spec: ConnectorTypeSpec,
  handlers: Record<string, OperationHandler>,
  healthCheck: (ctx: HealthContext) => Promise<void>,
): ConnectorDriver {
  for (const op of spec.operations) {
    if (!handlers[op.name]) throw new Error(`connector type ${spec.type}: no handler for ${op.name}`);
  }
  return {
    spec,
    async invoke(ctx) {
      const declared = spec.operations.find((op) => op.name === ctx.operation.name);
      const handler = handlers[ctx.operation.name];
      if (!declared || !handler) throw new ConnectorError('validation_error', `${spec.title} has no operation ${ctx.operation.name}`);
      checkAgainst(declared.requestSchema, ctx.params, 'The parameters');
      return handler(ctx, ctx.params);
    },
    health: (ctx) => probe(() => healthCheck(ctx)),
  };
}

/** The declared operation of a driver by name (for callers that hold only the name). */
export function operationOf(driver: ConnectorDriver, name: string): OperationSpec {
  const op = driver.spec.operations.find((o) => o.name === name);
  if (!op) throw new ConnectorError('validation_error', `${driver.spec.title} has no operation ${name}`);
  return op;
}
