import http from 'node:http';
import https from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { pinnedLookup, type EgressGuard, type ResolvedTarget } from './egress';
import type { ApprovedCommand, ApprovedCommands } from './mcp-commands';
import { ConnectorError, isConnectorError, type CredentialSecret } from './types/contract';
import { credentialHeaders, failureForStatus, networkFailure } from './web-request';

/**
 * One conversation with an MCP server: started for a single call and closed after it. A stdio
 * server is a fresh process each time, so an instance's credential lives in that process alone
 * and nothing of one call (or one instance) outlives it.
 */

export type McpTarget =
  | { transport: 'stdio'; command: string; args: readonly string[] }
  | { transport: 'http'; url: URL; apiKeyHeader: string | undefined };

export interface SessionContext {
  target: McpTarget;
  credential: CredentialSecret | null;
  egress: EgressGuard;
  commands: ApprovedCommands;
  signal: AbortSignal;
}

const SERVICE = 'The MCP server';
/** What one HTTP answer from a server may carry; a tool result larger than this is not useful. */
const MAX_HTTP_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Runs `use` on a connected client and closes it, turning every failure into a ConnectorError. */
export async function withMcpSession<T>(ctx: SessionContext, use: (client: Client) => Promise<T>): Promise<T> {
  if (ctx.signal.aborted) throw timedOut();
  const transport = await transportFor(ctx);
  const client = new Client({ name: 'CyNode', version: '1' }, { capabilities: {} });
  try {
    await client.connect(transport, { signal: ctx.signal });
    return await use(client);
  } catch (e) {
    throw mcpFailure(e, ctx.signal);
  } finally {
    // A server keeps an HTTP session until told it is over; a stdio server's process ends on
    // close (stdin closed, then SIGTERM, then SIGKILL).
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId && !ctx.signal.aborted) {
      await transport.terminateSession().catch(() => undefined);
    }
    if (transport instanceof StdioClientTransport && ctx.signal.aborted && transport.pid !== null) {
      // Past its time a server gets no grace period: a tool still running would hold it open.
      try {
        process.kill(transport.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    await client.close().catch(() => undefined);
  }
}

async function transportFor(ctx: SessionContext): Promise<Transport> {
  const { target } = ctx;
  if (target.transport === 'stdio') {
    const command = approvedCommand(ctx.commands, target);
    const env: Record<string, string> = { ...command.env };
    const secret = credentialValue(ctx.credential);
    if (secret !== undefined) {
      if (!command.credentialEnv) {
        throw new ConnectorError('validation_error', `The MCP command "${target.command}" takes no credential`);
      }
      env[command.credentialEnv] = secret;
    }
    const [program, ...fixed] = command.argv as [string, ...string[]];
    // An explicit env: the SDK adds only its short list of basics (HOME, PATH…) under it, so
    // nothing else of CyNode's environment (the master key, other secrets) reaches the server.
    return new StdioClientTransport({ command: program, args: [...fixed, ...target.args], env, stderr: 'ignore' });
  }
  const resolved = await ctx.egress.resolve(target.url.hostname);
  return new StreamableHTTPClientTransport(target.url, {
    fetch: guardedFetch(target.url, resolved),
    requestInit: { headers: credentialHeaders(ctx.credential, { apiKeyHeader: target.apiKeyHeader }) },
  });
}

/** The approved command a stdio target names, if the administrator's list has it and allows its arguments. */
export function approvedCommand(commands: ApprovedCommands, target: Extract<McpTarget, { transport: 'stdio' }>): ApprovedCommand {
  const command = commands.get(target.command);
  if (!command) throw new ConnectorError('validation_error', `The MCP command "${target.command}" is not on the administrator's approved list`);
  if (target.args.length > 0 && !command.allowArgs) {
    throw new ConnectorError('validation_error', `The MCP command "${target.command}" takes no arguments from a connector`);
  }
  return command;
}

/** What a stdio server receives in its credential variable. */
function credentialValue(credential: CredentialSecret | null): string | undefined {
  if (!credential) return undefined;
  switch (credential.type) {
    case 'api_key':
      return credential.key;
    case 'bearer_token':
      return credential.token;
    case 'custom_header':
      return credential.value;
    default:
      throw new ConnectorError('validation_error', `An MCP server cannot take a ${credential.type} credential`);
  }
}

/**
 * The SDK's fetch, made to go through the egress guard: every request goes to the one address
 * checked for the configured URL, to that URL's origin only, without redirects (node:http does
 * not follow them) and with each answer's size capped.
 */
function guardedFetch(origin: URL, target: ResolvedTarget): FetchLike {
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof URL ? input.href : String(input));
      if (url.origin !== origin.origin) {
        reject(new ConnectorError('policy_denied', 'The MCP server tried to send the connector to another address'));
        return;
      }
      const body = init?.body;
      if (body !== undefined && body !== null && typeof body !== 'string') {
        reject(new ConnectorError('validation_error', 'The MCP client sent a request body it cannot forward'));
        return;
      }
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      new Headers(init?.headers).forEach((value, name) => {
        headers[name] = value;
      });
      if (body) headers['content-length'] = String(Buffer.byteLength(body));
      const client = url.protocol === 'https:' ? https : http;
      const req = client.request(url, {
        method: init?.method ?? 'GET',
        headers,
        lookup: pinnedLookup(target),
        agent: false,
        signal: init?.signal ?? undefined,
      });
      req.on('error', (e) => reject(e.name === 'AbortError' ? e : networkFailure(e, SERVICE)));
      req.on('response', (res) => {
        const answer = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) answer.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 502;
        const empty = status === 204 || status === 205 || status === 304 || init?.method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : cappedBody(res), { status, statusText: res.statusMessage, headers: answer }));
      });
      req.end(body ?? undefined);
    });
}

