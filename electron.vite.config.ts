import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import type { Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * The PGlite database thread is a plain JavaScript file that server/db/pglite.ts starts by its
 * URL next to itself: copied beside whichever chunk that module ends up in.
 */
function pgliteWorker(): Plugin {
  const source = resolve(__dirname, 'server/db/pglite-worker.mjs');
  return {
    name: 'cynode-pglite-worker',
    generateBundle(_options, bundle) {
      const owner = Object.values(bundle).find((c) => c.type === 'chunk' && Object.keys(c.modules).some((id) => id.endsWith('/server/db/pglite.ts')));
      if (!owner) this.error('server/db/pglite.ts is in no chunk: where does its database thread go?');
      const dir = dirname(owner.fileName);
      this.emitFile({ type: 'asset', fileName: dir === '.' ? 'pglite-worker.mjs' : `${dir}/pglite-worker.mjs`, source: readFileSync(source) });
    },
  };
}

// One build for every runtime: the Electron main process and the headless CLI (`cynode`) share
// the Node bundle; preload and renderer are built for the window (and the renderer is also what
// the gateway serves to LAN browsers).
export default defineConfig({
  main: {
    plugins: [pgliteWorker()],
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'main/index.ts'),
          cli: resolve(__dirname, 'server/cli.ts'),
          // The connector executor runs as a process of its own (server/connectors/executor/client.ts forks it).
          'connector-executor': resolve(__dirname, 'server/connectors/executor/main.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { index: resolve(__dirname, 'preload/index.ts') },
        // A sandboxed preload must be CommonJS.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'renderer'),
    plugins: [react()],
    build: {
      outDir: resolve(__dirname, 'out/renderer'),
      // The console is also served to LAN browsers: ship it minified (electron-vite does not by default).
      minify: true,
      rollupOptions: { input: resolve(__dirname, 'renderer/index.html') },
    },
  },
});
