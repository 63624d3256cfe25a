import type { Db } from '../db';
import { HttpProblem, notFound } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import { redactJson } from '../redaction/redaction';
import type { Authorizer } from '../rbac/service';
import { findVisibleTask } from '../tasks/queries';
import { connectorProblem, isOwner, refOf, requireManage, visibleInstance, visibleOrNotFound, type ConnectorAct } from './access';
import type { RateLimiter } from './breaker';
import type { ConnectorExecutor, OperationOutcome, SealedCredential } from './executor-api';
import { credentialState, credentialStateOf, healthCall, type ConnectorHealth } from './health';
import { checkParams, declaredOperation, declaredOperations, discoveredOperation, discoveredOperations, discovers, STATUS_OF } from './operation-specs';
import type { ConnectorPolicy } from './policy';
import {
  finishOperation,
  insertOperation,
  instanceForCall,
  listOperations,
  moveInstanceStatus,
  operationByKey,
  type InstanceRow,
  type OperationRow,
} from './store';
import type { FailureClass, OperationSpec } from './types/contract';

export interface InvokeRequest {
  operation: string;
  params: Record<string, unknown>;
  taskId?: string;
  idempotencyKey?: string;
}

export interface InvokeResult {
  operationId: string;
  result: unknown;
  attempts: number;
  durationMs: number;
  providerStatus: number | null;
  /** True when an earlier call under the same idempotency key answered. */
  replayed: boolean;
}

const isSeqCursor = (v: unknown): v is { seq: string } => typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).seq === 'string';

/** Why an instance in this status takes no call, if it does not. */
function statusRefusal(instance: InstanceRow): Refusal | null {
  switch (instance.status) {
    case 'disabled':
      return { status: 409, code: 'disabled', detail: 'The connector is disabled' };
    case 'provisioning':
      return { status: 409, code: 'provisioning', detail: 'The connector has no credential yet' };
    case 'credential_expired':
      return { status: 409, code: 'credential_expired', detail: 'The connector credential has expired; rotate it or add a new one' };
    case 'degraded':
      return { status: 503, code: 'degraded', detail: 'The connector failed repeatedly and is held until a health check passes', headers: { 'retry-after': '30' } };
    default:
      return null;
  }
}

/** What every history row of one call shares. */
interface OperationBase {
  requestId: string;
  subjectId: string;
  instanceId: string;
  operation: string;
  taskId: string | null;
  decisionAuditId: string | null;
}

type Refusal = { status: number; code: FailureClass | 'disabled' | 'provisioning' | 'credential_expired' | 'degraded'; detail: string; headers?: Record<string, string> };

/**
 * Runs operations of connector instances through the executor: visibility, parameter checks,
 * the policy's `connector.invoke`, idempotency, the per-instance rate limit and circuit breaker,
 * then one history row per call and a redacted result.
 */
