// Lint rules, including the layering rules of DESIGN.md: who may import whom.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const noServerRuntime = {
  patterns: [{ group: ['**/server/**', '**/node-manager/**', '**/main/**'], message: 'The renderer and preload talk to the gateway over HTTP/IPC; they never import server, node-manager or main code.' }],
};

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
    // The server never reaches into the desktop shell or the console.
    files: ['server/**/*.ts', 'node-manager/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/main/**', '**/renderer/**', '**/preload/**', 'electron'], message: 'server/ and node-manager/ run without Electron.' }] }],
    },
  },
  {
    // Domain modules reach the database only through the db module, never a driver directly.
    files: ['server/**/*.ts'],
    ignores: ['server/db/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'pg', message: 'Use server/db (the Db interface).' }, { name: '@electric-sql/pglite', message: 'Use server/db (the Db interface).' }], patterns: [{ group: ['**/main/**', '**/renderer/**', '**/preload/**', 'electron'], message: 'server/ runs without Electron.' }] }],
    },
  },
  {
    // Tests read JSON answers of many shapes; typing each one would only restate the assertions.
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
