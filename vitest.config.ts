import { defineConfig } from 'vitest/config'
import { fileURLToPath } from 'node:url'
import { subpaths } from './subpaths.js'

const root = new URL('./', import.meta.url)

export default defineConfig({
  resolve: {
    // Tests and examples import the package by its public names, resolved to source.
    alias: subpaths(root).map((s) => ({
      find: new RegExp(`^${s.name.replace(/[/\\-]/g, '\\$&')}$`),
      replacement: fileURLToPath(new URL(s.source, root)),
    })),
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
  },
})
