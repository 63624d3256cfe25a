import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';

const ISSUER = 'cynode';

export interface AccessClaims {
  userId: string;
  sessionId: string;
  handle: string;
}

/** Short-lived HS256 access tokens bound to a session (`sid`), checked against it on every request. */
export class AccessTokens {
  /**
   * Tokens already verified, until they expire: a signature that checked out once stays valid, and
   * checking it again was a tenth of a chat completion's time. Revocation does not rest on this
   * (the session behind a token is looked up on every request), and only valid tokens are kept.
   */
  private readonly verified = new LRUCache<string, AccessClaims>({ max: 10_000 });

  constructor(
    private readonly key: Uint8Array,
    readonly ttlSeconds: number,
  ) {}

  sign(c: AccessClaims): Promise<string> {
    return new SignJWT({ sid: c.sessionId, handle: c.handle, token_type: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(c.userId)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /** The claims of a valid, unexpired access token; null for anything else. */
  async verify(token: string): Promise<AccessClaims | null> {
    const known = this.verified.get(token);
    if (known) return known;
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      if (payload.token_type !== 'access' || typeof payload.sid !== 'string' || typeof payload.sub !== 'string') return null;
      const claims = { userId: payload.sub, sessionId: payload.sid, handle: String(payload.handle ?? '') };
      // Kept until the token expires (a ttl of 0 would mean forever in the cache, so not kept then).
      const ttl = typeof payload.exp === 'number' ? payload.exp * 1000 - Date.now() : 0;
      if (ttl > 0) this.verified.set(token, claims, { ttl });
      return claims;
    } catch {
      return null;
    }
  }
}
