import type { HttpServer } from '../http/server';
import type { RouteDeps } from '../routes';

/** Projects. */
export function projectRoutes(_app: HttpServer, _deps: RouteDeps): void {}
