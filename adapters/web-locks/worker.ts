/**
 * The worker side of `webWorkerElection`. In a module worker file:
 *
 * ```ts
 * import { serveWebLocksElection } from 'understudy-ha/adapters/web-locks/worker'
 * serveWebLocksElection()
 * ```
 * It serves the election to the page over comlink, against a Web Locks lease
 * built in the worker (IndexedDB and Web Locks work in workers). An explicit
 * call rather than an import side effect, so bundlers that honour
 * `sideEffects: false` keep it.
 */
import { serveElection } from '../../src/index.js'
import { webLocksLease } from './index.js'

/** Serves elections to the page that started this worker. */
export function serveWebLocksElection(scope: unknown = globalThis): void {
  serveElection(scope as Parameters<typeof serveElection>[0], (spec) => webLocksLease((spec as { lease: string }).lease))
}
