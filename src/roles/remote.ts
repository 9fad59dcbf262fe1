/**
 * Election in another thread, over comlink: the main side (`remoteElection`)
 * and the worker side (`serveElection`), for any endpoint — a Web Worker, a
 * Node worker thread. The worker runs the Elector on its own timers against a
 * lease store it builds itself, and probes the main thread every beat: when the
 * main thread has not answered for `mainThreadTimeoutMs`, the worker stops
 * renewing and the node steps down, so a hung page or process never looks alive.
 */
import * as Comlink from 'comlink'
import { localTime, realClock, sharedTime } from '../clock.js'
import { LeaseError } from '../errors.js'
import { Elector, eligibleWith, type Candidacy, type ElectionFactory, type ElectorEvents, type ElectorLike, type HeartbeatOptions } from './elector.js'
import type { LeaseRow, LeaseStore } from './lease.js'

/** What the main thread offers the worker. */
export interface Host {
  elected(epoch: number): void
  demoted(reason: string): void
  error(message: string): void
  /** A row this node wrote was stored. */
  /** `validUntil`: when writes must stop unless a later renewal is confirmed, as a time every thread of the process reads alike (ms since the epoch). */
  confirmed(row: LeaseRow, validUntil: number): void
  /** The row the worker observed changed holder or epoch: who the lease says is active (see `ElectorEvents.observed`). */
  observed(row: LeaseRow | undefined): void
  /** Answers while the main thread is responsive: this node's candidacy, and the in-sync set to store. */
  probe(): { candidacy: Candidacy; isr: string[] }
}

/** The worker side, as the main side calls it. */
export interface ElectionService {
  start(uuid: string, role: string, heartbeat: HeartbeatOptions, spec: unknown, mainThreadTimeoutMs: number, host: Host): Promise<void>
  stop(reason?: string): void
  /** Gives the lease up; `isr`, the in-sync set as it stands now, is stored with the released row. */
  resign(reason?: string, isr?: string[]): Promise<void>
  /** Beats now; `state`, the main thread's answer as of now (a handover's target is chosen), replaces the last probe's. */
  poke(state?: { candidacy: Candidacy; isr: string[] }): void
  /** See `ElectorLike.verify`: resolves to the row observed by a beat sent after the call. */
  verify(): Promise<LeaseRow | undefined>
}

/**
 * What the election talks over: a `Worker`, a worker's `self`, a
 * `MessagePort`, or comlink's Node adapter around a `worker_threads` worker.
 * Declared here, structurally, so the core's types need neither the DOM lib
 * nor comlink's.
 */
export interface MessageEndpoint {
  postMessage(message: unknown, transfer?: never[]): void
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- structural: DOM, Node and comlink listeners all fit
  addEventListener(type: string, listener: (event: any) => void, options?: object): void
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  removeEventListener(type: string, listener: (event: any) => void, options?: object): void
  start?(): void
}

/** A started worker: its message endpoint and how to end it. */
export interface ElectionWorker {
  endpoint: MessageEndpoint
  terminate(): void | Promise<void>
}

/**
 * Main side: an `election` for `Understudy.start` that runs in the worker
 * `open()` starts. `spec` (structured-cloneable) tells the worker which lease
 * store to build.
 */
export function remoteElection(open: () => ElectionWorker, spec: unknown, mainThreadTimeoutMs?: number): ElectionFactory {
  return (uuid, role, heartbeat, events) => new RemoteElector(open, spec, mainThreadTimeoutMs ?? heartbeat.timeoutMs, uuid, role, heartbeat, events)
}

/** One worker's endpoint, wrapped. */
interface Running {
  worker: ElectionWorker
  remote: Comlink.Remote<ElectionService>
}

class RemoteElector implements ElectorLike {
  private leader = false
  /** The worker of the current run: started by `start()`, ended by `stop()` or `resign()` (a later `start()` opens a new one). */
  private running: Running | undefined
  /** The row the worker last reported (holder and epoch current). */
  private seen: LeaseRow | undefined
  /** Verifies waiting for the next `start` (see `ElectorLike.verify`). */
  private parked: (() => void)[] = []

  constructor(
    private readonly open: () => ElectionWorker,
    private readonly spec: unknown,
    private readonly mainThreadTimeoutMs: number,
    private readonly uuid: string,
    private readonly role: string,
    private readonly heartbeat: HeartbeatOptions,
    private readonly events: ElectorEvents,
  ) {}

  get isLeader(): boolean {
    return this.leader
  }

  get row(): LeaseRow | undefined {
    return this.seen
  }

  start(): void {
    if (this.running) return
    const worker = this.open()
    const run: Running = { worker, remote: Comlink.wrap<ElectionService>(worker.endpoint as Comlink.Endpoint) }
    this.running = run
    // A host answers only while its run is current: a late call from an ended worker changes nothing.
    const current = () => this.running === run
    const host: Host = {
      elected: (epoch) => {
        if (!current()) return
        this.leader = true
        this.events.elected(epoch)
      },
      demoted: (reason) => {
        if (!current()) return
        this.leader = false
        this.events.demoted(reason)
      },
      error: (message) => this.events.error?.(new LeaseError(`election worker: ${message}`)),
      // The worker's deadline (its renewal's send time + T − I), carried across threads as a time both read alike:
      // a confirmation read late, after this thread was busy, never opens writes past it.
      confirmed: (row, validUntil) => {
        if (!current()) return
        this.seen = row
        this.events.confirmed?.(row, localTime(validUntil))
      },
      observed: (row) => {
        if (!current()) return
        this.seen = row
        this.events.observed?.(row)
      },
      probe: () => {
        this.events.beat?.()
        return this.state()
      },
    }
    void run.remote
      .start(this.uuid, this.role, this.heartbeat, this.spec, this.mainThreadTimeoutMs, Comlink.proxy(host) as unknown as Host)
      .catch((err: Error) => this.events.error?.(err))
    for (const go of this.parked.splice(0)) go()
  }

