/**
 * The node's durability: its checkpoints, reached from the node through this
 * one object. It keeps the graph's state in a {@link Checkpointer} (the active:
 * every batch and a snapshot per epoch; a standby: what it applied), restores
 * it at start, and serves `save()`, `load()` and `checkpointed()`.
 */
import type { Clock } from '../clock.js'
import { writeDelta, writeSnapshot } from '../codec/frames.js'
import { ConfigError, NotActiveError, NotExistError } from '../errors.js'
import { Graph } from '../graph/graph.js'
import type { DeltaBody, SnapshotBody } from '../graph/wire.js'
import type { DurableLog } from '../replication/link.js'
import { Checkpointer, type CheckpointCorruptError, type CheckpointPolicy } from './checkpointer.js'
import type { CheckpointStore } from './store.js'

/** A position in the replicated history. */
export interface Position {
  epoch: number
  seq: number
}

export interface DurabilityOptions {
  policy?: CheckpointPolicy
  clock: Clock
  /** Write failures nobody awaits. */
  onError: (error: Error) => void
  /** The durable position advanced (a standby reports it to the active). */
  onDurable: (epoch: number, seq: number) => void
  /** Closes the batch being written (the page is going away: what waits is written now). */
  flush: () => void
}

export class Durability implements DurableLog {
  readonly checkpointer: Checkpointer
  /** The position of the newest `'persisted'` commit the active asked this standby to write. */
  private persistWanted: Position = { epoch: 0, seq: -1 }
  private disposed = false
  /** `pagehide`, and `visibilitychange` to hidden: the page may be gone soon, so what waits is written now. */
  private readonly pageHidden = (event: Event) => {
    if (this.disposed) return
    // Feature-detected through globalThis: the core itself needs no DOM.
    const page = (globalThis as { document?: { visibilityState?: string } }).document
    if (event.type === 'visibilitychange' && page?.visibilityState !== 'hidden') return
    this.o.flush()
    this.checkpointer.sync().catch(this.o.onError)
  }

  constructor(
    store: CheckpointStore,
    private readonly group: string,
    private readonly graph: Graph,
    private readonly o: DurabilityOptions,
  ) {
    this.checkpointer = new Checkpointer(store, group, { policy: o.policy, clock: o.clock, onError: o.onError, onDurable: o.onDurable })
    if (this.checkpointer.onPageHide && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', this.pageHidden)
      globalThis.addEventListener('visibilitychange', this.pageHidden)
    }
  }

  /** Whether a handover writes what waits under the policy. */
  get onHandover(): boolean {
    return this.checkpointer.onHandover
  }

  /** Loads the newest consistent checkpoint into the graph, as a standby would apply it; returns where it ends (seq -1: nothing). */
  async restore(): Promise<Position & { corrupt: CheckpointCorruptError[] }> {
    const { snapshot, deltas, corrupt } = await this.checkpointer.restore()
    if (!snapshot) return { epoch: 0, seq: -1, corrupt }
    this.graph.applySnapshot(snapshot.body)
    let at: Position = { epoch: snapshot.epoch, seq: snapshot.seq }
    for (const d of deltas) {
      this.graph.applyDelta(d.body)
      at = { epoch: d.epoch, seq: d.seq }
    }
    return { ...at, corrupt }
  }

  recorded(epoch: number, seq: number, frame: Uint8Array): void {
    this.checkpointer.appendDelta(epoch, seq, frame).catch(this.o.onError)
    if (this.checkpointer.shouldCompact) this.snapshot(epoch, seq)
  }

  snapshot(epoch: number, seq: number): void {
    this.checkpointer.writeSnapshot(epoch, seq, writeSnapshot(epoch, seq, this.graph.snapshot())).catch(this.o.onError)
  }

  applied(epoch: number, seq: number, body: DeltaBody | SnapshotBody, snapshot: boolean): void {
    const c = this.checkpointer
    if (snapshot) return void c.writeSnapshot(epoch, seq, writeSnapshot(epoch, seq, body as SnapshotBody)).catch(this.o.onError)
    c.appendDelta(epoch, seq, writeDelta(epoch, seq, body as DeltaBody)).catch(this.o.onError)
    if (c.shouldCompact) this.snapshot(epoch, seq)
    else if (c.pending && atOrBefore(epoch, seq, this.persistWanted)) c.sync().catch(this.o.onError)
  }

