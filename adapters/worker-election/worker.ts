/**
 * The worker side of `workerElection` (Node): builds the lease store from a
 * module specifier — `(await import(module))[exportName](...args)` — and
 * serves the election to the main thread.
 */
import { parentPort } from 'node:worker_threads'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { ConfigError, serveElection, type LeaseStore } from '../../src/index.js'

/** How the worker builds its lease store. */
export interface LeaseSpec {
  module: string
  exportName: string
  args: unknown[]
}

serveElection(nodeEndpoint(parentPort as NonNullable<typeof parentPort>), async (spec) => {
  const { module, exportName, args } = spec as LeaseSpec
  const make = ((await import(module)) as Record<string, (...a: unknown[]) => LeaseStore>)[exportName]
  if (typeof make !== 'function') throw new ConfigError(`workerElection: ${module} has no export ${exportName} (the lease store factory to run in the worker)`)
  return make(...args)
})
