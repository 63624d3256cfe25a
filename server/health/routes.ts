import { Type } from '@sinclair/typebox';
import type { HttpServer } from '../http/server';

export interface Readiness {
  /** null when ready; otherwise what an operator must fix. */
  notReadyReason(): Promise<string | null>;
}

/** Liveness and readiness: the only routes without a credential besides sign-in. */
export function healthRoutes(app: HttpServer, readiness: Readiness): void {
  app.get(
    '/healthz',
    { config: { auth: 'none' }, schema: { tags: ['health'], summary: 'Liveness: 200 whenever the process serves HTTP', security: [], response: { 200: Type.String() } } },
    async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'),
  );
  app.get(
    '/readyz',
    { config: { auth: 'none' }, schema: { tags: ['health'], summary: 'Readiness: 200 when work can be served, otherwise 503 with the reason', security: [], response: { 200: Type.String(), 503: Type.String() } } },
    async (_request, reply) => {
      const reason = await readiness.notReadyReason();
      reply.type('text/plain; charset=utf-8');
      return reason ? reply.code(503).send(reason) : reply.send('ready');
    },
  );
}
