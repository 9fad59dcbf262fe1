import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

/** One library entry per public subpath; the output mirrors the source tree so
 *  `dist/<entry>.js` sits beside the `dist/<entry>.d.ts` that tsc emits. */
const entries = {
  'src/index': 'src/index.ts',
  'adapters/memory': 'adapters/memory.ts',
}

export default defineConfig({
  build: {
    target: 'es2022',
    minify: false,
    sourcemap: true,
    emptyOutDir: true,
    lib: {
      entry: Object.fromEntries(
        Object.entries(entries).map(([name, file]) => [name, fileURLToPath(new URL(file, import.meta.url))]),
      ),
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
    rollupOptions: {
      external: [/^cbor-x/, /^idb/, /^comlink/, /^ws$/, /^node:/],
      output: { chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
})
