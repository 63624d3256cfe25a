import { appendAudit } from '../audit/record';
import type { Db } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, conflict, notFound } from '../http/problem';
import type { ToolOutcome } from '../mcp/service';
import { redactJson } from '../redaction/redaction';
import { decideApproval, insertApproval, listOwnApprovals, lockOwnApproval, markReported, unreportedOfThread, type ApprovalRow, type ApprovalStatus } from './store';

export type { ApprovalRow, ApprovalStatus } from './store';
export type Decision = 'approve' | 'deny';

/** What the agent reads back for a call the user denied: nothing was run. */
export const deniedOutcome = (name: string): ToolOutcome => ({ ok: false, error: { type: 'approval_denied', message: `The user denied ${name.slice(0, 100)}; it was not run and nothing was created` } });

/**
 * The user's answer in a message: "approve"/"yes" or "deny"/"no" as its first word; anything else
 * is no answer (the held calls then expire: the user asked for something else).
 */
export function decisionIn(text: string): Decision | null {
  const word = /^\s*([a-z]+)/i.exec(text)?.[1]?.toLowerCase();
  if (word === undefined) return null;
  if (['approve', 'approved', 'yes', 'y', 'ok', 'okay', 'go'].includes(word)) return 'approve';
  if (['deny', 'denied', 'no', 'n', 'reject', 'cancel', 'stop'].includes(word)) return 'deny';
  return null;
}

/**
 * Tool calls an agent turn held for the user's approval (README "The project-manager agent",
 * approval = mutating): stored with their arguments redacted, decided by the thread's next
 * message or over the API, every hold and decision audited. A decided call's outcome goes back
 * to the agent once, in the thread's next turn.
 */
export class ApprovalService {
  constructor(private readonly db: Db) {}

  async hold(principal: Principal, a: { threadId: string; sessionId: string; projectId: string | null; toolName: string; args: Record<string, unknown> }, ctx: RequestContext): Promise<ApprovalRow> {
    // The arguments are the user's own request, but a prompt may carry a secret: never stored plain.
    const args = (await redactJson(a.args, { remember: false })).value as Record<string, unknown>;
    return this.db.transaction(async (tx) => {
      const row = await insertApproval(tx, { userId: principal.userId, ...a, args });
      await appendAudit(tx, this.auditEntry(principal, row, 'agent.approval.request', 'success', {}), ctx);
      return row;
    });
  }

  list(principal: Principal, status: ApprovalStatus | undefined, limit: number): Promise<ApprovalRow[]> {
    return listOwnApprovals(this.db, principal.userId, status, limit);
  }

  /**
   * Decides one of the caller's pending approvals (404 for anyone else's, 409 once decided). An
   * approved call is claimed first and run after, by `run`, so two deciders never run it twice.
   */
  async decide(principal: Principal, id: string, decision: Decision, via: 'api' | 'message', ctx: RequestContext, run: (row: ApprovalRow) => Promise<ToolOutcome>, reported = false): Promise<ApprovalRow> {
    const claimed = await this.db.transaction(async (tx) => {
      const row = await lockOwnApproval(tx, principal.userId, id);
      if (!row) throw notFound('Approval');
      if (row.status !== 'pending') throw conflict(`The approval was already decided (${row.status})`);
      const status = decision === 'approve' ? 'approved' : 'denied';
      const outcome = decision === 'deny' ? deniedOutcome(row.tool_name) : null;
      const decided = await decideApproval(tx, row.id, { status, by: principal.userId, outcome, reported });
      await appendAudit(tx, this.auditEntry(principal, row, `agent.approval.${decision}`, decision === 'approve' ? 'allow' : 'deny', { via }), ctx);
      return decided;
    });
    if (decision === 'deny') return claimed;
    const outcome = await run(claimed).catch((): ToolOutcome => ({ ok: false, error: { type: 'internal', message: 'The tool failed unexpectedly' } }));
    return decideApproval(this.db, claimed.id, { status: 'approved', by: principal.userId, outcome, reported });
  }

  /**
   * A new turn in a thread: its held calls are decided by the user's message (none: they expire),
   * and every decided call the agent has not heard of comes back with its outcome, once.
   */
  async settleForTurn(principal: Principal, threadId: string, message: string, ctx: RequestContext, run: (row: ApprovalRow) => Promise<ToolOutcome>): Promise<Array<{ row: ApprovalRow; outcome: ToolOutcome }>> {
    const open = await unreportedOfThread(this.db, principal.userId, threadId);
    if (open.length === 0) return [];
    const decision = decisionIn(message);
    const settled: Array<{ row: ApprovalRow; outcome: ToolOutcome }> = [];
    for (const row of open) {
      if (row.status !== 'pending') {
        settled.push({ row, outcome: row.outcome ?? deniedOutcome(row.tool_name) });
      } else if (decision === null) {
        await this.db.transaction(async (tx) => {
          await decideApproval(tx, row.id, { status: 'expired', by: principal.userId, reported: true });
          await appendAudit(tx, this.auditEntry(principal, row, 'agent.approval.expire', 'deny', { via: 'message' }), ctx);
        });
      } else {
        const decided = await this.decide(principal, row.id, decision, 'message', ctx, run, true).catch((err: unknown) => {
          // Decided over the API meanwhile: its outcome comes back in the next turn.
          if (err instanceof HttpProblem && err.status === 409) return null;
          throw err;
        });
        if (decided) settled.push({ row: decided, outcome: decided.outcome ?? deniedOutcome(row.tool_name) });
      }
    }
    await markReported(
      this.db,
      settled.map((s) => s.row.id),
    );
    return settled;
  }

  private auditEntry(principal: Principal, row: ApprovalRow, action: string, outcome: 'success' | 'allow' | 'deny', details: Record<string, unknown>) {
    return {
      category: 'access' as const,
      action,
      outcome,
      actorId: principal.userId,
      resourceType: 'agent_approval',
      resourceId: row.id,
      scopeType: row.project_id ? ('project' as const) : ('system' as const),
      scopeId: row.project_id,
      // Names only: the arguments stay in the approval, the user's own.
      details: { tool_name: row.tool_name, thread_id: row.thread_id, ...details },
    };
  }
}
