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
import * as Comlink from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import type { ElectionFactory, ElectorEvents, ElectorLike, HeartbeatOptions } from '../../src/index.js'
import type { Host, LeaseSpec, WorkerApi } from './worker.js'

export interface WorkerElectionOptions extends LeaseSpec {
  /** A main thread silent for this long is taken to be hung (default: T). */
  mainThreadTimeoutMs?: number
}

/** An `election` for `Understudy.start` that runs in a worker thread. */
export function workerElection(options: WorkerElectionOptions): ElectionFactory {
  return (uuid, role, heartbeat, events) => new WorkerElector(options, uuid, role, heartbeat, events)
}

/** Starts the worker script, from source (through tsx) when this module runs as TypeScript. */
function spawn(): Worker {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry)
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}) })`
  return new Worker(boot, { eval: true })
}

class WorkerElector implements ElectorLike {
  private leader = false
  private readonly worker: Worker
  private readonly remote: Comlink.Remote<WorkerApi>

  constructor(
    private readonly options: WorkerElectionOptions,
    private readonly uuid: string,
    private readonly role: string,
    private readonly heartbeat: HeartbeatOptions,
    private readonly events: ElectorEvents,
  ) {
    this.worker = spawn()
    this.worker.on('error', (err) => events.error?.(err))
    this.remote = Comlink.wrap<WorkerApi>(nodeEndpoint(this.worker))
  }

  get isLeader(): boolean {
    return this.leader
  }

  start(): void {
    const host: Host = {
      elected: (epoch) => {
        this.leader = true
        this.events.elected(epoch)
      },
      demoted: (reason) => {
        this.leader = false
        this.events.demoted(reason)
      },
      error: (message) => this.events.error?.(new Error(message)),
      probe: () => {
        this.events.beat?.()
        return this.events.eligible?.() ?? true
      },
    }
    const { module, exportName, args } = this.options
    void this.remote
      .start(this.uuid, this.role, this.heartbeat, { module, exportName, args }, this.options.mainThreadTimeoutMs ?? this.heartbeat.timeoutMs, Comlink.proxy(host) as unknown as Comlink.Remote<Host>)
      .catch((err: Error) => this.events.error?.(err))
  }

  stop(reason?: string): void {
    this.leader = false
    void this.remote.stop(reason).finally(() => this.worker.terminate())
  }

  async resign(reason?: string): Promise<void> {
    this.leader = false
    try {
      await this.remote.resign(reason)
    } finally {
      await this.worker.terminate()
    }
  }

  poke(): void {
    void this.remote.poke()
  }
}
