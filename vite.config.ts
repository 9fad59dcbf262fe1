import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'
import { subpaths } from './subpaths.js'

const root = new URL('./', import.meta.url)
/** Built but not exported: files an adapter loads itself (a worker script), and the `understudy` command. */
const internal = ['adapters/worker-election/worker', 'bin/understudy']

/** One library entry per public subpath; the output mirrors the source tree so
 *  `dist/<entry>.js` sits beside the `dist/<entry>.d.ts` that tsc emits. */
export default defineConfig({
  build: {
    target: 'es2022',
    minify: false,
    // No source maps: the output is unminified, readable ESM that mirrors the sources file by file, and maps would point at
    // sources the package does not ship.
    sourcemap: false,
    emptyOutDir: true,
    lib: {
      entry: Object.fromEntries([
        ...subpaths(root).map((s) => [s.entry, fileURLToPath(new URL(s.source, root))]),
        ...internal.map((e) => [e, fileURLToPath(new URL(`${e}.ts`, root))]),
      ]),
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
    rollupOptions: {
      external: [/^idb/, /^comlink/, /^ws$/, /^node:/, /^vitest/],
      output: {
        chunkFileNames: 'chunks/[name]-[hash].js',
        banner: (chunk) => (chunk.name === 'bin/understudy' ? '#!/usr/bin/env node' : ''),
      },
    },
  },
})