export class ConnectorOperationService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly policy: ConnectorPolicy,
    private readonly executor: ConnectorExecutor,
    private readonly health: ConnectorHealth,
    private readonly limiter: RateLimiter,
  ) {}

  async invoke(act: ConnectorAct, instanceId: string, request: InvokeRequest): Promise<InvokeResult> {
    // The instance, its credential and the egress allow list in one read (docs/decisions/0006-connector-call-overhead.md).
    const found = await instanceForCall(this.db, instanceId);
    const instance = await visibleOrNotFound(this.db, this.authz, act.by, found?.instance ?? null);
    const { credential: stored, hadCredentials, egressAllow } = found!;
    // The task a call is made for goes into the decision and the history: it must be one the caller may see.
    if (request.taskId !== undefined && !(await findVisibleTask(this.db, act.by.userId, request.taskId))) throw notFound('Task');
    // A declared operation is checked at once. A discovered one (an MCP server's tool) is learnt
    // only for a call the policy allows, since learning it starts the server with the credential.
    let op: OperationSpec | undefined = discovers(instance) ? undefined : declaredOperation(instance, request.operation);
    if (op) checkParams(instance, op, request.params);
    const name = op?.name ?? request.operation;
    const decision = await this.policy.decide(act.by, { action: 'connector.invoke', connector: refOf(instance), operation: name, task: request.taskId }, act.ctx);
    const base = { requestId: act.ctx.requestId, subjectId: act.by.userId, instanceId, operation: name, taskId: request.taskId ?? null, decisionAuditId: decision.auditId };
    if (!decision.allowed) {
      await insertOperation(this.db, { ...base, decision: 'deny', outcome: 'failure', failureClass: 'policy_denied', message: 'No policy rule allows this call', idempotencyKey: null });
      throw connectorProblem(403, 'policy_denied', 'You are not allowed to run this operation');
    }

    if (request.idempotencyKey) {
      const earlier = await operationByKey(this.db, instanceId, name, request.idempotencyKey);
      if (earlier) return this.replay(earlier);
    }

    const refusal = await this.refusal(instance);
    if (refusal) {
      await insertOperation(this.db, { ...base, decision: 'allow', outcome: 'failure', failureClass: refusal.code, message: refusal.detail, idempotencyKey: null });
      throw connectorProblem(refusal.status, refusal.code, refusal.detail, refusal.headers);
    }
    const credential = await credentialStateOf(instance, stored, () => hadCredentials);
    if (credential.kind !== 'ready') {
      if (credential.kind === 'expired') await moveInstanceStatus(this.db, instanceId, ['active', 'error', 'degraded'], 'credential_expired', 'The connector credential has expired');
      const detail = credential.kind === 'expired' ? 'The connector credential has expired; rotate it or add a new one' : 'The connector has no active credential';
      await insertOperation(this.db, { ...base, decision: 'allow', outcome: 'failure', failureClass: credential.kind === 'expired' ? 'credential_expired' : 'no_credential', message: detail, idempotencyKey: null });
      throw connectorProblem(409, credential.kind === 'expired' ? 'credential_expired' : 'no_credential', detail);
    }
    op ??= await this.discovered(instance, credential.sealed, base, request.params);

    const pending = insertOperation(this.db, {
      ...base,
      decision: 'allow',
      outcome: 'pending',
      idempotencyKey: request.idempotencyKey ?? null,
      credentialId: credential.sealed?.credentialId ?? null,
      credentialVersion: credential.sealed?.version ?? null,
    });
    // The executor prepares the call (opens the credential) while the history row is written, and
    // reaches the peer only once it is: no call goes out without its row.
    const written = pending.then((id) => {
      if (!id) throw new Error('no history row');
    });
    written.catch(() => {});
    const call = { ...healthCall(instance, credential.sealed, act.ctx.requestId, op.timeoutMs, egressAllow), operation: op.name, params: request.params };
    // The executor enforces the operation's cap per attempt; this bounds retries and backoff too.
    const running = this.executor
      .invoke(call, AbortSignal.timeout(op.timeoutMs * Math.max(1, op.retry.attempts) + 5_000), written)
      .catch((): OperationOutcome => ({ ok: false, failure: 'transient', message: 'The connector executor did not answer', attempts: 0, durationMs: 0 }));
    const rowId = await pending;
    if (!rowId) {
      // The same key arrived twice at once: the other call's row is the answer (this one was cancelled before it went out).
      const earlier = await operationByKey(this.db, instanceId, name, request.idempotencyKey!);
      if (earlier) return this.replay(earlier);
      throw connectorProblem(409, 'validation_error', 'A call with this idempotency key is in progress');
    }
    const outcome = await running;
    return this.settle(instance, rowId, outcome, request.idempotencyKey !== undefined);
  }

  async history(act: ConnectorAct, instanceId: string, f: { cursor?: string; limit: number }): Promise<{ operations: OperationRow[]; nextCursor?: string }> {
    await visibleInstance(this.db, this.authz, act.by, instanceId);
    const before = decodeCursor(f.cursor, isSeqCursor);
    const rows = await listOperations(this.db, instanceId, { beforeSeq: before?.seq, limit: f.limit + 1 });
    const operations = rows.slice(0, f.limit);
    const last = operations.at(-1);
    return { operations, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ seq: last.seq }) } : {}) };
  }

  /**
   * The instance's operations: declared by its type, or for an `mcp` instance its server's tools
   * as the executor discovers them (a disabled or credential-less instance starts no server: 409).
   * Discovery starts the server with the instance's credential, so beyond seeing the instance it
   * takes owning it (or its group) or the policy's `connector.manage`, as enabling it does.
   */
  async catalog(act: ConnectorAct, instanceId: string): Promise<{ operations: OperationSpec[]; discovered: boolean }> {
    const instance = await visibleInstance(this.db, this.authz, act.by, instanceId);
    if (!discovers(instance)) return { operations: declaredOperations(instance), discovered: false };
    if (!(await isOwner(this.db, act.by, instance))) await requireManage(this.policy, act, instance);
    const refusal = statusRefusal(instance);
    if (refusal) throw connectorProblem(refusal.status, refusal.code, refusal.detail, refusal.headers);
    const credential = await credentialState(this.db, instance);
    if (credential.kind !== 'ready') {
      throw connectorProblem(409, credential.kind === 'expired' ? 'credential_expired' : 'no_credential', credential.kind === 'expired' ? 'The connector credential has expired' : 'The connector has no active credential');
    }
    return { operations: await discoveredOperations(this.executor, this.health, instance, credential.sealed, act.ctx.requestId), discovered: true };
  }

  /**
   * A discovered operation for an allowed call, its parameters checked against the peer's schema.
   * The call is recorded when it goes no further (unknown tool, bad parameters, peer unreachable).
   */
  private async discovered(instance: InstanceRow, credential: SealedCredential | null, base: OperationBase, params: Record<string, unknown>): Promise<OperationSpec> {
    try {
      const op = discoveredOperation(await discoveredOperations(this.executor, this.health, instance, credential, base.requestId), base.operation);
      checkParams(instance, op, params);
      return op;
    } catch (e) {
      if (e instanceof HttpProblem) {
        const code = typeof e.extensions.code === 'string' ? e.extensions.code : 'validation_error';
        await insertOperation(this.db, { ...base, decision: 'allow', outcome: 'failure', failureClass: code, message: e.detail, idempotencyKey: null });
        // A server that does not answer counts towards the breaker like a failed call.
        if (code === 'transient') await this.health.failed(instance);
      }
      throw e;
    }
  }

  /** Why the instance takes no call now, if it does not. */
  private async refusal(instance: InstanceRow): Promise<Refusal | null> {
    const refused = statusRefusal(instance);
    if (refused) return refused;
    const taken = this.limiter.take(instance.id);
    if (!taken.ok) return { status: 429, code: 'quota_exceeded', detail: 'Too many calls to this connector; try again later', headers: { 'retry-after': String(taken.retryAfterSeconds) } };
    return null;
  }

  /**
   * Records the outcome, feeds the breaker, and answers: a result redacted, a failure as a problem.
   * The result is stored only under an idempotency key, for the replay.
   */
  private async settle(instance: InstanceRow, rowId: string, outcome: OperationOutcome, keepResult: boolean): Promise<InvokeResult> {
    const providerStatus = outcome.providerStatus ?? null;
    if (outcome.ok) {
      const redacting = redactJson(outcome.result, { remember: false });
      const finish = (result: unknown) =>
        finishOperation(this.db, rowId, { outcome: 'success', failureClass: null, message: null, durationMs: outcome.durationMs, providerStatus, attempts: outcome.attempts, result });
      // Only a kept result needs the redaction first; otherwise the row is finished while the answer is redacted.
      const { value } = keepResult ? await redacting.then(async (r) => (await finish(r.value), r)) : (await Promise.all([redacting, finish(undefined)]))[0];
      this.health.succeeded(instance.id);
      if (instance.status === 'error') await moveInstanceStatus(this.db, instance.id, ['error'], 'active', null);
      return { operationId: rowId, result: value, attempts: outcome.attempts, durationMs: outcome.durationMs, providerStatus, replayed: false };
    }
    await finishOperation(this.db, rowId, {
      outcome: 'failure',
      failureClass: outcome.failure,
      message: outcome.message,
      durationMs: outcome.durationMs,
      providerStatus,
      attempts: outcome.attempts,
      result: undefined,
    });
    if (outcome.failure === 'transient') await this.health.failed(instance);
    else this.health.succeeded(instance.id);
    throw connectorProblem(STATUS_OF[outcome.failure], outcome.failure, outcome.message, {}, { operation_id: rowId });
  }

  private replay(row: OperationRow & { result: unknown }): InvokeResult {
    if (row.outcome === 'pending') throw connectorProblem(409, 'validation_error', 'A call with this idempotency key is in progress');
    if (row.outcome === 'failure') {
      const failure = (row.failure_class ?? 'permanent') as FailureClass;
      throw connectorProblem(STATUS_OF[failure] ?? 502, failure, row.message ?? 'The operation failed', {}, { operation_id: row.id, replayed: true });
    }
    return { operationId: row.id, result: row.result, attempts: row.attempts, durationMs: row.duration_ms ?? 0, providerStatus: row.provider_status, replayed: true };
  }
}
