/**
 * Election in a `worker_threads` worker (Node), controlled through comlink.
 *
 * The heartbeat must not depend on the main thread being free: a long task,
 * a GC pause or a blocked event loop would otherwise miss renewals and cost the
 * lease. So the Elector runs in a worker with its own timers and lease store.
 * The worker also probes the main thread every beat and stops renewing when it
 * has not answered for `mainThreadTimeoutMs` (default T): a hung process steps
 * down and the standby takes over — at most `mainThreadTimeoutMs` + T after
 * the hang — instead of a live-looking heartbeat keeping a dead node active.
 *
 * ```ts
 * const ha = await Understudy.start({
 *   group, transport,
 *   election: workerElection({ module: 'understudy-ha/adapters/file-lease', exportName: 'fileLease', args: ['/var/run/app.lease'] }),
 *   heartbeat: { intervalMs: 100, timeoutMs: 400 },
 * })
 * ```
 * Where Workers are unavailable, pass `lease` instead (the heartbeat then runs
 * on the main thread: weaker, as a busy thread delays it).
 */
import { Worker } from 'node:worker_threads'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { remoteElection, type ElectionFactory } from '../../src/index.js'
import type { LeaseSpec } from './worker.js'

export interface WorkerElectionOptions extends LeaseSpec {
  /** A main thread silent for this long is taken to be hung (default: T). */
  mainThreadTimeoutMs?: number
}

/** An `election` for `Understudy.start` that runs in a worker thread. */
export function workerElection(options: WorkerElectionOptions): ElectionFactory {
  const { module, exportName, args, mainThreadTimeoutMs } = options
  return remoteElection(
    () => {
      const worker = spawn()
      return { endpoint: nodeEndpoint(worker), terminate: () => void worker.terminate() }
    },
    { module, exportName, args },
    mainThreadTimeoutMs,
  )
}

/** Starts the worker script, from source (through tsx) when this module runs as TypeScript. */
function spawn(): Worker {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry)
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}) })`
  return new Worker(boot, { eval: true })
}
