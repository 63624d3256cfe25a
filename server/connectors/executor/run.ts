import { egressFromEnvironment, type EgressGuard } from '../egress';
import {
  checkAgainst,
  ConnectorError,
  isConnectorError,
  mayRetry,
  operationOf,
  type ConnectorDriver,
  type CredentialSecret,
  type FailureClass,
  type HealthResult,
  type OperationSpec,
} from '../types/contract';
import type { HealthCall, OperationCall, OperationOutcome, OperationsOutcome, SealedCredential } from '../executor-api';
import { OperationCache } from './operation-cache';

/*
 * One operation or health check inside the executor: the credential is opened for this call only
 * and passed to the driver; nothing here keeps, logs or returns it.
 */

/** A result larger than this (serialized) is refused rather than handed to the gateway. */
export const MAX_RESULT_BYTES = 1024 * 1024;
/** The longest wait between attempts, whatever the peer's Retry-After says. */
const MAX_BACKOFF_MS = 10_000;

export type OpenCredential = (credential: SealedCredential) => Promise<CredentialSecret>;

/** This executor's discovered operations (an MCP server's tools), per instance. */
const discovered = new OperationCache();

interface Prepared {
  driver: ConnectorDriver;
  credential: CredentialSecret | null;
  egress: EgressGuard;
}

/** The drivers, loaded at the first call and kept: a dynamic import costs a module resolution every time. */
let drivers: Promise<{ driverFor: (type: string) => ConnectorDriver | undefined }> | undefined;

async function prepare(call: HealthCall, open: OpenCredential, env: NodeJS.ProcessEnv): Promise<Prepared> {
  // Loaded at the first call, not at start: the executor starts with every server, and most never run a connector.
  drivers ??= import('../types/index').catch((e: unknown) => {
    drivers = undefined;
    throw e;
  });
  const { driverFor } = await drivers;
  const driver = driverFor(call.type);
  if (!driver) throw new ConnectorError('validation_error', `There is no connector type ${call.type}`);
  checkAgainst(driver.spec.configSchema, call.config, 'The configuration');
  if (call.credential && call.credential.instanceId !== call.instanceId) {
    throw new ConnectorError('validation_error', 'The credential belongs to another connector');
  }
  let egress: EgressGuard;
  try {
    egress = egressFromEnvironment({ CYNODE_CONNECTOR_ALLOW: [env.CYNODE_CONNECTOR_ALLOW ?? '', ...call.egressAllow].join(',') });
  } catch (e) {
    throw new ConnectorError('validation_error', (e as Error).message);
  }
  const credential = call.credential ? await open(call.credential) : null;
  return { driver, credential, egress };
}

/** `gate`: the call is prepared, and the peer contacted only once it resolves (a cancel ends the wait). */
export async function runOperation(call: OperationCall, open: OpenCredential, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env, gate?: Promise<void>): Promise<OperationOutcome> {
  const started = Date.now();
  let attempts = 0;
  // The last status the peer answered with (HTTP drivers report it), kept for the history row.
  let providerStatus: number | undefined;
  try {
    const { driver, credential, egress } = await prepare(call, open, env);
    const operation = driver.discover ? await discoveredOperation(call, { driver, credential, egress }, signal) : operationOf(driver, call.operation);
    if (gate) await untilOpen(gate, signal);
    const timeoutMs = Math.max(1, Math.min(call.timeoutMs, operation.timeoutMs));
    for (;;) {
      attempts++;
      try {
        const result = await withTimeout(timeoutMs, signal, (attemptSignal) =>
          driver.invoke({ config: call.config, credential, operation, params: call.params, signal: attemptSignal, egress, providerStatus: (status) => (providerStatus = status) }),
        );
        checkResult(operation.resultSchema, result);
        return { ok: true, result, attempts, durationMs: Date.now() - started, ...(providerStatus !== undefined ? { providerStatus } : {}) };
      } catch (e) {
        if (!mayRetry(operation, e, attempts) || signal.aborted) throw e;
        const hinted = isConnectorError(e) ? e.retryAfterMs : undefined;
        await sleep(Math.min(MAX_BACKOFF_MS, Math.max(operation.retry.backoffMs * 2 ** (attempts - 1), hinted ?? 0)), signal);
      }
    }
  } catch (e) {
    return { ok: false, ...failureOf(e), attempts, durationMs: Date.now() - started };
  }
}