function cappedBody(res: http.IncomingMessage): ReadableStream<Uint8Array> {
  let size = 0;
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      res.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > MAX_HTTP_RESPONSE_BYTES) {
          done = true;
          controller.error(new ConnectorError('permanent', `${SERVICE} sent more than ${MAX_HTTP_RESPONSE_BYTES / (1024 * 1024)} MiB in one answer`));
          res.destroy();
          return;
        }
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      });
      res.on('end', () => {
        if (!done) controller.close();
        done = true;
      });
      res.on('error', (e) => {
        if (!done) controller.error(networkFailure(e, SERVICE));
        done = true;
      });
    },
    cancel() {
      done = true;
      res.destroy();
    },
  });
}

function timedOut(): ConnectorError {
  return new ConnectorError('transient', `${SERVICE} did not answer in time`);
}

/**
 * A failure in plain words. The SDK's own messages can carry the server's text (and so anything
 * it chose to say), so only the kind of failure is kept.
 */
export function mcpFailure(e: unknown, signal: AbortSignal): ConnectorError {
  if (isConnectorError(e)) return e;
  if (signal.aborted) return timedOut();
  if (e instanceof McpError) {
    switch (e.code) {
      case ErrorCode.RequestTimeout:
        return timedOut();
      case ErrorCode.ConnectionClosed:
        return new ConnectorError('transient', `${SERVICE} closed the connection`);
      case ErrorCode.InvalidParams:
        return new ConnectorError('validation_error', `${SERVICE} rejected the parameters`);
      case ErrorCode.MethodNotFound:
        return new ConnectorError('permanent', `${SERVICE} does not offer this`);
      default:
        return new ConnectorError('permanent', `${SERVICE} answered with an error (code ${e.code})`);
    }
  }
  if (e instanceof StreamableHTTPError && e.code !== undefined && e.code >= 100) {
    return failureForStatus(e.code, {}, SERVICE) ?? new ConnectorError('permanent', `${SERVICE} answered HTTP ${e.code}`);
  }
  const name = (e as { name?: string }).name;
  if (name === 'UnauthorizedError') return new ConnectorError('permanent', `${SERVICE} refused the credential; check or rotate it`);
  if (name === 'AbortError' || name === 'TimeoutError') return timedOut();
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOEXEC') {
    return new ConnectorError('permanent', `${SERVICE} could not be started; ask an administrator to check its command`);
  }
  return new ConnectorError('permanent', `${SERVICE} failed`);
}
