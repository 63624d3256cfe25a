import { Type } from '@sinclair/typebox';
import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { unauthorized } from '../http/problem';
import { Nullable, Password, Strict, errors } from '../http/schemas';
import { findDefaultProject } from '../projects/queries';
import { systemRoleNames } from '../rbac/store';
import { findUserById, getPasswordHash, setPasswordHash } from '../users/store';
import { removeFirstRunPasswordFile } from '../users/first-run-password';
import { hashPassword, verifyPassword } from './passwords';
import type { AuthService } from './service';
import { requireSignedIn } from './signed-in';
import { NO_STORE } from './tokens';
import { revokeUserSessions } from './store';

const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Access token lifetime in seconds' }),
});

const Me = Type.Object({
  id: Type.String(),
  handle: Type.String(),
  email: Nullable(Type.String()),
  display_name: Nullable(Type.String()),
  is_active: Type.Boolean(),
  roles: Type.Array(Type.String(), { description: 'System-scope roles' }),
  group_ids: Type.Array(Type.String()),
  default_project_id: Nullable(Type.String()),
  auth_method: Type.Union([Type.Literal('session'), Type.Literal('api_key')]),
});

/** `firstRunPasswordFile`: removed when a password change replaces the generated first-run password. */
export function authRoutes(app: HttpServer, db: Db, auth: AuthService, firstRunPasswordFile: string): void {
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

  app.get(
    '/v1/users/me',
    { schema: { tags: ['users'], summary: 'Who am I', response: { 200: Me, ...errors(401) } } },
    async (request) => {
      const p = request.principal!;
      const user = await findUserById(db, p.userId);
      if (!user) throw unauthorized();
      const [roles, groups, project] = await Promise.all([
        systemRoleNames(db, p.userId),
        db.query<{ group_id: string }>(
          'SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = $1 AND gm.is_active AND g.is_active ORDER BY gm.group_id',
          [p.userId],
        ),
        findDefaultProject(db, p.userId),
      ]);
      return {
        id: user.id,
        handle: user.handle,
        email: user.email,
        display_name: user.display_name,
        is_active: user.is_active,
        roles,
        group_ids: groups.map((g) => g.group_id),
        default_project_id: project?.id ?? null,
        auth_method: p.via === 'api_key' ? ('api_key' as const) : ('session' as const),
      };
    },
  );

  app.post(
    '/v1/users/me/password',
    {
      schema: {
        tags: ['users'],
        summary: 'Change your password (your other sessions are signed out)',
        description: 'Only with a signed-in session: an API key cannot change the password (403).',
        body: Strict({ current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Password }),
        response: { 204: Type.Null(), ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const p = request.principal!;
      await requireSignedIn(db, p, 'password.change', 'change the password', requestContext(request));
      const current = await getPasswordHash(db, p.userId);
      if (!current || !(await verifyPassword(current, request.body.current_password))) throw unauthorized('Current password is wrong');
      const hash = await hashPassword(request.body.new_password);
      const replacedFirstRun = await db.transaction(async (tx) => {
        const replaced = await setPasswordHash(tx, p.userId, hash);
        // The session that made the change stays; every other one ends.
        await revokeUserSessions(tx, p.userId, 'password_changed', p.sessionId ?? null);
        await appendAudit(tx, { category: 'auth', action: 'password_changed', outcome: 'success', actorId: p.userId, actorHandle: p.handle, resourceType: 'user', resourceId: p.userId }, requestContext(request));
        return replaced;
      });
      if (replacedFirstRun) await removeFirstRunPasswordFile(firstRunPasswordFile);
      reply.code(204).send(null);
    },
  );
}