  /**
   * Stops the run. A leader is demoted here and now, as the in-thread
   * Elector's `stop()` does: the worker's own "demoted" arrives after the run
   * has ended, and is ignored then.
   */
  stop(reason = 'stopped'): void {
    const run = this.end(reason)
    if (run) void run.remote.stop(reason).finally(() => run.worker.terminate())
  }

  /** Gives the lease up and ends the worker; a leader is demoted at once (see {@link stop}). */
  async resign(reason = 'resigned'): Promise<void> {
    // The set as it stands now (the worker only knows it as of its last probe, a beat ago): the standbys
    // that hold every acknowledged write may take over at once, and nobody else (this node included).
    const isr = this.leader ? (this.events.isr?.() ?? []) : undefined
    const run = this.end(reason)
    if (!run) return
    try {
      await run.remote.resign(reason, isr)
    } finally {
      await run.worker.terminate()
    }
  }

  /** Ends the current run; tells the node it is no longer the leader if it was. */
  private end(reason: string): Running | undefined {
    const run = this.running
    this.running = undefined
    if (this.leader) {
      this.leader = false
      this.events.demoted(reason)
    }
    return run
  }

  /** Beats now, with this node's candidacy as of now: the last probe's (up to a beat old) may predate what made it poke (a handover chose it). */
  poke(): void {
    void this.running?.remote.poke(this.state())
  }

  /** What a probe answers: this node's candidacy, and the in-sync set to store. */
  private state(): { candidacy: Candidacy; isr: string[] } {
    return { candidacy: this.events.candidacy?.() ?? { ready: true, ahead: [] }, isr: this.events.isr?.() ?? [] }
  }

  /**
   * The worker's `verify`. Its `observed` report, if the row changed, comes
   * first (on another channel: whichever lands first sets the row); a worker
   * still booting answers once it serves; while stopped, it waits for the
   * next `start`.
   */
  async verify(): Promise<LeaseRow | undefined> {
    if (!this.running) await new Promise<void>((go) => this.parked.push(go))
    const run = this.running as Running
    try {
      const row = await run.remote.verify()
      if (this.running === run && row) this.seen = row
    } catch (error) {
      this.events.error?.(error as Error)
    }
    return this.seen
  }
}

/** Worker side: serves elections on `endpoint`, building each lease store from its spec. */
export function serveElection(endpoint: MessageEndpoint, makeStore: (spec: unknown) => LeaseStore | Promise<LeaseStore>): void {
  let elector: Elector | undefined
  /** The in-sync set the holder stores: the main thread's answer to the last probe, or what it said at a resign. */
  let isr: string[] = []
  /** This node's candidacy: the main thread's answer to the last probe, or what it said with a poke. */
  let candidacy: Candidacy = { ready: false, ahead: [] }
  /** Resolved once `start` has built the store and started the elector: a `verify` waits for it. */
  let serving!: () => void
  const started = new Promise<void>((resolve) => (serving = resolve))
  const service: ElectionService = {
    async start(uuid, role, heartbeat, spec, mainThreadTimeoutMs, host) {
      let store: LeaseStore
      try {
        store = await makeStore(spec)
      } catch (error) {
        serving()
        throw error
      }
      const remote = host as unknown as Comlink.Remote<Host>
      let answered = realClock.now()
      candidacy = { ready: false, ahead: [] }
      isr = []
      elector = new Elector(uuid, role, store, realClock, heartbeat, {
        elected: (epoch) => void remote.elected(epoch),
        demoted: (reason) => void remote.demoted(reason),
        error: (err) => void remote.error(String(err)),
        confirmed: (row, validUntil) => void remote.confirmed(row, sharedTime(validUntil)),
        observed: (row) => void remote.observed(row),
        eligible: (row, now, timeoutMs) => eligibleWith(candidacy, row, now, timeoutMs),
        isr: () => isr,
        beat: () =>
          void remote.probe().then(
            (answer) => {
              answered = realClock.now()
              candidacy = answer.candidacy
              isr = answer.isr
            },
            () => undefined,
          ),
        alive: () => realClock.now() - answered <= mainThreadTimeoutMs,
      })
      elector.start()
      serving()
    },
    stop: (reason) => elector?.stop(reason),
    resign: async (reason, now) => {
      if (now) isr = now
      await elector?.resign(reason)
    },
    poke: (state) => {
      if (state) {
        candidacy = state.candidacy
        isr = state.isr
      }
      elector?.poke()
    },
    verify: async () => {
      await started
      return elector?.verify()
    },
  }
  Comlink.expose(service, endpoint as Comlink.Endpoint)
}
