import { Value } from '@sinclair/typebox/value';
import { notFound } from '../http/problem';
import { connectorProblem } from './access';
import type { ConnectorExecutor, SealedCredential } from './executor-api';
import type { ConnectorHealth } from './health';
import type { InstanceRow } from './store';
import { isConnectorError, type ConnectorDriver, type FailureClass, type OperationSpec } from './types/contract';
import { driverFor } from './types/index';

/*
 * Where the gateway finds an instance's operations. Most types declare theirs in code; an `mcp`
 * instance's operations are its server's tools, which only the executor can learn (it holds the
 * credential the server is started with), so the gateway asks it (executor-api.ts `operations`),
 * and the executor keeps what it discovered per instance (executor/operation-cache.ts).
 */

/** How each failure class is answered. */
export const STATUS_OF: Record<FailureClass, number> = { transient: 503, permanent: 502, policy_denied: 403, quota_exceeded: 429, validation_error: 400 };

/** Discovery starts the server (a stdio one is a new process): as long as the driver allows it, and a little. */
const DISCOVERY_TIMEOUT_MS = 35_000;

function driverOf(instance: InstanceRow): ConnectorDriver {
  const driver = driverFor(instance.type);
  if (!driver) throw connectorProblem(400, 'validation_error', `There is no connector type "${instance.type}"`);
  return driver;
}

/** True when the instance's operations are learnt from its peer rather than declared. */
export function discovers(instance: InstanceRow): boolean {
  return driverFor(instance.type)?.discover !== undefined;
}

/** The operations the instance's type declares. */
export function declaredOperations(instance: InstanceRow): OperationSpec[] {
  return driverOf(instance).spec.operations;
}

/** A declared operation by name (404 when the type has none of that name). Not for types that discover. */
export function declaredOperation(instance: InstanceRow, name: string): OperationSpec {
  const op = driverOf(instance).spec.operations.find((o) => o.name === name);
  if (!op) throw notFound('Operation');
  return op;
}

/** Parameters against the operation's schema: a 400 validation_error naming the first problem, never the value. */
export function checkParams(instance: InstanceRow, op: OperationSpec, params: Record<string, unknown>): void {
  const driver = driverOf(instance);
  if (driver.discover && driver.checkParams) {
    try {
      driver.checkParams(op, params);
    } catch (e) {
      throw connectorProblem(400, 'validation_error', isConnectorError(e) ? e.message : 'The parameters are not valid');
    }
    return;
  }
  if (!Value.Check(op.requestSchema, params)) {
    const first = Value.Errors(op.requestSchema, params).First();
    throw connectorProblem(400, 'validation_error', `The parameters are not valid${first?.path ? ` at ${first.path}` : ''}: ${first?.message ?? 'they do not match the schema'}`);
  }
}

/**
 * The operations the instance's peer offers now, through the executor. A failure is a problem
 * with the executor's class (a server that cannot start: 502; one that does not answer: 503).
 */
export async function discoveredOperations(
  executor: ConnectorExecutor,
  health: ConnectorHealth,
  instance: InstanceRow,
  credential: SealedCredential | null,
  requestId: string,
): Promise<OperationSpec[]> {
  const call = await health.callBase(instance, credential, requestId, DISCOVERY_TIMEOUT_MS);
  const outcome = await executor.operations(call, AbortSignal.timeout(DISCOVERY_TIMEOUT_MS + 5_000));
  if (!outcome.ok) throw connectorProblem(STATUS_OF[outcome.failure], outcome.failure, outcome.message);
  return outcome.operations;
}

/** A discovered operation by name, or 404 when the peer offers none of that name. */
export function discoveredOperation(operations: OperationSpec[], name: string): OperationSpec {
  const op = operations.find((o) => o.name === name);
  if (!op) throw notFound('Operation');
  return op;
}
