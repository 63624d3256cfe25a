import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { Strict, errors } from '../http/schemas';
import type { RouteDeps } from '../routes';
import type { LanSharing } from './lan-sharing';

export const LanSharingStatus = Type.Object({
  enabled: Type.Boolean({ description: 'LAN clients can reach the gateway (through this setting, or CYNODE_HOST)' }),
  urls: Type.Array(Type.String(), { description: 'What LAN browsers and OpenAI clients use (`http://<address>:<port>`; the OpenAI base URL adds /v1); empty when off' }),
  managed_by_env: Type.Boolean({ description: 'CYNODE_HOST (or --host) binds a non-loopback address: the environment decides and the setting is read-only' }),
});

/** Installation-wide switches an admin flips from the console's settings page. */
export function systemRoutes(app: HttpServer, { authz }: RouteDeps, lanSharing: LanSharing): void {
  app.put(
    '/v1/system/lan-sharing',
    {
      schema: {
        tags: ['system'],
        summary: 'Share the gateway on the LAN, or stop: effective at once, kept across restarts',
        description:
          'On: the gateway also listens on every non-loopback address of this machine, on the same port. Off: those listeners close with their connections. Admins only; audited. 409 when CYNODE_HOST sets a non-loopback address (the environment decides).',
        body: Strict({ enabled: Type.Boolean() }),
        response: { 200: LanSharingStatus, ...errors(400, 401, 403, 409) },
      },
    },
    async (request) => {
      const ctx = requestContext(request);
      await authz.require(request.principal!, 'settings.manage', ctx, { resourceType: 'system_setting', resourceId: 'lan_sharing' });
      return lanSharing.set(request.body.enabled, request.principal!, ctx);
    },
  );
}
