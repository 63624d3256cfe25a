import type { Db } from './db';
import type { ServerConfig } from './config/config';
import type { Authorizer } from './rbac/service';

/** What every domain's routes get from the composition root. */
export interface RouteDeps {
  db: Db;
  authz: Authorizer;
  config: ServerConfig;
}
