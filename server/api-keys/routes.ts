import { Type } from '@sinclair/typebox';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { badRequest, notFound } from '../http/problem';
import { IdParams, Nullable, Strict, Timestamp, errors, iso } from '../http/schemas';
import { requireSignedIn } from '../auth/signed-in';
import { API_KEY_PREFIX, NO_STORE, newOpaqueToken, tokenHash } from '../auth/tokens';
import { redactAll } from '../redaction/redaction';
import { insertApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from './store';

const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'First characters of the key, to tell keys apart' }),
  created_at: Timestamp,
  expires_at: Nullable(Timestamp),
  revoked_at: Nullable(Timestamp),
  last_used_at: Nullable(Timestamp),
});

const view = (k: ApiKeyRow) => ({
  id: k.id,
  name: k.name,
  prefix: k.key_prefix,
  created_at: k.created_at.toISOString(),
  expires_at: iso(k.expires_at),
  revoked_at: iso(k.revoked_at),
  last_used_at: iso(k.last_used_at),
});

/** Personal API keys: how LAN clients (OpenAI SDK, scripts) authenticate. */
export function apiKeyRoutes(app: HttpServer, db: Db): void {
  app.post(
    '/v1/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Create a personal API key (the key is shown only in this answer)',
        description: 'Only with a signed-in session: an API key cannot create another (403).',
        body: Strict({ name: Type.String({ minLength: 1, maxLength: 100 }), expires_at: Type.Optional(Nullable(Timestamp)) }),
        response: { 201: Type.Intersect([ApiKey, Type.Object({ key: Type.String() })]), ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const principal = request.principal!;
      await requireSignedIn(db, principal, 'api_keys.create', 'create API keys', requestContext(request));
      const { expires_at } = request.body;
      if (expires_at && Date.parse(expires_at) <= Date.now()) throw badRequest('expires_at must be in the future');
      // A name is free text, stored and audited: a credential pasted into it is redacted like a chat message.
      const name = (await redactAll([request.body.name], { remember: false })).texts[0]!;
      const key = newOpaqueToken(API_KEY_PREFIX);
      const row = await db.transaction(async (tx) => {
        const created = await insertApiKey(tx, { userId: principal.userId, name, hash: tokenHash(key), prefix: key.slice(0, 12), expiresAt: expires_at ?? null });
        await appendAudit(tx, { category: 'auth', action: 'api_key_created', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'api_key', resourceId: created.id, details: { name } }, requestContext(request));
        return created;
      });
      reply.code(201).headers(NO_STORE);
      return { ...view(row), key };
    },
  );

  app.get(
    '/v1/api-keys',
    { schema: { tags: ['api-keys'], summary: 'List your API keys (never the keys themselves)', response: { 200: Type.Object({ api_keys: Type.Array(ApiKey) }), ...errors(401) } } },
    async (request) => ({ api_keys: (await listApiKeys(db, request.principal!.userId)).map(view) }),
  );

  app.delete(
    '/v1/api-keys/:id',
    { schema: { tags: ['api-keys'], summary: 'Revoke one of your API keys', params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 404) } } },
    async (request, reply) => {
      const principal = request.principal!;
      await db.transaction(async (tx) => {
        const res = await revokeApiKey(tx, principal.userId, request.params.id);
        if (!res) throw notFound('API key');
        if (!res.already) {
          await appendAudit(tx, { category: 'auth', action: 'api_key_revoked', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'api_key', resourceId: res.id }, requestContext(request));
        }
      });
      reply.code(204).send(null);
    },
  );
}
