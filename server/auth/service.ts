import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { ApiKeyService } from '../api-keys/service';
import { bearerToken } from '../http/credentials';
import type { Principal, RequestContext } from '../http/principal';
import { tooManyRequests, unauthorized } from '../http/problem';
import { burnVerification, verifyPassword } from '../identity/passwords';
import { API_KEY_PREFIX, REFRESH_TOKEN_PREFIX, newOpaqueToken, tokenHash } from '../identity/secrets';
import { LRUCache } from 'lru-cache';
import { Memo } from '../db/memo';
import type { LoginLimiter } from './login-limiter';
import * as store from './store';
import type { AccessTokens } from './tokens';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

// One answer for unknown user, wrong password, disabled user and a user without a password.
const INVALID_CREDENTIALS = 'Invalid credentials';

/** How long a resolved credential is trusted without asking the database (changes drop it at once). */
const CREDENTIAL_MEMO_MS = 30_000;

/**
 * How long a refresh token just rotated may still be presented: two tabs (or a retried request)
 * refreshing with the same token at once each get a pair of their own, instead of the second
 * looking like a thief and ending the session. Later, reuse still ends it.
 */
const REFRESH_REUSE_GRACE_SECONDS = 5;

export class AuthService {
  /**
   * Resolved credentials, so a request costs no query. Dropped on any access change
   * (server/db/memo.ts dropOnChange); an expiry is checked on every use.
   */
  readonly credentials = new Memo<{ userId: string; handle: string; expiresAt: Date | null; apiKeyId?: string } | null>(CREDENTIAL_MEMO_MS);
  /** When each API key's use was last recorded by this process. */
  /** API keys whose "last used" was recorded in the last minute. */
  private readonly keyTouched = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 });

  constructor(
    private readonly db: Db,
    private readonly tokens: AccessTokens,
    private readonly limiter: LoginLimiter,
    private readonly sessionTtlSeconds: number,
    private readonly apiKeys: ApiKeyService,
  ) {}

  async login(handle: string, password: string, ctx: RequestContext): Promise<TokenPair> {
    const wait = await this.limiter.retryAfter(handle, ctx.ip);
    if (wait > 0) {
      await appendAudit(this.db, { category: 'auth', action: 'login_rate_limited', outcome: 'failure', details: { handle_hash: tokenHash(handle).slice(0, 16) } }, ctx);
      throw tooManyRequests('Too many sign-in attempts; try again later', wait);
    }

    const user = await store.findLoginCandidate(this.db, handle);
    const ok = user?.password_hash ? await verifyPassword(user.password_hash, password) : (await burnVerification(password), false);
    if (!user || !ok || !user.is_active || user.is_system) {
      await this.limiter.recordFailure(handle, ctx.ip);
      await appendAudit(
        this.db,
        {
          category: 'auth',
          action: 'login_failure',
          outcome: 'failure',
          actorId: user?.id ?? null,
          // An unknown handle may be a mistyped password: record only its hash.
          details: { handle_hash: tokenHash(handle).slice(0, 16) },
          reason: !user ? 'unknown_user' : !ok ? 'bad_password' : 'user_disabled',
        },
        ctx,
      );
      throw unauthorized(INVALID_CREDENTIALS);
    }

    await this.limiter.recordSuccess(handle);
    const refreshToken = newOpaqueToken(REFRESH_TOKEN_PREFIX);
    const sessionId = await this.db.transaction(async (tx) => {
      const id = await store.insertSession(tx, { userId: user.id, ttlSeconds: this.sessionTtlSeconds, ip: ctx.ip, userAgent: ctx.userAgent });
      await store.insertRefreshToken(tx, id, tokenHash(refreshToken));
      await appendAudit(tx, { category: 'auth', action: 'login_success', outcome: 'success', actorId: user.id, actorHandle: user.handle, resourceType: 'session', resourceId: id }, ctx);
      return id;
    });
    return this.pair(user.id, user.handle, sessionId, refreshToken);
  }

  /**
   * A session for the operator at this machine, without a password: only the desktop's main
   * process calls it (through the composition root), never an HTTP route. Audited like a sign-in.
   */
  async localSession(handle: string, ctx: RequestContext): Promise<TokenPair & { user_id: string; handle: string }> {
    const user = await store.findLoginCandidate(this.db, handle);
    if (!user || !user.is_active || user.is_system) throw new Error(`no active user "${handle}" to sign in locally`);
    const refreshToken = newOpaqueToken(REFRESH_TOKEN_PREFIX);
    const sessionId = await this.db.transaction(async (tx) => {
      const id = await store.insertSession(tx, { userId: user.id, ttlSeconds: this.sessionTtlSeconds, ip: ctx.ip, userAgent: ctx.userAgent });
      await store.insertRefreshToken(tx, id, tokenHash(refreshToken));
      await appendAudit(tx, { category: 'auth', action: 'login_success', outcome: 'success', actorId: user.id, actorHandle: user.handle, resourceType: 'session', resourceId: id, details: { method: 'desktop' } }, ctx);
      return id;
    });
    return { ...(await this.pair(user.id, user.handle, sessionId, refreshToken)), user_id: user.id, handle: user.handle };
  }

  /**
   * Rotates the refresh token. A token that was already rotated means someone kept a copy:
   * the session is revoked for everyone holding it. Within the grace period after its rotation
   * it gets a sibling pair instead (REFRESH_REUSE_GRACE_SECONDS).
   */
  async refresh(refreshToken: string, ctx: RequestContext): Promise<TokenPair> {
    const hash = tokenHash(refreshToken);
    const next = newOpaqueToken(REFRESH_TOKEN_PREFIX);
    const outcome = await this.db.transaction(async (tx) => {
      const state = await store.lockRefreshToken(tx, hash, REFRESH_REUSE_GRACE_SECONDS);
      if (!state) return { ok: false as const, reason: 'unknown_token' };
      const audit = { category: 'auth' as const, actorId: state.user_id, actorHandle: state.handle, resourceType: 'session', resourceId: state.session_id };
      if (state.rotated && !state.just_rotated) {
        await store.revokeSession(tx, state.session_id, 'refresh_token_reuse');
        await appendAudit(tx, { ...audit, action: 'refresh_token_reuse', outcome: 'failure', reason: 'an already-rotated refresh token was presented; session revoked' }, ctx);
        return { ok: false as const, reason: 'reuse' };
      }
      if (!state.session_usable) {
        await appendAudit(tx, { ...audit, action: 'refresh_failure', outcome: 'failure', reason: 'session_inactive' }, ctx);
        return { ok: false as const, reason: 'inactive' };
      }
      if (!state.rotated) await store.markRotated(tx, hash);
      await store.insertRefreshToken(tx, state.session_id, tokenHash(next));
      await store.touchSession(tx, state.session_id);
      await appendAudit(tx, { ...audit, action: 'refresh_success', outcome: 'success', details: state.rotated ? { within_reuse_grace: true } : undefined }, ctx);
      return { ok: true as const, state };
    });
    if (!outcome.ok) {
      // The trigger's notification does this too; here it is certain before we answer.
      if (outcome.reason === 'reuse') this.credentials.clear();
      if (outcome.reason === 'unknown_token') {
        await appendAudit(this.db, { category: 'auth', action: 'refresh_failure', outcome: 'failure', reason: 'unknown_token' }, ctx);
      }
      throw unauthorized('Refresh token is invalid, expired or revoked');
    }
    return this.pair(outcome.state.user_id, outcome.state.handle, outcome.state.session_id, next);
  }

  /** Ends the session named by the access token and/or the refresh token. Always succeeds. */
  async logout(principal: Principal | null, refreshToken: string | undefined, ctx: RequestContext): Promise<void> {
    const sessions = new Map<string, string>();
    if (principal?.sessionId) sessions.set(principal.sessionId, principal.userId);
    if (refreshToken) {
      const found = await store.findSessionByRefreshToken(this.db, tokenHash(refreshToken));
      if (found) sessions.set(found.session_id, found.user_id);
    }
    for (const [sessionId, userId] of sessions) {
      await this.db.transaction(async (tx) => {
        if (await store.revokeSession(tx, sessionId, 'logout')) {
          await appendAudit(tx, { category: 'auth', action: 'logout', outcome: 'success', actorId: userId, resourceType: 'session', resourceId: sessionId }, ctx);
        }
      });
      this.credentials.delete(`session:${sessionId}:${userId}`);
    }
  }

  /** Resolves `Authorization: Bearer …` (access token or API key) to a principal, or null. */
  async authenticate(authorization: string | undefined): Promise<Principal | null> {
    const token = bearerToken(authorization);
    if (!token) return null;
    if (token.startsWith(API_KEY_PREFIX)) {
      const hash = tokenHash(token);
      const key = await this.credentials.get(`key:${hash}`, async () => {
        const k = await this.apiKeys.findUsable(hash);
        return k && { userId: k.user_id, handle: k.handle, expiresAt: k.expires_at, apiKeyId: k.id };
      });
      if (!key || expired(key.expiresAt)) return null;
      this.recordKeyUse(key.apiKeyId!);
      return { userId: key.userId, handle: key.handle, via: 'api_key', apiKeyId: key.apiKeyId };
    }
    const claims = await this.tokens.verify(token);
    if (!claims) return null;
    const session = await this.credentials.get(`session:${claims.sessionId}:${claims.userId}`, async () => {
      const s = await store.activeSessionUser(this.db, claims.sessionId, claims.userId);
      return s && { userId: claims.userId, handle: s.handle, expiresAt: s.expires_at };
    });
    if (!session || expired(session.expiresAt)) return null;
    return { userId: claims.userId, handle: session.handle, via: 'session', sessionId: claims.sessionId };
  }

  /**
   * Whether the credential a principal came with still works, asked of the database (never the
   * memo): for what outlives its request, such as a live stream.
   */
  async stillValid(principal: Principal): Promise<boolean> {
    if (principal.via === 'session') return principal.sessionId !== undefined && (await store.activeSessionUser(this.db, principal.sessionId, principal.userId)) !== null;
    if (principal.via === 'api_key') return principal.apiKeyId !== undefined && (await this.apiKeys.usable(principal.apiKeyId));
    // An agent's token is the agents domain's to check (AgentTokenService.stillValid).
    return principal.via === 'local';
  }

  /** Off the request's path: losing one "last used" update is harmless. */
  private recordKeyUse(id: string): void {
    if (this.keyTouched.has(id)) return;
    this.keyTouched.set(id, true);
    this.apiKeys.touch(id).catch(() => this.keyTouched.delete(id));
  }

  private async pair(userId: string, handle: string, sessionId: string, refreshToken: string): Promise<TokenPair> {
    const access = await this.tokens.sign({ userId, sessionId, handle });
    return { access_token: access, refresh_token: refreshToken, token_type: 'Bearer', expires_in: this.tokens.ttlSeconds };
  }
}

const expired = (at: Date | null) => at !== null && at.getTime() <= Date.now();

