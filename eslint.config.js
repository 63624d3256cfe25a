// Lint rules, including the layering rules of DESIGN.md: who may import whom.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const noServerRuntime = {
  patterns: [{ group: ['**/server/**', '**/node-manager/**', '**/main/**'], message: 'The renderer and preload talk to the gateway over HTTP/IPC; they never import server, node-manager or main code.' }],
};

// Outside server/db, domain code reaches the database through the Db interface only.
const dbDrivers = [
  { name: 'pg', message: 'Use server/db (the Db interface).' },
  { name: '@electric-sql/pglite', message: 'Use server/db (the Db interface).' },
];
const noElectron = { group: ['**/main/**', '**/renderer/**', '**/preload/**', 'electron'], message: 'server/ runs without Electron.' };

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { 'no-restricted-imports': ['error', noServerRuntime] },
  },
  {
    files: ['preload/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', noServerRuntime] },
  },
  {
    // The Node Manager runs on other machines: besides its own code it may use only the shared
    // HTTP conventions and the vault of server/, never the orchestrator's domains or database.
    files: ['node-manager/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/main/**', '**/renderer/**', '**/preload/**', 'electron'], message: 'node-manager/ runs without Electron.' },
            // Each level is named: a negation cannot bring back a file under a directory an earlier
            // pattern excluded (gitignore semantics).
            { group: ['**/server/*', '**/server/*/**', '!**/server/http', '!**/server/http/**', '!**/server/vault', '!**/server/vault/**'], message: 'node-manager/ talks to the orchestrator over HTTP only; it may share server/http and server/vault.' },
          ],
        },
      ],
    },
  },
  {
    // Domain modules reach the database only through the db module, never a driver directly.
    files: ['server/**/*.ts'],
    ignores: ['server/db/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: dbDrivers,
          patterns: [
            noElectron,
            // The orchestrator reaches nodes over HTTP; it shares only their wire contract.
            // Each level is named: a negation cannot bring back a file whose directory a
            // pattern such as node-manager/** already excluded (gitignore semantics).
            { group: ['**/node-manager/*', '**/node-manager/*/**', '!**/node-manager/contract', '!**/node-manager/contract/**'], message: 'server/ may import only node-manager/contract (the wire contract).' },
          ],
        },
      ],
    },
  },
  {
    // The composition roots start the embedded node and the `cynode node` command: they alone
    // may wire the Node Manager in (through its agent entry point, nothing deeper).
    files: ['server/app.ts', 'server/cli.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: dbDrivers,
          patterns: [
            noElectron,
            { group: ['**/node-manager/*', '**/node-manager/*/**', '!**/node-manager/contract', '!**/node-manager/contract/**', '!**/node-manager/agent', '!**/node-manager/agent/**'], message: 'Composition roots wire the Node Manager through node-manager/agent only.' },
          ],
        },
      ],
    },
  },
  {
    // One composition root: services are built in server/app.ts and handed to whoever needs them.
    files: ['server/**/*.ts', 'node-manager/**/*.ts', 'main/**/*.ts'],
    ignores: ['server/app.ts'],
    rules: {
      'no-restricted-syntax': ['error', { selector: 'NewExpression[callee.name=/Service$/]', message: 'Services are built in server/app.ts (the composition root) and passed in.' }],
    },
  },
  {
    // Tests read JSON answers of many shapes; typing each one would only restate the assertions.
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
