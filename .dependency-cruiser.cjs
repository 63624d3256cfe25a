// Who may import whom, checked by `npm run lint:deps` (part of `npm run lint`, so of `npm test`).
// The layering itself is described in docs/architecture.md; in short, inside server/ each domain
// folder owns routes → service → store → db, and a domain reads another domain's data through that
// domain's service (injected by the composition root) or a narrow published module, never its store.
//
// Only runtime imports count: `tsPreCompilationDeps: false` below drops `import type`, which
// vanishes at compile time and so can neither form a cycle at load time nor reach a database.
// Row types (e.g. ProjectRow) may still be shared that way.

/** A domain folder: server/<domain> or node-manager/<part> (folder names have no trailing slash). */
const DOMAIN_FOLDER = '^(server|node-manager)/[^/]+$';
/** Any domain's store. */
const STORE = '^server/[^/]+/store\\.ts$';
/** Route files: routes.ts, or <audience>-routes.ts where one domain serves two audiences. */
const ROUTES = '^server/[^/]+/[^/]*routes\\.ts$';

module.exports = {
  forbidden: [
    {
      name: 'no-domain-cycle',
      comment:
        'Domain folders form no cycle: a cycle means two domains can only change (and load) together. ' +
        'Break it by moving the shared piece into the domain that owns the data and injecting its service.',
      severity: 'error',
      scope: 'folder',
      from: { path: DOMAIN_FOLDER },
      to: { circular: true },
    },
    {
      name: 'no-module-cycle',
      comment: 'No import cycle between modules either: load order would decide which side sees undefined.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'routes-no-store',
      comment:
        'Route files hold HTTP only: schema, parse, one call to their own service, shape the answer. ' +
        'Reading or writing data (and every transaction) belongs in the service.',
      severity: 'error',
      from: { path: ROUTES },
      to: { path: STORE },
    },
    {
      name: 'routes-no-db',
      comment: 'Route files never reach the database: route → service → store → db.',
      severity: 'error',
      from: {
        path: ROUTES,
        // The console's about page names the configured database (describeDbTarget formats a
        // setting; it opens nothing).
        pathNot: '^server/console/routes\\.ts$',
      },
      to: { path: '^server/db/' },
    },
    {
      name: 'no-foreign-store',
      comment:
        "A domain never imports another domain's store: it asks that domain's service or a narrow " +
        'published module (e.g. runs/status.ts, audit/record.ts, rbac/visibility.ts).',
      severity: 'error',
      // Files directly under server/ are in no domain: the composition root (app.ts builds every
      // service from its store), the CLI and the shared RouteDeps type. They may see every store.
      from: { path: '^server/([^/]+)/' },
      to: { path: STORE, pathNot: '^server/$1/' },
    },
    {
      name: 'node-manager-only-shared-server',
      comment:
        'The Node Manager runs on other machines and talks to the orchestrator over HTTP: of server/ it may ' +
        'share only the HTTP conventions and the vault (mirrors eslint.config.js).',
      severity: 'error',
      from: { path: '^node-manager/' },
      to: { path: '^server/', pathNot: '^server/(http|vault)/' },
    },
    {
      name: 'server-only-node-contract',
      comment:
        'The orchestrator reaches nodes over HTTP and shares only their wire contract; the composition roots ' +
        '(server/app.ts, server/cli.ts) may also start the embedded node through node-manager/agent (mirrors eslint.config.js).',
      severity: 'error',
      from: { path: '^server/', pathNot: '^server/(app|cli)\\.ts$' },
      to: { path: '^node-manager/', pathNot: '^node-manager/contract/' },
    },
    {
      name: 'composition-root-node-entry',
      comment: 'The composition roots wire the Node Manager in through its agent entry point, nothing deeper.',
      severity: 'error',
      from: { path: '^server/(app|cli)\\.ts$' },
      to: { path: '^node-manager/', pathNot: '^node-manager/(contract|agent)/' },
    },
    {
      name: 'executor-private-keys-only-in-executor',
      comment:
        "Only the connector executor process opens its private keys (and with them connector credentials): the module that " +
        'does is imported from the executor folder alone (docs/decisions/0004-vault-format.md).',
      severity: 'error',
      from: { pathNot: '^server/connectors/executor/' },
      to: { path: '^server/connectors/executor/private-keys\\.ts$' },
    },
    {
      name: 'gateway-never-reaches-executor-private-keys',
      comment:
        'No path of imports leads from the gateway (the composition roots, the Electron main, the executor client) to the ' +
        "executor's private-key module: the gateway seals with the public key and never holds the means to decrypt.",
      severity: 'error',
      from: { path: ['^server/(app|cli)\\.ts$', '^main/index\\.ts$', '^server/connectors/executor/(client|seal|key-store|protocol)\\.ts$'] },
      to: { path: '^server/connectors/executor/private-keys\\.ts$', reachable: true },
    },
    {
      name: 'executor-through-its-client',
      comment:
        'Outside the executor folder, code reaches the connector executor through its client (client.ts) only; ' +
        'the process entry, its runner and its key handling load only in the executor process.',
      severity: 'error',
      from: { pathNot: '^server/connectors/executor/' },
      to: { path: '^server/connectors/executor/', pathNot: '^server/connectors/executor/client\\.ts$' },
    },
    {
      name: 'server-no-electron',
      comment: 'server/ and node-manager/ run without Electron (headless `cynode serve` / `cynode node`).',
      severity: 'error',
      from: { path: '^(server|node-manager)/' },
      to: { path: ['^(main|renderer|preload)/', '^electron$', 'node_modules/electron/'] },
    },
    {
      name: 'console-over-http-only',
      comment: 'The renderer and preload talk to the gateway over HTTP/IPC; they never import server, node-manager or main code.',
      severity: 'error',
      from: { path: '^(renderer|preload)/' },
      to: { path: '^(server|node-manager|main)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^out/', '^node_modules/'] },
    // See the top of this file: type-only imports are not runtime dependencies.
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.mjs', '.js', '.cjs', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};

