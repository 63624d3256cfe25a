import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, notFound } from '../http/problem';
import { requireSignedIn } from '../identity/signed-in';
import { API_KEY_PREFIX, newOpaqueToken, tokenHash } from '../identity/secrets';
import { redactAll } from '../redaction/redaction';
import * as store from './store';
import type { ApiKeyRow } from './store';

/** Personal API keys: how LAN clients (OpenAI SDK, scripts) authenticate. */
export class ApiKeyService {
  constructor(private readonly db: Db) {}

  /** A new key of the caller's: the key itself is in this answer only, never stored. */
  async create(principal: Principal, input: { name: string; expiresAt: string | null }, ctx: RequestContext): Promise<ApiKeyRow & { key: string }> {
    await requireSignedIn(this.db, principal, 'api_keys.create', 'create API keys', ctx);
    if (input.expiresAt && Date.parse(input.expiresAt) <= Date.now()) throw badRequest('expires_at must be in the future');
    // A name is free text, stored and audited: a credential pasted into it is redacted like a chat message.
    const name = (await redactAll([input.name], { remember: false })).texts[0]!;
    const key = newOpaqueToken(API_KEY_PREFIX);
    const row = await this.db.transaction(async (tx) => {
      const created = await store.insertApiKey(tx, { userId: principal.userId, name, hash: tokenHash(key), prefix: key.slice(0, 12), expiresAt: input.expiresAt });
      await appendAudit(tx, { category: 'auth', action: 'api_key_created', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'api_key', resourceId: created.id, details: { name } }, ctx);
      return created;
    });
    return { ...row, key };
  }

  list(principal: Principal): Promise<ApiKeyRow[]> {
    return store.listApiKeys(this.db, principal.userId);
  }

  /** Revokes one of the caller's own keys; 404 when they have no such key. */
  async revoke(principal: Principal, id: string, ctx: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      const res = await store.revokeApiKey(tx, principal.userId, id);
      if (!res) throw notFound('API key');
      if (!res.already) {
        await appendAudit(tx, { category: 'auth', action: 'api_key_revoked', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'api_key', resourceId: res.id }, ctx);
      }
    });
  }

  /** In the caller's transaction (a user being disabled): every key of theirs ends; how many that was. */
  revokeAllOf(tx: Queryable, userId: string): Promise<number> {
    return store.revokeUserApiKeys(tx, userId);
  }

  /** The live key with this hash and its (active, human) owner; null otherwise. */
  findUsable(hash: string): ReturnType<typeof store.findUsableApiKey> {
    return store.findUsableApiKey(this.db, hash);
  }

  /** Whether the key still signs in: not revoked, not expired, its owner active and human. */
  usable(id: string): Promise<boolean> {
    return store.apiKeyUsable(this.db, id);
  }

  /** Records use, at most once a minute per key. */
  touch(id: string): Promise<void> {
    return store.touchApiKey(this.db, id);
  }
}
