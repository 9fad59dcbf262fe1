/** `npm run test:slow`: the slow tier — long soaks with real processes (CI runs it after `npm test`). */
import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

export default defineConfig({ ...base, test: { ...base.test, include: ['test/slow/**/*.test.ts'], exclude: ['**/node_modules/**'] } })
