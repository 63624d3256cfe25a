import type { FastifyRequest } from 'fastify';
import type { Principal } from '../http/principal';
import { unauthorized } from '../http/problem';

/** Who calls a tool: the user behind the credential and, for an agent's token, the agent acting for them. */
export interface McpCaller {
  principal: Principal;
  /**
   * Set when the credential is an agent-scoped token (docs/decisions/0007-tool-surface.md): every
   * decision is then made for the user and the agent's role, and `taskId`/`sessionId` bound the
   * ids the agent may name.
   */
  agent?: { id: string; role: string; taskId?: string; sessionId?: string };
}

/**
 * The one place a request to /mcp becomes a caller; every later check takes the McpCaller. The
 * gateway's authenticator has already resolved the bearer credential (an API key, a session's
 * access token, or an agent-scoped token: server/agents/authenticate.ts) before the route runs.
 */
export function resolveMcpCaller(request: FastifyRequest): McpCaller {
  const principal = request.principal;
  // Fail closed: a route reached without a principal is refused, never served anonymously.
  if (!principal) throw unauthorized();
  if (principal.via !== 'agent') return { principal };
  // Without its agent, an agent's principal would act with its user's whole rights.
  if (!principal.agent) throw unauthorized();
  const { id, role, taskId, sessionId } = principal.agent;
  return { principal, agent: { id, role, ...(taskId ? { taskId } : {}), ...(sessionId ? { sessionId } : {}) } };
}
