/**
 * The worker side of `workerElection`: runs the Elector against a lease store
 * it builds itself (from a module specifier), on this thread's own timers, and
 * probes the main thread every beat. A main thread that has not answered for
 * `mainThreadTimeoutMs` is taken to be hung: the worker stops renewing and the
 * node steps down, so a hung page or process never looks alive.
 */
import { parentPort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { Elector, realClock, type HeartbeatOptions, type LeaseStore } from '../../src/index.js'

/** How the worker builds its lease store: `(await import(module))[exportName](...args)`. */
export interface LeaseSpec {
  module: string
  exportName: string
  args: unknown[]
}

/** What the main thread offers the worker. */
export interface Host {
  elected(epoch: number): void
  demoted(reason: string): void
  error(message: string): void
  /** Answers while the main thread is responsive; returns whether the node may take the lease. */
  probe(): boolean
}

let elector: Elector | undefined

const api = {
  async start(uuid: string, role: string, heartbeat: HeartbeatOptions, lease: LeaseSpec, mainThreadTimeoutMs: number, host: Comlink.Remote<Host>): Promise<void> {
    const mod = (await import(lease.module)) as Record<string, (...a: unknown[]) => LeaseStore>
    const make = mod[lease.exportName]
    if (typeof make !== 'function') throw new Error(`workerElection: ${lease.module} has no export ${lease.exportName}`)
    const store = make(...lease.args)
    let answered = realClock.now()
    let eligible = false
    elector = new Elector(uuid, role, store, realClock, heartbeat, {
      elected: (epoch) => void host.elected(epoch),
      demoted: (reason) => void host.demoted(reason),
      error: (err) => void host.error(String(err)),
      eligible: () => eligible,
      beat: () =>
        void host.probe().then(
          (e) => {
            answered = realClock.now()
            eligible = e
          },
          () => undefined,
        ),
      alive: () => realClock.now() - answered <= mainThreadTimeoutMs,
    })
    elector.start()
  },
  stop(reason?: string): void {
    elector?.stop(reason)
  },
  async resign(reason?: string): Promise<void> {
    await elector?.resign(reason)
  },
  poke(): void {
    elector?.poke()
  },
}

export type WorkerApi = typeof api

Comlink.expose(api, nodeEndpoint(parentPort as NonNullable<typeof parentPort>))
