import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, Strict, Timestamp, errors, iso } from '../http/schemas';
import { NO_STORE } from '../identity/secrets';
import type { ApiKeyService } from './service';
import type { ApiKeyRow } from './store';

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
export function apiKeyRoutes(app: HttpServer, apiKeys: ApiKeyService): void {
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
      const created = await apiKeys.create(request.principal!, { name: request.body.name, expiresAt: request.body.expires_at ?? null }, requestContext(request));
      reply.code(201).headers(NO_STORE);
      return { ...view(created), key: created.key };
    },
  );

  app.get(
    '/v1/api-keys',
    { schema: { tags: ['api-keys'], summary: 'List your API keys (never the keys themselves)', response: { 200: Type.Object({ api_keys: Type.Array(ApiKey) }), ...errors(401) } } },
    async (request) => ({ api_keys: (await apiKeys.list(request.principal!)).map(view) }),
  );

  app.delete(
    '/v1/api-keys/:id',
    { schema: { tags: ['api-keys'], summary: 'Revoke one of your API keys', params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 404) } } },
    async (request, reply) => {
      await apiKeys.revoke(request.principal!, request.params.id, requestContext(request));
      reply.code(204).send(null);
    },
  );
}
