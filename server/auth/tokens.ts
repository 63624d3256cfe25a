import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

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
  private readonly verified = new Map<string, { claims: AccessClaims; until: number }>();

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
    if (known) {
      if (known.until > Date.now()) return known.claims;
      this.verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      if (payload.token_type !== 'access' || typeof payload.sid !== 'string' || typeof payload.sub !== 'string') return null;
      const claims = { userId: payload.sub, sessionId: payload.sid, handle: String(payload.handle ?? '') };
      if (typeof payload.exp === 'number') {
        if (this.verified.size >= 10_000) this.verified.clear();
        this.verified.set(token, { claims, until: payload.exp * 1000 });
      }
      return claims;
    } catch {
      return null;
    }
  }
}