  persistRequested(epoch: number, seq: number): void {
    const c = this.checkpointer
    if (seq < 0) return
    this.persistWanted = { epoch, seq }
    if (c.pending) c.sync().catch(this.o.onError)
    // Nothing waits: report where the writes in flight end (again, if nothing moved).
    else void c.flushed().then(() => this.o.onDurable(c.durable.epoch, c.durable.seq))
  }

  sync(): Promise<void> {
    return this.checkpointer.sync()
  }

  /** Writes the graph as one snapshot at `at` (the log then starts from it), or keeps it apart under `name`. */
  async save(at: Position, name: string | undefined): Promise<Position> {
    if (at.seq < 0) throw new NotActiveError('save(): this standby holds no state yet')
    const frame = writeSnapshot(at.epoch, at.seq, this.graph.snapshot())
    await (name === undefined ? this.checkpointer.writeSnapshot(at.epoch, at.seq, frame) : this.checkpointer.saveNamed(name, at.epoch, at.seq, frame))
    return at
  }

  /**
   * Reads the newest durable checkpoint (batches still waiting under the policy
   * are dropped, never written), or the one saved as `name`, into a scratch
   * graph; `stillActive` is asked once it is read. Then each root it holds is
   * given its saved contents in place, through the proxies, so the change
   * replicates like any other.
   */
  async load(name: string | undefined, stillActive: () => void): Promise<void> {
    const c = this.checkpointer
    c.discardWaiting()
    await c.flushed()
    const scratch = new Graph(() => undefined)
    scratch.addClasses(this.graph.classes.list())
    if (name !== undefined) {
      const saved = await c.loadNamed(name)
      if (!saved) throw new NotExistError(`load(): no checkpoint is saved as "${name}" in group "${this.group}"`)
      scratch.applySnapshot(saved.body)
    } else {
      const { snapshot, deltas, corrupt } = await c.restore()
      for (const error of corrupt) this.o.onError(error)
      if (!snapshot) throw new NotExistError(`load(): group "${this.group}" has no checkpoint`)
      scratch.applySnapshot(snapshot.body)
      for (const d of deltas) scratch.applyDelta(d.body)
    }
    stillActive()
    for (const [rootName, node] of scratch.roots) {
      const live = this.graph.roots.get(rootName)
      if (live) refill(live.getProxy(), node.target, rootName)
      else this.graph.registerRoot(rootName, node.target)
    }
  }

  /** Stops: no page listeners, no policy timer. */
  dispose(): void {
    this.disposed = true
    this.checkpointer.dispose()
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this.pageHidden)
      globalThis.removeEventListener('visibilitychange', this.pageHidden)
    }
  }
}

/** A checkpoint name as `save()` and `load()` take it. */
export function checkName(method: string, name: string | undefined): string | undefined {
  if (name !== undefined && (typeof name !== 'string' || !name)) throw new ConfigError(`${method}(): "name" must be a non-empty string`)
  return name
}

/** Gives the live root `live` (a proxy) the contents of `saved` (raw), through the proxy so the change replicates. */
function refill(live: object, saved: object, rootName: string): void {
  const kind = (v: object) => (Array.isArray(v) ? 'an array' : v instanceof Map ? 'a Map' : v instanceof Set ? 'a Set' : 'an object')
  if (kind(live) !== kind(saved)) throw new ConfigError(`load(): root "${rootName}" is ${kind(saved)} in the checkpoint but ${kind(live)} here`)
  if (Array.isArray(live)) {
    const from = saved as unknown[]
    live.length = 0
    for (let i = 0; i < from.length; i += 4096) live.push(...from.slice(i, i + 4096))
  } else if (live instanceof Map) {
    live.clear()
    for (const [k, v] of saved as Map<unknown, unknown>) live.set(k, v)
  } else if (live instanceof Set) {
    live.clear()
    for (const v of saved as Set<unknown>) live.add(v)
  } else {
    const to = live as Record<string, unknown>
    const from = saved as Record<string, unknown>
    for (const k of Object.keys(to)) if (!Object.hasOwn(from, k)) delete to[k]
    for (const k of Object.keys(from)) to[k] = from[k]
  }
}

/** True when (epoch, seq) is at or before `p`. */
function atOrBefore(epoch: number, seq: number, p: Position): boolean {
  return epoch < p.epoch || (epoch === p.epoch && seq <= p.seq)
}
