import type { HttpServer } from '../http/server';
import type { RouteDeps } from '../routes';

/** Admin user management. */
export function userRoutes(_app: HttpServer, _deps: RouteDeps): void {}
