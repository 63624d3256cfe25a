import { Type, type TSchema } from '@sinclair/typebox';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { approvedCommandsFromEnvironment, COMMAND_NAME, type ApprovedCommands } from '../mcp-commands';
import { approvedCommand, withMcpSession, type McpTarget, type SessionContext } from '../mcp-session';
import { ConnectorError, NO_RETRY, probe, READ_RETRY, type ConnectorDriver, type HealthContext, type OperationSpec } from './contract';

/**
 * An MCP server: its tools are the instance's operations. A local server is started over stdio
 * from a command an administrator approved (mcp-commands.ts); a remote one is reached at a
 * Streamable HTTP URL through the egress guard. Each call opens its own session, lists the tools
 * to check the parameters against the server's current schema, calls the tool and closes.
 */

/** The longest one tool call may take, start-up of a stdio server included. */
export const MCP_TOOL_TIMEOUT_MS = 60_000;
const DISCOVERY_TIMEOUT_MS = 30_000;
/** Bounds on what a server may list, so a misbehaving one cannot flood the catalog. */
const MAX_TOOL_PAGES = 20;
const MAX_TOOLS = 500;
const MAX_DESCRIPTION = 2000;

const McpConfig = Type.Object(
  {
    transport: Type.Union([Type.Literal('stdio'), Type.Literal('http')]),
    command: Type.Optional(Type.String({ pattern: COMMAND_NAME, description: 'stdio: the name of a command on the administrator\'s approved list' })),
    args: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 1024, pattern: '^[^\\u0000]*$' }), {
        maxItems: 32,
        description: 'stdio: arguments appended to the command, where the administrator allows it',
      }),
    ),
    url: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048, description: 'http: the server\'s Streamable HTTP endpoint' })),
    api_key_header: Type.Optional(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$", default: 'X-API-Key' })),
  },
  { additionalProperties: false },
);

/** What a tool call answers: the MCP CallToolResult without its error flag (an error throws). */
const ToolResult = Type.Object({
  content: Type.Array(Type.Object({ type: Type.String() }, { additionalProperties: true })),
  structuredContent: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

/** Where the configuration points; the schema has been checked, the combination is checked here. */
function targetOf(config: Record<string, unknown>): McpTarget {
  if (config.transport === 'stdio') {
    if (typeof config.command !== 'string' || config.url !== undefined) {
      throw new ConnectorError('validation_error', 'A stdio MCP connector names an approved command and no url');
    }
    return { transport: 'stdio', command: config.command, args: (config.args as string[] | undefined) ?? [] };
  }
  if (typeof config.url !== 'string' || config.command !== undefined || config.args !== undefined) {
    throw new ConnectorError('validation_error', 'An http MCP connector names a url and no command');
  }
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new ConnectorError('validation_error', 'url is not a valid URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.hash) {
    throw new ConnectorError('validation_error', 'url must be an http or https URL without credentials or fragment');
  }
  return { transport: 'http', url, apiKeyHeader: config.api_key_header as string | undefined };
}

/** Every tool the server lists, page by page within the bounds. */
async function listTools(client: Client, signal: AbortSignal): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const answer = await client.listTools(cursor === undefined ? undefined : { cursor }, { signal });
    tools.push(...answer.tools);
    cursor = answer.nextCursor;
    if (!cursor || tools.length >= MAX_TOOLS) break;
  }
  return tools.slice(0, MAX_TOOLS);
}

/**
 * A tool as an operation. Retries follow the tool's own hints: a read-only or idempotent tool
 * may be tried again after a transient failure, any other not (hints are the server's word,
 * and a wrong one harms only that server's own tool).
 */
export function operationOfTool(tool: Tool): OperationSpec {
  const hints = tool.annotations ?? {};
  const idempotent = hints.readOnlyHint === true || hints.idempotentHint === true;
  return {
    name: tool.name,
    title: tool.title ?? hints.title ?? tool.name,
    description: (tool.description ?? '').slice(0, MAX_DESCRIPTION),
    requestSchema: tool.inputSchema as unknown as TSchema,
    resultSchema: ToolResult,
    execution: 'sync',
    timeoutMs: MCP_TOOL_TIMEOUT_MS,
    idempotent,
    retry: idempotent ? READ_RETRY : NO_RETRY,
  };
}

/**
 * An operation for a caller that holds only a tool's name (the executor, given a call by name).
 * It takes any object and is never retried; invoke checks the parameters against the server's
 * own schema for the tool.
 */
