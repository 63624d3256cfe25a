import type { FastifyRequest } from 'fastify';
import { bearerToken } from '../http/credentials';
import type { Principal } from '../http/principal';
import { HttpProblem } from '../http/problem';
import { principalOf, type AgentTokenService } from './service';
import { AGENT_TOKEN_REFUSED, claimsAgentToken } from './tokens';

/**
 * The gateway's answer to a bearer credential that is not a session's or an API key's: null when
 * it is no agent token either; on a route that does not take agents, a 401 saying where they are
 * taken (agents use MCP, the User API is for people and integrations: docs/decisions/0007-tool-surface.md);
 * on a route that does, the agent as a principal (`via: 'agent'`), or null when the token is bad,
 * expired or revoked. A route taking agents must decide every call for the agent too.
 */
export async function agentPrincipal(agents: AgentTokenService, request: FastifyRequest, acceptedAt: ReadonlySet<string>): Promise<Principal | null> {
  const header = request.headers.authorization;
  if (!claimsAgentToken(header)) return null;
  if (!acceptedAt.has(request.routeOptions.url ?? '')) throw new HttpProblem(401, AGENT_TOKEN_REFUSED, {}, { 'www-authenticate': 'Bearer' });
  const caller = await agents.verify(bearerToken(header)!);
  return caller && principalOf(caller);
}
