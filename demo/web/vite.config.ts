/**
 * `npm run demo:web`: the two-tab demo, served by Vite on 127.0.0.1. The
 * package is resolved to its sources, so no build is needed first.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { subpaths } from '../../subpaths.js'

const ROOT = new URL('../../', import.meta.url)
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

export default defineConfig({
  root: here('./'),
  resolve: {
    alias: subpaths(ROOT).map((s) => ({ find: new RegExp(`^${s.name.replace(/[/\\-]/g, '\\$&')}$`), replacement: fileURLToPath(new URL(s.source, ROOT)) })),
  },
  // strictPort: when 5174 is taken, say so and stop, rather than quietly serving on another port than the README names.
  server: { host: '127.0.0.1', port: 5174, strictPort: true },
  preview: { host: '127.0.0.1', port: 5174, strictPort: true },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    emptyOutDir: true,
    rollupOptions: { input: { index: here('./index.html'), pane: here('./pane.html') } },
  },
})
