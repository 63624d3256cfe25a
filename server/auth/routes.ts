import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Strict, errors } from '../http/schemas';
import { NO_STORE } from '../identity/secrets';
import type { AuthService } from './service';

const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Access token lifetime in seconds' }),
});

/** Signing in and out: sessions and their tokens. */
export function authRoutes(app: HttpServer, auth: AuthService): void {
  app.post(
    '/v1/auth/login',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'Sign in with handle and password',
        security: [],
        body: Strict({ handle: Type.String({ minLength: 1, maxLength: 128 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }),
        response: { 200: TokenPair, ...errors(400, 401, 429) },
      },
    },
    async (request, reply) => {
      reply.headers(NO_STORE);
      return auth.login(request.body.handle, request.body.password, requestContext(request));
    },
  );

  app.post(
    '/v1/auth/refresh',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair (the old refresh token stops working)',
        security: [],
        body: Strict({ refresh_token: Type.String({ minLength: 1, maxLength: 512 }) }),
        response: { 200: TokenPair, ...errors(400, 401) },
      },
    },
    async (request, reply) => {
      reply.headers(NO_STORE);
      return auth.refresh(request.body.refresh_token, requestContext(request));
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      // An expired access token must not stop anyone from ending their session.
      config: { auth: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'End the session of the bearer token and/or the given refresh token',
        // The bearer token is optional here: an expired session can still be ended by its refresh token.
        security: [{}, { bearer: [] }],
        body: Type.Optional(Strict({ refresh_token: Type.Optional(Type.String({ maxLength: 512 })) })),
        response: { 204: Type.Null(), ...errors(400) },
      },
    },
    async (request, reply) => {
      const principal = await auth.authenticate(request.headers.authorization);
      await auth.logout(principal, request.body?.refresh_token, requestContext(request));
      reply.code(204).send(null);
    },
  );
}
