import type { HttpServer } from '../http/server';
import type { RouteDeps } from '../routes';

/** Groups and memberships. */
export function groupRoutes(_app: HttpServer, _deps: RouteDeps): void {}
