import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { BootstrapPayload, CapabilityReport, ConfigAck, NodeConfig, RegisterRequest } from '../../node-manager/contract/control-plane';
import { NO_STORE } from '../identity/secrets';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { errors } from '../http/schemas';
import type { ControlPlaneService } from './control-service';
import type { NodeClaims, NodeTokens } from './node-tokens';

declare module 'fastify' {
  interface FastifyRequest {
    /** The node behind a node-token request on the control plane; null elsewhere. */
    node: NodeClaims | null;
  }
}

/**
 * The control plane's credential: a node token, checked before the body is even read, so a
 * caller without a valid token learns nothing about what the body should be.
 */
export function authenticateNode(tokens: NodeTokens): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    request.node = await tokens.authenticate(request);
  };
}

/**
 * The control plane's node-facing routes. Nodes are not users: register
 * checks the join PSK itself; everything else needs the node token (`authenticateNode`).
 */
export function controlPlaneRoutes(app: HttpServer, service: ControlPlaneService): void {
  app.decorateRequest('node', null);

  app.post(
    '/v1/nodes/register',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['nodes'],
        summary: "Register a node with the join key: 201 for a new node, 200 again (with the node's own secret); answers the bootstrap payload with a node token",
        description: "A name that is taken registers again only with the node_secret it was first registered with; otherwise 409 and nothing about that node changes. Every registration voids the node's earlier node tokens and gives it a new Worker API token (fetched with its config).",
        security: [],
        body: RegisterRequest,
        response: { 200: BootstrapPayload, 201: BootstrapPayload, ...errors(400, 401, 409, 413, 429) },
      },
    },
    async (request, reply) => {
      const { created, payload } = await service.register(request.body, baseUrlOf(request), requestContext(request));
      // The payload carries the node's token.
      reply.code(created ? 201 : 200).headers(NO_STORE);
      return payload;
    },
  );

  app.get(
    '/v1/nodes/config',
    {
      schema: { tags: ['nodes'], summary: "The calling node's configuration (node_configuration_payload_v1)", response: { 200: NodeConfig, ...errors(401, 404) } },
    },
    async (request) => service.config(request.node!, baseUrlOf(request)),
  );

  app.post(
    '/v1/nodes/config',
    {
      schema: { tags: ['nodes'], summary: 'Acknowledge a configuration: applied or failed (node_config_ack_v1)', body: ConfigAck, response: { 204: Type.Null(), ...errors(400, 401, 404) } },
    },
    async (request, reply) => {
      await service.ack(request.node!, request.body);
      reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/nodes/capability',
    {
      schema: { tags: ['nodes'], summary: 'Report capabilities; also the heartbeat that keeps the node active', body: CapabilityReport, response: { 204: Type.Null(), ...errors(400, 401) } },
    },
    async (request, reply) => {
      await service.report(request.node!, request.body, requestContext(request));
      reply.code(204).send(null);
    },
  );
}

const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The control plane as the node reached it: URLs handed to a node are built from the Host it
 * used, so they work over whichever address (loopback, LAN, a tunnel) that node has. Without
 * a usable Host header, the address the connection arrived on.
 */
function baseUrlOf(request: FastifyRequest): string {
  const host = request.headers.host;
  if (host && HOST.test(host)) return `${request.protocol}://${host}`;
  const { localAddress, localPort } = request.socket;
  const addr = (localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  return `${request.protocol}://${addr.includes(':') ? `[${addr}]` : addr}:${localPort}`;
}
