import type { HttpServer } from '../http/server';
import type { RouteDeps } from '../routes';

/** Roles and role bindings. */
export function rbacRoutes(_app: HttpServer, _deps: RouteDeps): void {}
