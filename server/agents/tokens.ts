import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { bearerToken } from '../http/credentials';

const ISSUER = 'cynode';
/**
 * Agent tokens are for the MCP server alone. With their own audience, token type and signing
 * key, an agent token never passes as a session access token, nor an access token as an agent's.
 */
const AUDIENCE = 'cynode-mcp';
const TOKEN_TYPE = 'agent';

export interface AgentClaims {
  /** The token's row and the Agent entity's id (`jti`). */
  id: string;
  userId: string;
  role: string;
  taskId?: string;
  sessionId?: string;
  projectId?: string;
  expiresAt: Date;
}

/** HS256 agent tokens: signed here, and checked against their row by the service on every use. */
export class AgentTokens {
  /**
   * Signatures already checked, until the token expires: revocation does not rest on this (the
   * service looks the row up), and only valid tokens are kept.
   */
  private readonly verified = new LRUCache<string, AgentClaims>({ max: 10_000 });

  constructor(private readonly key: Uint8Array) {}

  sign(c: AgentClaims): Promise<string> {
    const claims: Record<string, string> = { token_type: TOKEN_TYPE, role: c.role };
    if (c.taskId !== undefined) claims.task_id = c.taskId;
    if (c.sessionId !== undefined) claims.session_id = c.sessionId;
    if (c.projectId !== undefined) claims.project_id = c.projectId;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(c.userId)
      .setJti(c.id)
      .setIssuedAt()
      .setExpirationTime(Math.floor(c.expiresAt.getTime() / 1000))
      .sign(this.key);
  }

  /** The claims of a valid, unexpired agent token; null for anything else. */
  async verify(token: string): Promise<AgentClaims | null> {
    const known = this.verified.get(token);
    if (known) return known.expiresAt.getTime() > Date.now() ? known : null;
    try {
      const { payload: p } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], clockTolerance: 0 });
      if (p.token_type !== TOKEN_TYPE || typeof p.sub !== 'string' || typeof p.jti !== 'string' || typeof p.role !== 'string' || typeof p.exp !== 'number') return null;
      const optional = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const claims: AgentClaims = { id: p.jti, userId: p.sub, role: p.role, taskId: optional(p.task_id), sessionId: optional(p.session_id), projectId: optional(p.project_id), expiresAt: new Date(p.exp * 1000) };
      const ttl = claims.expiresAt.getTime() - Date.now();
      if (ttl > 0) this.verified.set(token, claims, { ttl });
      return claims;
    } catch {
      return null;
    }
  }
}

/**
 * Whether an `Authorization` header carries something that calls itself an agent token, read
 * without checking its signature: only to tell the caller why the User API refuses it (it is
 * refused either way), and for /mcp to pick the verifier. Never a reason to accept anything.
 */
export function claimsAgentToken(authorization: string | undefined): boolean {
  const token = bearerToken(authorization);
  if (!token || token.split('.').length !== 3) return false;
  try {
    const p = decodeJwt(token);
    return p.token_type === TOKEN_TYPE || (Array.isArray(p.aud) ? p.aud.includes(AUDIENCE) : p.aud === AUDIENCE);
  } catch {
    return false;
  }
}

/** The User API's answer to an agent token (agents use MCP; the REST API is for people: docs/decisions/0007-tool-surface.md). */
export const AGENT_TOKEN_REFUSED = 'agent tokens are accepted only at /mcp';
