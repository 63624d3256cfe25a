import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../db';
import type { ConnectorExecutor, HealthCall, SealedCredential } from './executor-api';
import { FailureStreaks } from './breaker';
import type { HealthResult } from './types/contract';
import { driverFor } from './types/index';
import { hasCredentials, instancesIn, markExpiredInstances, moveInstanceStatus, readEgressAllow, usableCredential, type InstanceRow } from './store';

/** Longest a health probe may take. */
const HEALTH_TIMEOUT_MS = 15_000;

/** The credential an instance would use now, or why there is none. */
export type CredentialState = { kind: 'ready'; sealed: SealedCredential | null } | { kind: 'missing' } | { kind: 'expired' };

/**
 * The newest active credential, unless it has expired. Types that need none run without one,
 * but only while the instance never had one: revoking or disabling its credential must stop the
 * next call, not send it unauthenticated.
 */
export async function credentialState(q: Queryable, instance: InstanceRow, now = new Date()): Promise<CredentialState> {
  const credential = await usableCredential(q, instance.id);
  return credentialStateOf(instance, credential, async () => hasCredentials(q, instance.id), now);
}

/** credentialState from what was read already (store.instanceForCall reads it with the instance). */
export async function credentialStateOf(
  instance: InstanceRow,
  credential: { id: string; version: number; expires_at: Date | null; jwe: string } | null,
  hadCredentials: () => Promise<boolean> | boolean,
  now = new Date(),
): Promise<CredentialState> {
  if (credential && credential.expires_at && credential.expires_at <= now) return { kind: 'expired' };
  if (credential) return { kind: 'ready', sealed: { instanceId: instance.id, credentialId: credential.id, version: credential.version, jwe: credential.jwe } };
  const optional = driverFor(instance.type)?.spec.credentialRequired === false;
  return optional && !(await hadCredentials()) ? { kind: 'ready', sealed: null } : { kind: 'missing' };
}

/** The parts of an executor call that say where and as whom (no operation), with the egress allow list already read. */
export function healthCall(instance: InstanceRow, credential: SealedCredential | null, requestId: string, timeoutMs: number, egressAllow: string[]): HealthCall {
  return { requestId, instanceId: instance.id, type: instance.type, config: instance.config, credential, timeoutMs, egressAllow };
}

/**
 * The circuit breaker and health checks: consecutive transient failures turn an instance
 * `degraded` (calls then fail fast), and a background check brings it back to `active` once the
 * executor's health probe succeeds.
 */
export class ConnectorHealth {
  private readonly streaks: FailureStreaks;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly executor: ConnectorExecutor,
    private readonly opts: { breakerFailures: number; intervalSeconds: number; onError: (err: unknown) => void },
  ) {
    this.streaks = new FailureStreaks(opts.breakerFailures);
  }

  /** The parts of an executor call that say where and as whom (no operation). */
  async callBase(instance: InstanceRow, credential: SealedCredential | null, requestId: string, timeoutMs: number): Promise<HealthCall> {
    const egress = await readEgressAllow(this.db);
    return healthCall(instance, credential, requestId, timeoutMs, egress.entries);
  }

  /** Runs the executor's probe with the instance's current credential. */
  async probe(instance: InstanceRow, requestId = `health-${randomUUID()}`): Promise<HealthResult> {
    const state = await credentialState(this.db, instance);
    if (state.kind === 'missing') return { ok: false, failure: 'validation_error', message: 'The connector has no active credential' };
    if (state.kind === 'expired') return { ok: false, failure: 'permanent', message: 'The connector credential has expired' };
    try {
      return await this.executor.health(await this.callBase(instance, state.sealed, requestId, HEALTH_TIMEOUT_MS), AbortSignal.timeout(HEALTH_TIMEOUT_MS));
    } catch {
      return { ok: false, failure: 'transient', message: 'The connector executor could not run the health check' };
    }
  }

  /** A transient failure; true when it tripped the breaker (the instance is now `degraded`). */
  async failed(instance: InstanceRow): Promise<boolean> {
    if (!this.streaks.failed(instance.id)) return false;
    this.streaks.succeeded(instance.id);
    return moveInstanceStatus(this.db, instance.id, ['active', 'error'], 'degraded', 'Consecutive transient failures; calls are held until a health check passes');
  }

  succeeded(instanceId: string): void {
    this.streaks.succeeded(instanceId);
  }

  start(): void {
    if (this.timer || this.opts.intervalSeconds <= 0) return;
    this.timer = setInterval(() => {
      this.round = this.round.then(() => this.checkDegraded()).catch(this.opts.onError);
    }, this.opts.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round.catch(() => {});
  }

  /**
   * One round: instances whose credential has expired say so, and every degraded instance whose
   * probe passes is active again.
   */
  async checkDegraded(): Promise<void> {
    for (const id of await markExpiredInstances(this.db)) this.streaks.succeeded(id);
    for (const instance of await instancesIn(this.db, 'degraded')) {
      const result = await this.probe(instance);
      if (result.ok && (await moveInstanceStatus(this.db, instance.id, ['degraded'], 'active', null))) this.streaks.succeeded(instance.id);
    }
  }
}