export function operationNamed(name: string): OperationSpec {
  return {
    name,
    title: name,
    description: '',
    requestSchema: Type.Record(Type.String(), Type.Unknown()),
    resultSchema: ToolResult,
    execution: 'sync',
    timeoutMs: MCP_TOOL_TIMEOUT_MS,
    idempotent: false,
    retry: NO_RETRY,
  };
}

/**
 * Checks parameters against a tool's JSON Schema, naming the problem but never the value. A
 * fresh validator each time: ajv keeps every schema it compiled, and tool schemas come anew
 * with each session.
 */
function checkParams(schema: unknown, params: Record<string, unknown>): void {
  let check;
  try {
    check = new AjvJsonSchemaValidator().getValidator(schema as object);
  } catch {
    throw new ConnectorError('permanent', 'The tool\'s parameter schema cannot be used');
  }
  const outcome = check(params);
  if (!outcome.valid) throw new ConnectorError('validation_error', `The parameters are not valid: ${outcome.errorMessage.slice(0, 500)}`);
}

/** The approved list; fail closed: an unreadable list approves nothing. */
function approvedList(commands: () => ApprovedCommands): ApprovedCommands {
  try {
    return commands();
  } catch {
    throw new ConnectorError('permanent', 'The approved MCP command list (CYNODE_MCP_COMMANDS) cannot be read; ask an administrator');
  }
}

function sessionOf(ctx: HealthContext, commands: () => ApprovedCommands, timeoutMs: number): SessionContext {
  const target = targetOf(ctx.config);
  const approved: ApprovedCommands = target.transport === 'stdio' ? approvedList(commands) : new Map();
  return {
    target,
    credential: ctx.credential,
    egress: ctx.egress,
    commands: approved,
    signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]),
  };
}

/** The mcp driver with the approved command list it starts stdio servers from. */
export function mcpDriverWith(commands: () => ApprovedCommands): ConnectorDriver {
  return {
    spec: {
      type: 'mcp',
      title: 'MCP server',
      description:
        'The tools of a Model Context Protocol server: a local one started from a command an administrator approved, or a remote one at a Streamable HTTP URL.',
      configSchema: McpConfig,
      credentialTypes: ['api_key', 'bearer_token', 'custom_header'],
      credentialRequired: false,
      // The operations are the server's tools: see discover.
      operations: [],
    },

    checkConfig(config) {
      const target = targetOf(config);
      if (target.transport !== 'stdio') return;
      try {
        approvedCommand(approvedList(commands), target);
      } catch (e) {
        // At install and update the list's state is the installer's problem to report: a 400.
        throw new ConnectorError('validation_error', (e as Error).message);
      }
    },

    checkParams(operation, params) {
      checkParams(operation.requestSchema, params);
    },

    async discover(ctx) {
      const session = sessionOf(ctx, commands, DISCOVERY_TIMEOUT_MS);
      const tools = await withMcpSession(session, (client) => listTools(client, session.signal));
      return tools.map(operationOfTool);
    },

    async invoke(ctx) {
      const name = ctx.operation.name;
      // Parameters wrong for the schema the caller holds fail before any server is started.
      if (ctx.operation.requestSchema.type === 'object') checkParams(ctx.operation.requestSchema, ctx.params);
      const session = sessionOf(ctx, commands, Math.min(ctx.operation.timeoutMs, MCP_TOOL_TIMEOUT_MS));
      return withMcpSession(session, async (client) => {
        const tool = (await listTools(client, session.signal)).find((t) => t.name === name);
        if (!tool) throw new ConnectorError('validation_error', `The MCP server offers no tool ${name}`);
        // The server's current schema decides; it may have changed since discovery.
        checkParams(tool.inputSchema, ctx.params);
        const answer = await client.callTool({ name, arguments: ctx.params }, undefined, { signal: session.signal });
        if (answer.isError === true) {
          // The tool's own text may hold anything the server chose to say: it stays out.
          throw new ConnectorError('permanent', `The tool ${name} reported an error`);
        }
        const content = Array.isArray(answer.content) ? answer.content : [];
        const structured = answer.structuredContent;
        return structured && typeof structured === 'object' ? { content, structuredContent: structured } : { content };
      });
    },

    health(ctx) {
      return probe(async () => {
        const session = sessionOf(ctx, commands, 15_000);
        await withMcpSession(session, (client) => client.ping({ signal: session.signal }));
      });
    },
  };
}

export const mcpDriver = mcpDriverWith(() => approvedCommandsFromEnvironment());
