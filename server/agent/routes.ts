import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import type { ApprovalRow } from './approvals';
import type { PmAgent } from './service';

const Status = Type.Union([Type.Literal('pending'), Type.Literal('approved'), Type.Literal('denied'), Type.Literal('expired')]);

const Approval = Type.Object({
  id: Uuid,
  thread_id: Uuid,
  session_id: Nullable(Uuid),
  project_id: Nullable(Uuid),
  tool_name: Type.String(),
  args: Type.Record(Type.String(), Type.Unknown(), { description: 'The held call’s arguments, redacted' }),
  status: Status,
  outcome: Nullable(
    Type.Object(
      { ok: Type.Boolean(), result: Type.Optional(Type.Record(Type.String(), Type.Unknown())), error: Type.Optional(Type.Object({ type: Type.String(), message: Type.String() })) },
      { description: 'What running the approved call gave (or the denial); null while pending' },
    ),
  ),
  created_at: Timestamp,
  decided_at: Nullable(Timestamp),
});

const view = (a: ApprovalRow) => ({
  id: a.id,
  thread_id: a.thread_id,
  session_id: a.session_id,
  project_id: a.project_id,
  tool_name: a.tool_name,
  args: a.args,
  status: a.status,
  outcome: a.outcome,
  created_at: a.created_at.toISOString(),
  decided_at: iso(a.decided_at),
});

/** The agent's held tool calls (approval = mutating): yours to list and decide (README "The project-manager agent"). */
export function agentRoutes(app: HttpServer, agent: PmAgent): void {
  app.get(
    '/v1/agent/approvals',
    {
      schema: {
        tags: ['agent'],
        summary: 'Your tool calls the agent holds or held for your approval, newest first',
        querystring: Strict({ status: Type.Optional(Status), limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) }),
        response: { 200: Type.Object({ approvals: Type.Array(Approval) }), ...errors(400, 401) },
      },
    },
    async (request) => ({ approvals: (await agent.listApprovals(request.principal!, request.query.status, request.query.limit)).map(view) }),
  );

  app.post(
    '/v1/agent/approvals/:id',
    {
      schema: {
        tags: ['agent'],
        summary: 'Approve (the call runs now) or deny a held call; the next message in its thread tells the agent',
        params: IdParams,
        body: Strict({ decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]) }),
        response: { 200: Approval, ...errors(400, 401, 404, 409) },
      },
    },
    async (request) => view(await agent.decideApproval(request.principal!, request.params.id, request.body.decision, requestContext(request))),
  );
}
