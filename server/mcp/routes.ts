import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Nullable, PageQuery, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import { resolveMcpCaller } from './caller';
import { serveMcp } from './protocol';
import type { McpService } from './service';
import type { ToolCallEntry } from './store';

/** Checked here, so a body that is no JSON-RPC message at all gets a problem document like any other route's. */
const JsonRpc = Strict(
  {
    jsonrpc: Type.Literal('2.0'),
    id: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Number(), Type.Null()])),
    method: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    params: Type.Optional(Type.Unknown()),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Unknown()),
  },
  { description: 'A JSON-RPC 2.0 message of the Model Context Protocol' },
);

const ToolCall = Type.Object({
  id: Type.String(),
  created_at: Timestamp,
  request_id: Nullable(Type.String()),
  task_id: Nullable(Type.String()),
  project_id: Nullable(Type.String()),
  run_id: Nullable(Type.String()),
  subject: Type.Object({ type: Type.Union([Type.Literal('user'), Type.Literal('agent')]), user_id: Nullable(Type.String()), agent_id: Nullable(Type.String()), agent_role: Nullable(Type.String()) }),
  tool_name: Type.String(),
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  status: Type.Union([Type.Literal('success'), Type.Literal('error')]),
  duration_ms: Type.Integer(),
  error_type: Nullable(Type.String()),
  policy_audit_id: Nullable(Type.String({ description: 'The access-audit decision (GET /v1/audit/access) behind this call' })),
  args_shape: Type.Record(Type.String(), Type.String(), { description: 'Argument names and their JSON types; values are never kept' }),
});

const toolCallView = (e: ToolCallEntry) => ({
  id: e.id,
  created_at: e.created_at.toISOString(),
  request_id: e.request_id,
  task_id: e.task_id,
  project_id: e.project_id,
  run_id: e.run_id,
  subject: { type: e.subject_type, user_id: e.user_id, agent_id: e.agent_id, agent_role: e.agent_role },
  tool_name: e.tool_name,
  decision: e.decision,
  status: e.status,
  duration_ms: e.duration_ms,
  error_type: e.error_type,
  policy_audit_id: e.policy_audit_id,
  args_shape: e.args_shape as Record<string, string>,
});

/** CyNode as an MCP server (Streamable HTTP, stateless) at /mcp, and the trail of its tool calls. */
export function mcpRoutes(app: HttpServer, mcp: McpService, info: { version: string }): void {
  app.post(
    '/mcp',
    {
      // A page whose DNS rebinds to this machine names its own host: refused as the MCP SDK does.
      config: { unknownHostStatus: 403 },
      schema: {
        tags: ['mcp'],
        summary: 'The MCP server (Streamable HTTP, stateless): tools/list and tools/call',
        description:
          'Model Context Protocol over Streamable HTTP without sessions: every POST is answered on its own, in JSON. Authenticate with `Authorization: Bearer <API key, access token or agent token>` (an agent gets what both its role and its user may). ' +
          'tools/list shows the tools the access rules allow you (`tool.call` on `Tool::"<name>"`); every tools/call is decided again and written to GET /v1/audit/tool-calls. GET and DELETE answer 405.',
        body: Type.Union([JsonRpc, Type.Array(JsonRpc, { minItems: 1, maxItems: 100 })]),
        response: { 200: Type.Object({}, { additionalProperties: true, description: 'The JSON-RPC answer' }), ...errors(400, 401, 403, 406, 413, 415) },
      },
    },
    async (request, reply) => {
      const caller = resolveMcpCaller(request);
      const ctx = requestContext(request);
      // The transport writes the answer itself; the headers set so far (request id, security) go with it.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
      reply.hijack();
      try {
        await serveMcp(mcp, info, caller, ctx, request.raw, reply.raw, request.body);
      } catch (err) {
        request.log.error({ err }, 'the MCP transport failed');
        if (!reply.raw.headersSent) reply.raw.writeHead(500, { 'content-type': 'application/json' });
        reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
      }
    },
  );

  app.get(
    '/v1/audit/tool-calls',
    {
      schema: {
        tags: ['audit'],
        summary: 'MCP tool calls, allowed and denied, newest first',
        description: 'One entry per tools/call on /mcp: who, which tool, the decision, the outcome and the argument names (never their values). Admins only.',
        querystring: Strict({
          ...PageQuery,
          tool_name: Type.Optional(Type.String({ maxLength: 200 })),
          user_id: Type.Optional(Uuid),
          task_id: Type.Optional(Type.String({ maxLength: 200 })),
          decision: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
          since: Type.Optional(Timestamp),
        }),
        response: { 200: Type.Object({ calls: Type.Array(ToolCall), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await mcp.auditLog(
        request.principal!,
        { toolName: q.tool_name, userId: q.user_id, taskId: q.task_id, decision: q.decision, since: q.since, cursor: q.cursor, limit: q.limit },
        requestContext(request),
      );
      return { calls: page.entries.map(toolCallView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );
}
