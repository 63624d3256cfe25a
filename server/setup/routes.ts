import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { isLoopbackAddress, isLoopbackHost } from '../http/addresses';
import { forbidden } from '../http/problem';
import { Password, Strict, errors } from '../http/schemas';
import type { SetupService } from './service';

const Setup = Type.Object({
  first_run_password_pending: Type.Boolean({ description: 'The admin still has the password first run generated (nobody chose one yet)' }),
});

/**
 * Who may set the first-run password: only someone at the machine. The client's address is the
 * socket's own (no forwarding header is trusted), and the Host header must name loopback too, so
 * a web page that rebinds its own domain to 127.0.0.1 in the owner's browser is refused as well.
 * Null when allowed, otherwise why not.
 */
export function setupRefusal(remoteAddress: string | undefined, host: string | undefined): string | null {
  if (!isLoopbackAddress(remoteAddress) || !isLoopbackHost(host)) {
    return 'The first-run password can only be set at the machine running CyNode (from a loopback address such as http://127.0.0.1). Elsewhere, sign in with the generated password from initial-admin-password in its data folder.';
  }
  return null;
}

/**
 * First-run setup: whether the generated admin password is still in use (public, says nothing
 * else), and choosing the admin's password at the machine instead of reading the generated one.
 */
export function setupRoutes(app: HttpServer, setup: SetupService): void {
  app.get(
    '/v1/setup',
    {
      config: { auth: 'none' },
      schema: { tags: ['setup'], summary: 'Whether first-run setup is still to be done', security: [], response: { 200: Setup } },
    },
    async () => ({ first_run_password_pending: await setup.firstRunPasswordPending() }),
  );

  app.post(
    '/v1/setup/admin-password',
    {
      config: { auth: 'none' },
      // Before anything is read: a LAN client learns nothing but "not from here".
      onRequest: async (request: FastifyRequest) => {
        const refusal = setupRefusal(request.socket.remoteAddress, request.headers.host);
        if (refusal) throw forbidden(refusal);
      },
      schema: {
        tags: ['setup'],
        summary: "Choose the admin's password instead of the generated first-run one",
        description:
          'Only from a loopback address of the machine running CyNode (403 otherwise), and only while the generated first-run password is still the admin password (409 once anyone chose one). Removes the initial-admin-password file.',
        security: [],
        body: Strict({ password: Password }),
        response: { 204: Type.Null(), ...errors(400, 403, 409) },
      },
    },
    async (request, reply) => {
      await setup.chooseAdminPassword(request.body.password, requestContext(request));
      reply.code(204).send(null);
    },
  );
}
