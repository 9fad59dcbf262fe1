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
    // The slow tier (`npm run test:slow`, which CI also runs): long real-process soaks.
    exclude: ['test/slow/**', '**/node_modules/**'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 20_000,
  },
})
