import { expect } from 'vitest';
import type { EgressGuard } from '../../server/connectors/egress';
import { ConnectorError, checkAgainst, operationOf, type ConnectorDriver, type CredentialSecret } from '../../server/connectors/types/contract';

/**
 * One operation through a driver, as the executor runs it: config checked against the type's
 * schema, the operation's own time limit, and the result checked against the schema it declares.
 */
export async function invokeDriver(
  driver: ConnectorDriver,
  egress: EgressGuard,
  config: Record<string, unknown>,
  credential: CredentialSecret | null,
  operation: string,
  params: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  checkAgainst(driver.spec.configSchema, config, 'The configuration');
  const op = operationOf(driver, operation);
  const result = await driver.invoke({ config, credential, operation: op, params, signal: AbortSignal.timeout(op.timeoutMs), egress });
  checkAgainst(op.resultSchema, result, 'The result');
  return result as Record<string, unknown>;
}

/** The ConnectorError an operation fails with; the test fails if it succeeds or throws anything else. */
export async function connectorFailure(p: Promise<unknown>): Promise<ConnectorError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectorError);
    return e as ConnectorError;
  }
  throw new Error('expected the operation to fail');
}