export async function runHealth(call: HealthCall, open: OpenCredential, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<HealthResult> {
  try {
    const { driver, credential, egress } = await prepare(call, open, env);
    return await withTimeout(Math.max(1, call.timeoutMs), signal, (attemptSignal) => driver.health({ config: call.config, credential, signal: attemptSignal, egress }));
  } catch (e) {
    const { failure, message } = failureOf(e);
    return { ok: false, failure, message };
  }
}

/**
 * The instance's operations: declared by its type, or discovered from its peer (kept in the
 * cache while the instance's configuration and credential stay the same).
 */
export async function runOperations(call: HealthCall, open: OpenCredential, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<OperationsOutcome> {
  try {
    const prepared = await prepare(call, open, env);
    if (!prepared.driver.discover) return { ok: true, operations: prepared.driver.spec.operations };
    return { ok: true, operations: await discoveredOperations(call, prepared, signal) };
  } catch (e) {
    const { failure, message } = failureOf(e);
    return { ok: false, failure, message };
  }
}

/**
 * Callers of the same instance share one discovery, bounded by the first caller's signal: if that
 * caller goes away the others fail too (transient), and since failures are not kept the next call
 * discovers afresh.
 */
function discoveredOperations(call: HealthCall, { driver, credential, egress }: Prepared, signal: AbortSignal): Promise<OperationSpec[]> {
  return discovered.get(call, () => driver.discover!({ config: call.config, credential, signal, egress }));
}

/** A discovered operation by name; the gateway has already answered 404 for a name its peer does not offer. */
async function discoveredOperation(call: OperationCall, prepared: Prepared, signal: AbortSignal): Promise<OperationSpec> {
  const op = (await discoveredOperations(call, prepared, signal)).find((o) => o.name === call.operation);
  if (!op) throw new ConnectorError('validation_error', `${prepared.driver.spec.title} offers no operation ${call.operation}`);
  return op;
}

/** A result the gateway may receive: it matches the declared schema and is not too large. */
function checkResult(schema: Parameters<typeof checkAgainst>[0], result: unknown): void {
  try {
    checkAgainst(schema, result, 'The result');
  } catch (e) {
    // The peer (or the driver) answered off its declaration: repeating will not change that.
    throw new ConnectorError('permanent', (e as Error).message);
  }
  const size = Buffer.byteLength(JSON.stringify(result) ?? '', 'utf8');
  if (size > MAX_RESULT_BYTES) throw new ConnectorError('permanent', `The result is ${size} bytes, more than the ${MAX_RESULT_BYTES} bytes an operation may return`);
}

/**
 * Runs one attempt with its own signal, aborted at the deadline or when the call is cancelled.
 * The race makes the deadline hold even for a driver that ignores its signal.
 */
async function withTimeout<T>(timeoutMs: number, outer: AbortSignal, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => controller.abort();
  outer.addEventListener('abort', onAbort, { once: true });
  try {
    if (outer.aborted) throw cancelled();
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new ConnectorError('transient', `The operation did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      outer.addEventListener('abort', () => reject(cancelled()), { once: true });
    });
    return await Promise.race([run(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', onAbort);
  }
}

function untilOpen(gate: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(cancelled());
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    void gate.then(() => (signal.removeEventListener('abort', onAbort), resolve()));
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(cancelled());
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(cancelled())), { once: true });
  });
}

function cancelled(): ConnectorError {
  return new ConnectorError('transient', 'The operation was cancelled');
}

/** A ConnectorError as it is; anything else (a driver bug, a library's error) as plain words only. */
function failureOf(e: unknown): { failure: FailureClass; message: string; providerStatus?: number } {
  if (isConnectorError(e)) return { failure: e.failure, message: e.message, ...(e.providerStatus !== undefined ? { providerStatus: e.providerStatus } : {}) };
  return { failure: 'transient', message: 'The operation failed inside the connector executor' };
}
