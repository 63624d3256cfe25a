import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { RequestContext } from '../http/principal';
import type { McpCaller } from './caller';
import type { ToolDef } from './catalog';
import type { McpService, ToolOutcome } from './service';

/** A tool as tools/list shows it: JSON Schema input and the hints clients display. */
export function describeTool(t: ToolDef): Tool {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: t.input as Tool['inputSchema'],
    annotations: { title: t.title, readOnlyHint: t.readOnly, destructiveHint: t.destructive, idempotentHint: t.idempotent, openWorldHint: t.openWorld },
  };
}

/** The result as structured content with a JSON text copy (for clients that read text only). */
export function callResult(outcome: ToolOutcome): CallToolResult {
  if (outcome.ok) return { content: [{ type: 'text', text: JSON.stringify(outcome.result) }], structuredContent: outcome.result };
  return { content: [{ type: 'text', text: JSON.stringify(outcome.error) }], structuredContent: outcome.error, isError: true };
}

/**
 * Answers one HTTP request to /mcp. Stateless Streamable HTTP: a new server and transport per
 * request (a stateless transport serves one request only), JSON answers rather than a stream
 * (no tool here streams), and the caller bound in before any message is read.
 */
export async function serveMcp(mcp: McpService, info: { version: string }, caller: McpCaller, ctx: RequestContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const server = new Server({ name: 'cynode', version: info.version }, { capabilities: { tools: { listChanged: false } } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await mcp.listTools(caller, ctx)).map(describeTool) }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => callResult(await mcp.callTool(caller, request.params.name, request.params.arguments, ctx)));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.once('close', () => {
    void transport.close().catch(() => {});
    void server.close().catch(() => {});
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}
