import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';

export interface Readiness {
  /** null when ready; otherwise what an operator must fix. */
  notReadyReason(): Promise<string | null>;
}

/**
 * Liveness and readiness: the only routes without a credential besides sign-in. While the
 * process is still starting (`started` false) both answer 503 `starting`, so that a client
 * waiting for `/healthz` never meets a half-started server.
 */
export function healthRoutes(app: HttpServer, readiness: Readiness, started: () => boolean): void {
  const health = { auth: 'none' as const, health: true };
  app.get(
    '/healthz',
    {
      config: health,
      schema: { tags: ['health'], summary: 'Liveness: 200 whenever the process serves HTTP, 503 `starting` until it has started', security: [], response: { 200: Type.String(), 503: Type.String() } },
    },
    async (_request, reply) => {
      reply.type('text/plain; charset=utf-8');
      return started() ? reply.send('ok') : reply.code(503).header('retry-after', '1').send('starting');
    },
  );
  app.get(
    '/readyz',
    { config: health, schema: { tags: ['health'], summary: 'Readiness: 200 when work can be served, otherwise 503 with the reason', security: [], response: { 200: Type.String(), 503: Type.String() } } },
    async (_request, reply) => {
      reply.type('text/plain; charset=utf-8');
      if (!started()) return reply.code(503).header('retry-after', '1').send('starting');
      const reason = await readiness.notReadyReason();
      return reason ? reply.code(503).send(reason) : reply.send('ready');
    },
  );
}
