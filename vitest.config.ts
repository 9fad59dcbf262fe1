import { defineConfig } from 'vitest/config'
import { fileURLToPath } from 'node:url'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests and examples import the package by its public name, resolved to source.
    alias: [
      { find: /^understudy-ha\/adapters\/(.*)$/, replacement: here('adapters/$1.ts') },
      { find: /^understudy-ha$/, replacement: here('src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
  },
})
