import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { SignJWT, jwtVerify } from 'jose';
import { bearerToken } from '../http/credentials';
import { unauthorized } from '../http/problem';

const ISSUER = 'cynode';
export const NODE_TOKEN_TTL_SECONDS = 24 * 60 * 60;

export interface NodeClaims {
  nodeId: string;
  nodeSlug: string;
  /** The registration that issued the token: a later registration of the node voids it. */
  registrationId: string;
}

/**
 * The node JWT: HS256, signed with a key derived from the master key
 * (`node-token-signing`, never the one of user access tokens, so neither kind passes for the
 * other), `sub` = node id, `token_type` = node, `rid` = the registration, 24 hours. It names a
 * node row and one registration of it: once the row is deleted or the node registers again the
 * token leads nowhere, and registering (with the join key and the node's secret) issues a new one.
 */
export class NodeTokens {
  constructor(
    private readonly key: Uint8Array,
    readonly ttlSeconds = NODE_TOKEN_TTL_SECONDS,
  ) {}

  async sign(c: NodeClaims): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ token_type: 'node', node_slug: c.nodeSlug, rid: c.registrationId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(c.nodeId)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + this.ttlSeconds)
      .sign(this.key);
    return { token, expiresAt: new Date((now + this.ttlSeconds) * 1000) };
  }

  /** The claims of a valid, unexpired node token; null for anything else. */
  async verify(token: string): Promise<NodeClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      // A token without `rid` comes from a version without node secrets: refused, so that its node
      // registers again now and its secret is recorded (migrations/0010).
      if (payload.token_type !== 'node' || typeof payload.sub !== 'string' || typeof payload.node_slug !== 'string' || typeof payload.rid !== 'string') return null;
      return { nodeId: payload.sub, nodeSlug: payload.node_slug, registrationId: payload.rid };
    } catch {
      return null;
    }
  }

  /** The calling node, from `Authorization: Bearer <node jwt>`; 401 without a valid one. */
  async authenticate(request: FastifyRequest): Promise<NodeClaims> {
    const token = bearerToken(request.headers.authorization);
    const claims = token ? await this.verify(token) : null;
    // One message whatever was wrong: a node that gets 401 registers again.
    if (!claims) throw unauthorized('A valid node token is required (Authorization: Bearer <node_jwt>); register again to get one');
    return claims;
  }
}
