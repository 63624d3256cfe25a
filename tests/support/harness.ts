import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig, type ServerConfig } from '../../server/config/config';
import { startCynode, type Cynode } from '../../server/app';

export type DbKind = 'pglite' | 'postgres';
/** Every integration suite runs against both. */
export const DB_KINDS: DbKind[] = ['pglite', 'postgres'];

export const ADMIN_PASSWORD = 'admin-password-1';

/** A fresh, empty database on the suite's PostgreSQL server. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = inject('pgUrl');
  const name = `cynode_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await c.end();
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface ApiOptions {
  method?: string;
  token?: string;
  body?: unknown;
  /** Sent as-is (for malformed bodies); wins over `body`. */
  rawBody?: string;
  headers?: Record<string, string>;
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async call<T = any>(path: string, opts: ApiOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined = opts.rawBody;
    if (body === undefined && opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(this.baseUrl + path, { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  async login(handle: string, password: string): Promise<{ access_token: string; refresh_token: string }> {
    const res = await this.call('/v1/auth/login', { body: { handle, password } });
    if (res.status !== 200) throw new Error(`login ${handle} failed: ${res.status} ${res.text}`);
    return res.body;
  }
}

export interface TestServer {
  kind: DbKind;
  cynode: Cynode;
  config: ServerConfig;
  api: ApiClient;
  /** Access token of `admin`. */
  adminToken: string;
  /** `admin`'s password: ADMIN_PASSWORD, or the generated one when started with `adminPassword: undefined`. */
  adminPassword: string;
  close(): Promise<void>;
  /** Creates a user through the admin API and signs them in. */
  createUser(handle: string, password?: string): Promise<{ id: string; token: string; refresh: string }>;
}

/**
 * A real `cynode serve` (in-process) on ports chosen by the OS, on the given database. With
 * `{ adminPassword: undefined }` first run generates the admin password, as without CYNODE_ADMIN_PASSWORD.
 */
export async function startTestServer(kind: DbKind, overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-test-'));
  const pgDb = kind === 'postgres' ? await createPostgresDatabase() : undefined;
  const config = loadConfig(
    {},
    {
      dataDir,
      host: '127.0.0.1',
      gatewayPort: 0,
      controlPort: 0,
      databaseUrl: pgDb?.url,
      adminPassword: ADMIN_PASSWORD,
      logLevel: 'silent',
      // Suites that need a node start one themselves (or turn this on).
      embeddedNode: false,
      ...overrides,
    },
  );
  const cynode = await startCynode(config);
  const api = new ApiClient(cynode.gatewayUrl);
  const adminPassword = cynode.firstRun.generatedPassword ?? config.adminPassword ?? ADMIN_PASSWORD;
  const admin = await api.login('admin', adminPassword);
  return {
    kind,
    cynode,
    config,
    api,
    adminToken: admin.access_token,
    adminPassword,
    async close() {
      await cynode.close();
      await pgDb?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
    async createUser(handle, password = `${handle}-password-1`) {
      const res = await api.call('/v1/users', { token: admin.access_token, body: { handle, password } });
      if (res.status !== 201) throw new Error(`create user ${handle}: ${res.status} ${res.text}`);
      const tokens = await api.login(handle, password);
      return { id: res.body.id, token: tokens.access_token, refresh: tokens.refresh_token };
    },
  };
}
