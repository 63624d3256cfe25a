import type { Static, TObject } from '@sinclair/typebox';
import type { RequestContext } from '../http/principal';
import type { McpCaller } from './caller';

/** What a tool's handler gets besides its arguments. */
export interface ToolCall {
  caller: McpCaller;
  ctx: RequestContext;
  /** Aborted when the call's time is up; handlers pass it on where a service takes one. */
  signal: AbortSignal;
}

/**
 * One tool of the MCP server: a name `namespace.operation`, its input as JSON Schema (TypeBox),
 * the hints MCP clients show (docs/decisions/0007-tool-surface.md), and a handler that calls one domain
 * service with the caller's principal, so the service's own access checks apply as on REST.
 */
export interface ToolDef<S extends TObject = TObject> {
  name: string;
  title: string;
  description: string;
  input: S;
  /** Changes nothing. Also the `readOnly` attribute of `Tool::"<name>"` in access rules. */
  readOnly: boolean;
  /** May delete or end something (cancel a task). */
  destructive: boolean;
  /** Calling again with the same arguments changes nothing more. */
  idempotent: boolean;
  /** Reaches beyond CyNode (a connector's peer). */
  openWorld: boolean;
  /** The answer, as `structuredContent` (an object). */
  run(args: Static<S>, call: ToolCall): Promise<Record<string, unknown>>;
}

/** Keeps each tool's argument type while the catalog holds them side by side. */
export const defineTool = <S extends TObject>(tool: ToolDef<S>): ToolDef => tool as unknown as ToolDef;

/** Ids a tool takes are plain strings checked by pattern: formats are not known to the validator. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
