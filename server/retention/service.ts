import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import type { ProjectRow } from '../projects/store';
import type { Authorizer } from '../rbac/service';
import {
  effective,
  insertPurge,
  projectPolicy,
  purgeAccessAudit,
  purgeToolCallAudit,
  purgeAgentTokens,
  purgeRunLogs,
  purgeTranscripts,
  saveProjectPolicy,
  saveSystemPolicy,
  systemPolicy,
  type EffectivePolicy,
  type PolicyRow,
  type PurgeRow,
} from './store';

export interface PolicyChange {
  run_logs_days?: number | null;
  transcripts_days?: number | null;
}

/**
 * Retention of run logs (ledger events of kind `log`) and transcript segments. A system policy
 * and optional per-project policies; a project field it never set inherits the system's. Expiry
 * is decided at purge time from the policies in force then, so a changed policy applies to what
 * is already stored. Admins manage the system policy and run purges; a project's policy is
 * managed by whoever may update the project (its owners, and admins).
 */
export class RetentionService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    /** Days access-audit decisions are kept (0: forever). */
    private readonly accessAuditDays = 90,
  ) {}

  async system(principal: Principal, ctx: RequestContext): Promise<PolicyRow> {
    await this.authz.require(principal, 'settings.read', ctx, { resourceType: 'retention_policy' });
    return systemPolicy(this.db);
  }

  async setSystem(principal: Principal, change: Required<PolicyChange>, ctx: RequestContext): Promise<PolicyRow> {
    await this.authz.require(principal, 'retention.manage', ctx, { resourceType: 'retention_policy' });
    return this.db.transaction(async (tx) => {
      const row = await saveSystemPolicy(tx, { runLogsDays: change.run_logs_days, transcriptsDays: change.transcripts_days, by: principal.userId });
      await appendAudit(
        tx,
        { category: 'admin', action: 'retention_policy_updated', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'retention_policy', scopeType: 'system', details: { ...change } },
        ctx,
      );
      return row;
    });
  }

  async project(principal: Principal, ref: string, ctx: RequestContext): Promise<{ project: ProjectRow; own: PolicyRow | null; effective: EffectivePolicy }> {
    const project = await this.authz.requireProject(principal, ref, 'project.read', ctx);
    return this.projectView(project);
  }

  /** Replaces the project's policy: a field left out is not set (the system's applies), null keeps forever. */
  async setProject(principal: Principal, ref: string, change: PolicyChange, ctx: RequestContext): Promise<{ project: ProjectRow; own: PolicyRow | null; effective: EffectivePolicy }> {
    const project = await this.authz.requireProject(principal, ref, 'project.update', ctx);
    await this.db.transaction(async (tx) => {
      await saveProjectPolicy(tx, project.id, { runLogsDays: change.run_logs_days, transcriptsDays: change.transcripts_days, by: principal.userId });
      await appendAudit(
        tx,
        {
          category: 'admin',
          action: 'retention_policy_updated',
          outcome: 'success',
          actorId: principal.userId,
          actorHandle: principal.handle,
          resourceType: 'retention_policy',
          resourceId: project.id,
          scopeType: 'project',
          scopeId: project.id,
          details: { ...change },
        },
        ctx,
      );
    });
    return this.projectView(project);
  }

  /** A purge now, on an admin's request; recorded even when nothing had expired. */
  async purgeNow(principal: Principal, ctx: RequestContext): Promise<PurgeRow> {
    await this.authz.require(principal, 'retention.manage', ctx, { resourceType: 'retention_purge' });
    return (await this.purge({ trigger: 'manual', by: principal, ctx }))!;
  }

  /**
   * Empties what expired, in one transaction with its record: a `retention_purges` row and an
   * audit event naming runs, sessions and segments by id only. A scheduled purge that found
   * nothing leaves no record (it runs every hour); a requested one always does.
   */
  async purge(opts: { trigger: 'schedule' | 'manual'; by?: Principal; ctx?: RequestContext }): Promise<PurgeRow | null> {
    return this.db.transaction(async (tx) => {
      const startedAt = new Date();
      const system = await systemPolicy(tx);
      const runLogs = await purgeRunLogs(tx);
      const transcripts = await purgeTranscripts(tx);
      const lines = runLogs.reduce((n, r) => n + r.lines, 0);
      const segments = transcripts.reduce((n, r) => n + r.segments, 0);
      const accessAudit = this.accessAuditDays > 0 ? await purgeAccessAudit(tx, this.accessAuditDays) : 0;
      // MCP tool calls are kept as long as the access decisions they point to.
      const toolCalls = this.accessAuditDays > 0 ? await purgeToolCallAudit(tx, this.accessAuditDays) : 0;
      // Agent tokens too, once long expired: the decisions naming their agent are gone by then.
      const agentTokens = this.accessAuditDays > 0 ? await purgeAgentTokens(tx, this.accessAuditDays) : 0;
      if (opts.trigger === 'schedule' && lines === 0 && segments === 0 && accessAudit === 0 && toolCalls === 0 && agentTokens === 0) return null;
      const row = await insertPurge(tx, {
        trigger: opts.trigger,
        requested_by: opts.by?.userId ?? null,
        started_at: startedAt,
        run_log_lines: lines,
        transcript_segments: segments,
        details: { run_logs: runLogs, transcripts, access_audit: { rows: accessAudit, days: this.accessAuditDays },
          tool_call_audit: { rows: toolCalls, days: this.accessAuditDays },
          agent_tokens: { rows: agentTokens, days: this.accessAuditDays },
          system_policy: { run_logs_days: system.run_logs_days, transcripts_days: system.transcripts_days } },
      });
      await appendAudit(
        tx,
        {
          category: 'admin',
          action: 'retention_purged',
          outcome: 'success',
          actorId: opts.by?.userId ?? null,
          actorHandle: opts.by?.handle ?? null,
          resourceType: 'retention_purge',
          resourceId: row.id,
          scopeType: 'system',
          details: { trigger: opts.trigger, run_log_lines: lines, transcript_segments: segments, ...row.details },
        },
        opts.ctx,
      );
      return row;
    });
  }

  private async projectView(project: ProjectRow) {
    const [system, own] = await Promise.all([systemPolicy(this.db), projectPolicy(this.db, project.id)]);
    return { project, own, effective: effective(system, own) };
  }
}

/** Runs the purge every `intervalSeconds` in the gateway process; errors are reported, never thrown. */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly retention: RetentionService,
    private readonly intervalSeconds: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      // A purge slower than the interval is not run twice at once.
      if (this.running) return;
      this.running = this.retention
        .purge({ trigger: 'schedule' })
        .catch(this.onError)
        .finally(() => (this.running = null));
    }, this.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Waits for a purge in flight: the database closes after this. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
