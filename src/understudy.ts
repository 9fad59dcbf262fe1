import { realClock, type Clock } from './clock.js'
import { readFrame, writeAck, writeDelta, writeHandover, writeHello, writePersisted, writeResync, writeSnapshot, DEFAULT_LIMITS, type CodecLimits, type Frame, type RoleName } from './codec/frames.js'
import { ClosedError, ConfigError, NotActiveError, NotExistError, ProtocolError, StaleEpochError, UnderstudyError } from './errors.js'
import { Emitter } from './events.js'
import { Graph } from './graph/graph.js'
import type { ClassList } from './graph/kinds.js'
import { Kind, type DeltaBody, type SnapshotBody } from './graph/wire.js'
import { CborWriter } from './codec/writer.js'
import { Mirror } from './replication/mirror.js'
import { Elector, checkHeartbeat, eligibleWith, type Candidacy, type ElectionFactory, type ElectorEvents, type ElectorLike, type HeartbeatOptions } from './roles/elector.js'
import { incarnationId, type LeaseStore } from './roles/lease.js'
import { defaultRandom, type Random } from './random.js'
import { Checkpointer, checkPolicy, type CheckpointCorruptError, type CheckpointPolicy } from './checkpoints/checkpointer.js'
import type { CheckpointStore } from './checkpoints/store.js'
import { SectionCheckpoint, checkAttributes, type SectionAttributes } from './checkpoints/sections.js'
import { DEFAULT_LOG, Primary, type LogLimits } from './replication/primary.js'
import { newProgress, runSequence, type Sequence, type SequenceProgress, type SequenceResult } from './sequences/index.js'
import type { PeerId, Transport, TransportHandler } from './transport.js'

/** A node's role. Only the `active` accepts writes. */
export type Role = RoleName

/**
 * When `commit()` resolves:
 * - `'sync'` (default): once every connected standby has applied the batch
 *   (with none connected, it waits for one to join and catch up);
 * - `'async'`: once the batch is handed to the transport;
 * - `'persisted'`: as `'sync'`, and the batch is durable in the checkpoints of
 *   every standby that keeps them, and of this node if it does.
 */
export type CommitMode = 'sync' | 'async' | 'persisted'

export interface UnderstudyOptions {
  /** Name of the replication group; nodes of other groups on the same transport are ignored. */
  group: string
  /** How frames reach the other nodes (see `understudy-ha/adapters/*`). */
  transport: Transport
  /**
   * The role to start in, when there is no `lease`: `'active'` or `'standby'`
   * (default). With a `lease`, leave it out: nodes elect the active themselves.
   */
  role?: 'active' | 'standby'
  /**
   * The heartbeat table that elects the active (see `LeaseStore`). Every node
   * of the group must use the same store. The lease's epoch is the fencing token.
   */
  lease?: LeaseStore
  /**
   * Election run elsewhere — in a worker, so background-tab timer throttling
   * or a busy main thread cannot starve the heartbeat (see
   * `understudy-ha/adapters/worker-election`). Use instead of `lease`.
   */
  election?: ElectionFactory
  /** Election timing: heartbeat interval I and timeout T, with T > 2·I (default 100 / 400 ms). */
  heartbeat?: Partial<HeartbeatOptions>
  /**
   * Durable checkpoints: the active — and a standby, of what it applied —
   * keeps a snapshot plus a log of deltas here, and a starting node restores
   * the newest consistent state from it before any `register` (so `initial`
   * is used only when nothing is stored).
   */
  checkpoints?: CheckpointStore
  /**
   * When batches reach `checkpoints` (default: each as it is made). Batches
   * waiting under the policy are lost only if every node stops at once;
   * `'persisted'` commits, `save()`, `checkpointed()` and `close()` write them
   * at once.
   */
  checkpointPolicy?: CheckpointPolicy
  /** Epoch of an explicitly started active (default 1). */
  epoch?: number
  /** Default commit mode (default `'sync'`). */
  commitMode?: CommitMode
  /** Rejects a sync commit with `CommitTimeoutError` after this many ms. Default: wait indefinitely. */
  commitTimeoutMs?: number
  /** Classes whose instances replicate with their prototype (same names on every node). */
  classes?: ClassList
  /** Time source (default: the real clock). Tests pass a `VirtualClock`. */
  clock?: Clock
  /** This node's id in HELLO frames (default: the transport's peer id). Keep it stable across restarts: once no member of the in-sync set has come back, a restart of a node it names may take over. */
  nodeId?: string
  /** Source of this run's incarnation id (default `Math.random`); simulations pass a seeded one. */
  random?: Random
  /** Largest frame accepted from a peer (default 256 MiB). */
  maxFrameBytes?: number
  /** How often an unanswered resync request is repeated, in ms (default 1000). */
  resyncRetryMs?: number
  /** History the active keeps for catching standbys up without a snapshot. */
  log?: Partial<LogLimits>
}

export interface UnderstudyEvents {
  /** The role or epoch changed. */
  role: { role: Role; epoch: number }
  /** A root arrived from the active (standby). */
  root: { name: string }
  /** A frame from the active was applied (standby); `snapshot` is true for a full resync. */
  change: { epoch: number; seq: number; snapshot: boolean }
  /** A peer of this group appeared or went away. */
  peer: { peer: PeerId; up: boolean; role?: Role }
  /** The election heartbeat ran (every I, with a `lease` or an `election`), in this role. */
  heartbeat: { role: Role; epoch: number }
  /** A problem that did not stop the node: a bad frame, a stale epoch, an unsupported value smuggled past a proxy… */
  error: { error: Error; from?: PeerId }
}

/** A tracked object that no registered root reaches any more: it replicates, and takes memory on every node, until collected. */
export interface Leak {
  /** Its id in the replication table (the same on every node). */
  id: number
  /**
   * Where it was last reachable from, e.g. `(detached, was app.todos[3])`: the
   * holder and key that dropped it (or an object that was dropped, and the
   * path inside it). A standby records the drops it applies, so it reports
   * the same paths (an object moved and dropped within one batch may show
   * where it was before the move).
   */
  path: string
  /** `object`, `array`, `Map`, `Set`, `Date`, a typed array's or a class's name… */
  kind: string
  /** Its own encoded size, bytes (its fields; the objects it refers to are counted on their own). */
  bytes: number
}

/** What a planned handover did. */
export interface HandoverResult {
  /** The peer that is active now. */
  to: PeerId
  /** Its epoch. */
  epoch: number
  /** The last seq this node committed; the new active holds it. */
  seq: number
  /**
   * From the moment this node stopped accepting writes to the moment it heard
   * the new active: the write blackout, plus one network hop (an upper bound).
   */
  blackoutMs: number
}

/** Where a commit landed. */
export interface CommitResult {
  epoch: number
  seq: number
}

/** Figures for dashboards and tests. */
export interface Stats {
  role: Role
  epoch: number
  /** Last seq produced (active) or applied (standby). */
  seq: number
  /** Objects in the replication table. */
  objects: number
  roots: string[]
  /** Standbys replicating from this node (active). */
  standbys: number
  /** Lowest seq every standby acknowledged (active; -1 when none). */
  acked: number
  /** Full snapshots this node has applied (standby): the first sync plus every resync. */
  snapshots: number
  /**
   * The loss window (active): batches not yet acknowledged by every standby —
   * what an async-mode user would lose if this node died now. 0 when all are safe.
   */
  unackedSeq: number
}

interface Member {
  role: Role
  epoch: number
  seq: number
  /** The node id it announced. */
  node: string
  /** The run of that node it announced (in-sync sets name runs: a restarted node holds only what it restored). */
  incarnation: string
}

/**
 * One node of a replication group. Start it, register object graphs, mutate
 * them on the active; every change is replicated as a delta to the standbys.
 *
 * @example
 * const ha = await Understudy.start({ group: 'app', transport, role: 'active' })
 * const state = ha.register('app', { todos: [] as string[] })
 * state.todos.push('write tests')
 * await ha.commit()
 */
export class Understudy extends Emitter<UnderstudyEvents> {
  private readonly graph: Graph
  private readonly transport: Transport
  private readonly clock: Clock
  private readonly limits: CodecLimits
  private readonly logLimits: LogLimits
  private readonly members = new Map<PeerId, Member>()
  private primary: Primary | undefined
  private mirror: Mirror | undefined
  private activePeer: PeerId | undefined
  private currentRole: Role = 'standby'
  private highestEpoch = 0
  private snapshotsApplied = 0
  private flushScheduled = false
  private lastSend: void | Promise<void> = undefined
  private retransmitTimer: unknown = undefined
  private elector: ElectorLike | undefined
  private readonly checkpointer: Checkpointer | undefined
  private persistWanted = { epoch: 0, seq: -1 }
  /** `pagehide`, and `visibilitychange` to hidden: the page may be gone soon, so what waits is written now. */
  private readonly pageHidden = (event: Event) => {
    if (!this.checkpointer || this.closed) return
    // Feature-detected through globalThis: the core itself needs no DOM.
    const page = (globalThis as { document?: { visibilityState?: string } }).document
    if (event.type === 'visibilitychange' && page?.visibilityState !== 'hidden') return
    this.flush()
    this.checkpointer.sync().catch((error: Error) => this.emit('error', { error }))
  }
  /** What the start-up restore found (with `checkpoints`): the seq reached, and records skipped as corrupt. */
  restored: { epoch: number; seq: number; corrupt: CheckpointCorruptError[] } | undefined
  /** Set while this node hands over: resolved when the new active is heard. */
  private handingOver: { epoch: number; resolve: (epoch: number) => void } | undefined
  /** Set on the standby chosen by a handover: it takes the lease even if a tie would favour another. */
  private chosen = false
  private closed = false

  /** This node's id, as its peers see it. */
  readonly nodeId: string
  /**
   * This run of the node: `<nodeId>@<random>`, fresh at every start. The
   * lease is held by the incarnation, so a node restarted from its disk can
   * never renew its previous life's lease at the same epoch.
   */
  readonly incarnation: string
  /** The in-sync set of the last lease row this node stored. */
  private leaseIsr: string[] = []
  private readonly startedAt: number
  private readonly beatMs: number
  private readonly timeoutMs: number
  readonly group: string
  private readonly commitMode: CommitMode
  private readonly commitTimeoutMs: number | undefined
  private readonly resyncRetryMs: number

  private constructor(o: UnderstudyOptions) {
    super()
    this.group = o.group
    this.transport = o.transport
    this.clock = o.clock ?? realClock
    this.nodeId = o.nodeId ?? o.transport.id
    this.incarnation = incarnationId(this.nodeId, o.random ?? defaultRandom)
    this.startedAt = this.clock.now()
    this.commitMode = o.commitMode ?? 'sync'
    this.commitTimeoutMs = o.commitTimeoutMs
    this.resyncRetryMs = o.resyncRetryMs ?? 1000
    this.limits = { ...DEFAULT_LIMITS, ...(o.maxFrameBytes ? { maxFrameBytes: o.maxFrameBytes } : {}) }
    this.logLimits = { ...DEFAULT_LOG, ...o.log }
    this.graph = new Graph(() => this.scheduleFlush())
    this.graph.addClasses(o.classes)
    this.checkpointer = o.checkpoints
      ? new Checkpointer(o.checkpoints, o.group, {
          policy: o.checkpointPolicy,
          clock: this.clock,
          onError: (error) => this.emit('error', { error }),
          onDurable: (epoch, seq) => this.persistedAck(epoch, seq),
        })
      : undefined
    if (this.checkpointer?.onPageHide && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', this.pageHidden)
      globalThis.addEventListener('visibilitychange', this.pageHidden)
    }
    this.becomeStandby('this node is a standby', false)
    const events: ElectorEvents = {
      elected: (epoch) => this.onElected(epoch),
      demoted: (reason) => this.onDemoted(reason),
      eligible: (row, now, timeoutMs) => eligibleWith(this.candidacy(), row, now, timeoutMs),
      candidacy: () => this.candidacy(),
      // Standbys tell their peers how far they got, so the most up-to-date one wins the next election.
      beat: () => {
        if (this.closed) return
        if (this.mirror) this.broadcastHello()
        this.emit('heartbeat', { role: this.currentRole, epoch: this.epoch })
      },
      error: (error) => this.emit('error', { error }),
      isr: () => this.primary?.inSync() ?? [],
      confirmed: (row) => {
        this.leaseIsr = row.isr ?? []
        this.primary?.commitIsr(this.leaseIsr)
      },
    }
    const heartbeat = { ...DEFAULT_HEARTBEAT, ...o.heartbeat }
    this.beatMs = heartbeat.intervalMs
    this.timeoutMs = heartbeat.timeoutMs
    if (o.lease) this.elector = new Elector(this.incarnation, this.group, o.lease, this.clock, heartbeat, events)
    else if (o.election) this.elector = o.election(this.incarnation, this.group, heartbeat, events)
  }

  /**
   * Creates a node and opens its transport.
   * @throws {ConfigError} on invalid options.
   */
  static async start(options: UnderstudyOptions): Promise<Understudy> {
    validate(options)
    const ha = new Understudy(options)
    await ha.restore()
    if (options.role === 'active') {
      const m = ha.mirror as Mirror
      ha.becomeActive(Math.max(options.epoch ?? 1, m.synced ? m.epoch + 1 : 1), m.synced ? m.seq : 0, false)
    }
    await options.transport.open(ha.handler)
    ha.broadcastHello()
    ha.elector?.start()
    return ha
  }

  /** The current role. */
  get role(): Role {
    return this.currentRole
  }

  /** The current epoch: the active's fencing token. */
  get epoch(): number {
    return this.primary?.epoch ?? this.highestEpoch
  }

  /**
   * Registers an object graph under `name` and returns its tracked proxy.
   *
   * `initial` is used only when no peer already holds this root: on the
   * active it becomes the root (and is sent to the standbys); on a standby it
   * is a placeholder that the active's copy replaces, in place, when it
   * arrives. Keep using the returned proxy: writes to `initial` itself are not seen.
   *
   * @throws {UnsupportedValueError} when `initial` holds a value that cannot replicate.
   * @throws {ConfigError} when `initial` is not an object, or a class name is bound twice.
   */
  register<T extends object>(name: string, initial: T, options: { classes?: ClassList } = {}): T {
    if (this.closed) throw new ClosedError(`register("${name}")`)
    if (typeof name !== 'string' || !name) throw new ConfigError('register: a root needs a non-empty string name')
    this.graph.addClasses(options.classes)
    return this.graph.registerRoot(name, initial) as T
  }

  /**
   * A SAF-style checkpoint of named sections, replicated and persisted with the
   * graph (it lives in a reserved root). Open it on every node with the same
   * attributes; only the active writes.
   * @throws {InvalidParamError} on bad attributes.
   */
  checkpoint(name: string, attributes: SectionAttributes): SectionCheckpoint {
    const attrs = checkAttributes(name, attributes)
    const root = this.register(`understudy:checkpoint:${name}`, { sections: new Map<string, { data: Uint8Array; writtenAt: number }>() })
    const commit = async (mode: CommitMode | 'local') => {
      if (mode !== 'local') return this.commit({ mode })
      const at = await this.commit({ mode: 'async' })
      await this.checkpointer?.sync()
      return at
    }
    return new SectionCheckpoint(name, attrs, root, this.clock, commit, () => this.primary?.standbys ?? 0)
  }

  /**
   * Runs — or resumes — the step sequence `id`, its progress kept in the
   * replicated graph (a reserved root) and committed at every change of step
   * and every `checkpoint(marker)`. If the active dies mid-sequence, call this
   * again with the same `id` on the new active: it resumes at the interrupted
   * step, rolling it back first when it has a rollback function. A finished
   * sequence is returned as it ended (`forgetSequence(id)` clears it).
   * @throws {NotActiveError} on a standby, or when this node is deposed mid-run.
   */
  runSequence<C>(id: string, seq: Sequence<C>, context: C, options: { startStep?: string; mode?: CommitMode } = {}): Promise<SequenceResult> {
    if (this.closed) throw new ClosedError('runSequence')
    if (!this.primary) throw new NotActiveError(`runSequence("${id}"): ${this.graph.readOnlyReason}. Only the active runs sequences.`)
    const runs = this.sequenceRuns()
    if (!runs.has(id)) runs.set(id, newProgress(seq.name))
    return runSequence(seq, context, options.startStep, { progress: runs.get(id) as SequenceProgress, commit: () => this.commit({ mode: options.mode ?? this.commitMode }) })
  }

  /** The sequences this node knows of (replicated from the active), by id. */
  sequences(): Map<string, SequenceProgress> {
    return new Map(this.sequenceRuns())
  }

  /** Drops the progress of sequence `id` (active only). */
  forgetSequence(id: string): void {
    this.sequenceRuns().delete(id)
  }

  private sequenceRuns(): Map<string, SequenceProgress> {
    return this.register('understudy:sequences', { runs: new Map<string, SequenceProgress>() }).runs
  }

  /** The proxy of root `name`, if this node has it (registered here or received from the active). */
  root<T extends object = Record<string, unknown>>(name: string): T | undefined {
    return (this.graph.roots.get(name) ?? this.graph.pending.get(name))?.getProxy() as T | undefined
  }

  /** Names of the roots this node holds. */
  get roots(): string[] {
    return [...this.graph.roots.keys()]
  }

  /**
   * Closes the current batch now and resolves when it is safe per the commit
   * mode (see {@link CommitMode}).
   * @throws {NotActiveError} on a standby, or when this node is deposed before the standbys acknowledge.
   * @throws {CommitTimeoutError} when `commitTimeoutMs` passes first (the change is kept).
   */
  async commit(options: { mode?: CommitMode; timeoutMs?: number } = {}): Promise<CommitResult> {
    if (this.closed) throw new ClosedError('commit')
    const primary = this.primary
    if (!primary) throw new NotActiveError(`commit: ${this.graph.readOnlyReason}. Only the active commits.`)
    this.flush()
    const seq = primary.seq
    const mode = options.mode ?? this.commitMode
    const timeoutMs = options.timeoutMs ?? this.commitTimeoutMs
    if (mode === 'async') await this.lastSend
    else if (mode === 'persisted') {
      // Standbys that wait under a checkpoint policy write now when asked.
      if (primary.standbys) this.send(writePersisted(primary.epoch, seq))
      await Promise.all([primary.waitFor(seq, timeoutMs, undefined, true), this.checkpointer?.sync()])
    }
    else await primary.waitFor(seq, timeoutMs)
    return { epoch: primary.epoch, seq }
  }

  /**
   * Sweeps the replication table now: objects no longer reachable from any
   * root are dropped here and on the standbys. (This also happens by itself,
   * amortised, as references are dropped.) Resolves like {@link Understudy.commit}.
   */
  collect(): Promise<CommitResult> {
    this.graph.requestSweep()
    return this.commit()
  }

  /**
   * Leak detection: the tracked objects no registered root reaches any more,
   * on this node (active or standby), with the path each was last reachable
   * at and its size. They are dropped by the next sweep, which runs by
   * itself (amortised, as references are dropped) or on {@link Understudy.collect}.
   */
  leaks(): Leak[] {
    const w = new CborWriter()
    const lost = this.graph.unreachable()
    const paths = this.graph.detachedPaths(lost)
    return lost.map((n, i) => ({
      id: n.id,
      path: paths[i] as string,
      kind: n.tag ?? KIND_NAMES[n.kind] ?? 'object',
      bytes: w.encode(n.record()).length,
    }))
  }

  /**
   * Makes this standby the active, with a higher epoch. The objects it holds
   * become writable in place: application references stay valid.
   */
  promote(): void {
    if (this.closed) throw new ClosedError('promote')
    if (this.elector) throw new ConfigError('promote(): this node is elected through its lease; the lease decides who is active')
    if (this.primary) return
    const m = this.mirror as Mirror
    const epoch = Math.max(this.highestEpoch, m.epoch) + 1
    this.becomeActive(epoch, m.synced ? m.seq : 0, true)
  }

  /**
   * Planned switchover to a standby (`to`, or the most up-to-date one). This
   * node enters `quiescing` — writes throw `NotActiveError` ("a handover is in
   * progress") — flushes, waits until the target has applied everything, gives
   * up its lease and tells the target to take over now; it then follows the
   * new active as a standby. Rejects, resuming as active, if the target does not
   * catch up within `timeoutMs` (default 5000).
   */
  async handover(options: { to?: PeerId; timeoutMs?: number } = {}): Promise<HandoverResult> {
    if (this.closed) throw new ClosedError('handover')
    const primary = this.primary
    if (!primary || this.currentRole !== 'active') throw new NotActiveError(`handover(): only the active hands over; this node is ${this.currentRole}`)
    const to = options.to ?? primary.bestReplica()
    if (to === undefined || !primary.hasReplica(to))
      throw new NotActiveError(`handover(): ${to === undefined ? 'there is no standby to hand over to' : `${to} is not a standby of this node`}`)
    const timeoutMs = options.timeoutMs ?? 5000
    const started = this.clock.now()
    this.currentRole = 'quiescing'
    this.graph.demote('a handover is in progress')
    this.emit('role', { role: 'quiescing', epoch: primary.epoch })
    this.flush()
    const seq = primary.seq
    const c = this.checkpointer
    const saved = c?.onHandover ? c.sync().catch((error: Error) => this.emit('error', { error })) : undefined
    try {
      await primary.waitFor(seq, timeoutMs, to)
    } catch (err) {
      if (this.primary === primary && !this.closed) {
        this.currentRole = 'active'
        this.graph.writable = true
        this.emit('role', { role: 'active', epoch: primary.epoch })
      }
      throw new NotActiveError(`handover(): ${to} did not catch up within ${timeoutMs} ms; this node stays active (${(err as Error).message})`)
    }
    const heard = new Promise<number>((resolve) => (this.handingOver = { epoch: primary.epoch, resolve }))
    let timer: unknown
    const late = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new NotActiveError(`handover(): no new active was heard within ${timeoutMs} ms; the group elects one as usual`)), timeoutMs)
    })
    if (this.elector) {
      await this.elector.resign('handed over')
      this.elector.start()
    } else this.becomeStandby(`this node handed over to ${to}`, true)
    this.send(writeHandover(primary.epoch, seq), to)
    try {
      const epoch = await Promise.race([heard, late])
      const blackoutMs = this.clock.now() - started
      await saved
      return { to, epoch, seq, blackoutMs }
    } finally {
      this.clock.clearTimeout(timer)
      this.handingOver = undefined
    }
  }

  /** Figures about this node. */
  stats(): Stats {
    return {
      role: this.currentRole,
      // A standby reports the epoch of the state it holds, so peers can compare positions.
      epoch: this.primary?.epoch ?? (this.mirror?.synced ? this.mirror.epoch : 0),
      seq: this.primary?.seq ?? this.mirror?.seq ?? -1,
      objects: this.graph.byId.size,
      roots: this.roots,
      standbys: this.primary?.standbys ?? 0,
      acked: this.primary?.ackedByAll ?? -1,
      snapshots: this.snapshotsApplied,
      unackedSeq: this.primary ? this.primary.seq - Math.max(0, this.primary.ackedByAll) : 0,
    }
  }

  /** Sends what is pending, stops the node and closes its transport. Pending sync commits reject. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.primary) this.flush()
    await this.checkpointer?.sync()
    // Give the lease up first, so a standby takes over at its next beat instead of after T.
    await this.elector?.resign('the node closed')
    this.stopLocally('closed')
    this.emit('role', { role: 'stopped', epoch: this.highestEpoch })
    await this.transport.close()
  }

  /**
   * Stops this node as a crash would, for drills and tests: no goodbye to
   * peers, no lease release (it expires after T), pending commits rejected.
   * The transport is closed if it has no `abort()` of its own.
   */
  async abort(): Promise<void> {
    if (this.closed) return
    this.elector?.stop('aborted')
    this.stopLocally('aborted')
    const t = this.transport as Transport & { abort?: () => void | Promise<void> }
    await (t.abort ? t.abort() : t.close())
  }

  /** Ends every local activity: timers, pending commits, replication state, writes. */
  private stopLocally(how: 'closed' | 'aborted'): void {
    this.closed = true
    this.clock.clearTimeout(this.retransmitTimer)
    this.checkpointer?.dispose()
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this.pageHidden)
      globalThis.removeEventListener('visibilitychange', this.pageHidden)
    }
    this.primary?.abandon(`the node was ${how}`)
    this.mirror?.dispose()
    this.primary = undefined
    this.mirror = undefined
    this.graph.demote(`this node was ${how}`)
    this.currentRole = 'stopped'
  }

  /** Loads the newest consistent checkpoint into the graph, as a standby would apply it. */
  private async restore(): Promise<void> {
    const c = this.checkpointer
    if (!c) return
    const { snapshot, deltas, corrupt } = await c.restore()
    const m = this.mirror as Mirror
    if (snapshot) {
      this.graph.applySnapshot(snapshot.body)
      m.advance(snapshot.epoch, snapshot.seq)
      for (const d of deltas) {
        this.graph.applyDelta(d.body)
        m.advance(d.epoch, d.seq)
      }
      this.highestEpoch = Math.max(this.highestEpoch, m.epoch)
    }
    this.restored = { epoch: m.epoch, seq: m.seq, corrupt }
  }

  /** Standby: keeps its own checkpoint of what it applied, so state survives even if the active's disk does not. */
  private checkpointApplied(epoch: number, seq: number, body: DeltaBody | SnapshotBody, snapshot: boolean): void {
    const c = this.checkpointer
    if (!c) return
    const fail = (error: Error) => this.emit('error', { error })
    if (snapshot) c.writeSnapshot(epoch, seq, writeSnapshot(epoch, seq, body as SnapshotBody)).catch(fail)
    else {
      c.appendDelta(epoch, seq, writeDelta(epoch, seq, body as DeltaBody)).catch(fail)
      if (c.shouldCompact) c.writeSnapshot(epoch, seq, writeSnapshot(epoch, seq, this.graph.snapshot())).catch(fail)
      else if (c.pending && atOrBefore(epoch, seq, this.persistWanted)) c.sync().catch(fail)
    }
  }

  /** Active: writes a snapshot of the current state under this epoch; the log starts again from it. */
  private checkpointSnapshot(): void {
    const c = this.checkpointer
    const p = this.primary
    if (!c || !p) return
    c.writeSnapshot(p.epoch, p.seq, writeSnapshot(p.epoch, p.seq, this.graph.snapshot())).catch((error: Error) => this.emit('error', { error }))
  }

  // ---- roles --------------------------------------------------------------

  private onElected(epoch: number): void {
    if (this.closed || this.primary) return
    const m = this.mirror as Mirror
    this.becomeActive(epoch, m.synced ? m.seq : 0, true)
  }

  private onDemoted(reason: string): void {
    if (this.closed || !this.primary) return
    this.becomeStandby(`this node lost its lease (${reason})`, true)
  }

  /**
   * Only the most up-to-date standby takes an expired lease: one that knows of
   * a standby further along (higher epoch, then higher seq; ties to the lower
   * node id) that the row also admits lets it win. A node that just started
   * waits first, to hear its peers: a beat, or T when it restored state from
   * its disk, since that state may lag what one of them holds.
   */
  private candidacy(): Candidacy {
    const m = this.mirror
    if (!m) return { ready: false, ahead: [] }
    if (this.chosen) return { ready: true, ahead: [] }
    // It waits to hear its peers first: a beat, or T when it restored state from its disk (that state may lag theirs).
    const ready = this.clock.now() - this.startedAt >= (this.restored && this.restored.seq >= 0 ? this.timeoutMs : this.beatMs)
    const mine: [number, number] = [m.synced ? m.epoch : 0, m.seq]
    const ahead: string[] = []
    for (const p of this.members.values()) {
      if (p.role !== 'standby') continue
      const theirs: [number, number] = [p.seq >= 0 ? p.epoch : 0, p.seq]
      if (theirs[0] > mine[0] || (theirs[0] === mine[0] && (theirs[1] > mine[1] || (theirs[1] === mine[1] && p.node < this.nodeId)))) ahead.push(p.incarnation)
    }
    return { ready, ahead, empty: !m.synced }
  }

  private becomeActive(epoch: number, seq: number, announce: boolean): void {
    this.chosen = false
    this.mirror?.dispose()
    this.mirror = undefined
    this.highestEpoch = Math.max(this.highestEpoch, epoch)
    this.primary = new Primary(epoch, seq, this.clock, this.logLimits, (peer) => this.members.get(peer)?.incarnation)
    for (const [peer, m] of this.members) if (m.role === 'standby') this.primary.addReplica(peer)
    // Elected: the row it took names the standbys that still hold every acknowledged write.
    if (this.elector) this.primary.commitIsr(this.leaseIsr)
    this.graph.promote()
    // A new epoch's checkpoint log starts from a snapshot in that epoch.
    this.checkpointSnapshot()
    this.setRole('active', announce)
  }

  private becomeStandby(reason: string, announce: boolean): void {
    let held: { epoch: number; seq: number } | undefined
    if (this.primary) {
      // What was written goes out as a batch of this epoch (the others refuse it once they are further): the graph is then exactly (epoch, seq).
      if (!this.closed) this.flush()
      held = { epoch: this.primary.epoch, seq: this.primary.seq }
      this.primary.abandon(reason)
      this.primary = undefined
      this.graph.discardBatch()
    }
    this.graph.demote(reason)
    this.mirror = new Mirror(this.clock, () => this.sendResync(), this.resyncRetryMs)
    // A deposed active still holds its state: it says how far it got, so an election can weigh it (a new active's epoch differs, so it is sent a snapshot).
    if (held) this.mirror.advance(held.epoch, held.seq)
    this.setRole('standby', announce)
  }

  private setRole(role: Role, announce: boolean): void {
    this.currentRole = role
    if (!announce) return
    this.broadcastHello()
    this.emit('role', { role, epoch: this.epoch })
  }

  // ---- transport events ---------------------------------------------------

  private readonly handler: TransportHandler = {
    message: (from, data) => this.onMessage(from, data),
    peerUp: (peer) => {
      if (!this.closed) this.send(this.hello(), peer)
    },
    peerDown: (peer) => {
      const m = this.members.get(peer)
      if (!m) return
      // The replica goes first: it is named by the incarnation the member announced (a member of the in-sync set stays waited for).
      this.primary?.removeReplica(peer)
      this.members.delete(peer)
      if (this.activePeer === peer) this.activePeer = undefined
      this.emit('peer', { peer, up: false, role: m.role })
    },
    error: (error) => this.emit('error', { error }),
  }

  private onMessage(from: PeerId, data: Uint8Array): void {
    if (this.closed) return
    let f: Frame
    try {
      f = readFrame(data, this.limits)
    } catch (error) {
      this.emit('error', { error: error as Error, from })
      return
    }
    if (f.type === 'hello') return this.onHello(from, f.group, f.node, f.incarnation, f.role, f.epoch, f.seq)
    if (!this.members.has(from)) return
    // A standby takes replication frames only from the active it follows; an older epoch is reported as fenced.
    if ((f.type === 'delta' || f.type === 'snapshot') && from !== this.activePeer) {
      if (f.epoch < this.highestEpoch) this.emit('error', { error: new StaleEpochError(f.epoch, this.highestEpoch, from), from })
      return
    }
    switch (f.type) {
      case 'delta':
        return this.onDelta(from, f.epoch, f.seq, f.body)
      case 'snapshot':
        return this.onSnapshot(from, f.epoch, f.seq, f.body)
      case 'ack':
        return this.primary?.ack(from, f.epoch, f.seq)
      case 'resync':
        return this.serve(from, f.epoch, f.seq)
      case 'handover':
        return this.onHandover(from, f.epoch, f.seq)
      case 'persisted':
        if (this.primary) return this.primary.persist(from, f.epoch, f.seq)
        if (from === this.activePeer) return this.persistRequested(f.epoch, f.seq)
    }
  }

  /** The active chose this standby: take over now, once everything it committed is applied. */
  private onHandover(from: PeerId, epoch: number, seq: number): void {
    const m = this.mirror
    if (!m || from !== this.activePeer || epoch !== m.epoch || m.seq < seq) return
    if (this.elector) {
      this.chosen = true
      this.elector.poke()
    } else this.becomeActive(Math.max(this.highestEpoch, m.epoch) + 1, m.seq, true)
  }

  private onHello(from: PeerId, group: string, node: string, incarnation: string, role: Role, epoch: number, seq: number): void {
    if (group !== this.group) return
    let known = this.members.get(from)
    // Another run of the node behind this peer: what it held before is gone (as if it went down and came back).
    if (known && known.incarnation !== incarnation) {
      this.handler.peerDown(from, 'lost')
      known = undefined
    }
    this.members.set(from, { role, epoch, seq, node, incarnation })
    if (!known) {
      this.send(this.hello(), from)
      this.emit('peer', { peer: from, up: true, role })
    }
    if (role === 'stopped') return this.handler.peerDown(from, 'closed')
    if (role === 'active') {
      // A handover's choice lapses once some node is active at a higher epoch than this one knew of.
      if (epoch > this.highestEpoch) this.chosen = false
      this.highestEpoch = Math.max(this.highestEpoch, epoch)
    }
    if (role === 'active' && this.handingOver && epoch > this.handingOver.epoch) this.handingOver.resolve(epoch)
    if (this.primary) {
      if (role === 'standby') {
        if (!this.primary.hasReplica(from)) this.primary.addReplica(from)
        this.armRetransmit()
      } else if (role === 'active' && epoch > this.primary.epoch) {
        this.becomeStandby(`this node was deposed by an active of epoch ${epoch}`, true)
        this.activePeer = from
        ;(this.mirror as Mirror).requestResync()
      } else if (role === 'active') this.send(this.hello(), from)
      return
    }
    if (this.mirror && role === 'active') {
      if (epoch < this.mirror.epoch) return
      // Follow one active: the first seen, or one with a higher epoch. Another claiming the same epoch is ignored.
      const current = this.activePeer !== undefined ? this.members.get(this.activePeer) : undefined
      if (current && from !== this.activePeer && current.role === 'active' && epoch <= current.epoch) return
      const fresh = from !== this.activePeer
      this.activePeer = from
      const m = this.mirror
      if (!m.synced || epoch !== m.epoch) m.requestResync()
      // Caught up: a resync in flight is answered.
      else if (seq === m.seq) m.advance(epoch, m.seq)
      else if (seq < m.seq) {
        // Ahead of the active in its own epoch: this node holds a history the active does not. Only a full copy can be trusted.
        m.needFull = true
        m.requestResync()
      } else if (fresh) m.requestResync()
      // Otherwise the frames that follow this HELLO are on their way: a link keeps order, and gaps are asked for when seen.
    }
  }

  /** Active: answers a standby at (epoch, seq) with the frames it lacks, or a snapshot. */
  private serve(peer: PeerId, epoch: number, seq: number): void {
    const primary = this.primary
    if (!primary) return
    if (!primary.hasReplica(peer)) primary.addReplica(peer)
    this.flush()
    const frames = primary.catchUp(epoch, seq)
    // A HELLO first: a standby that missed this node's announcement (lost, or it was paused) takes frames only from the active it follows.
    this.send(this.hello(), peer)
    if (!frames) this.send(writeSnapshot(primary.epoch, primary.seq, this.graph.snapshot()), peer)
    else for (const f of frames) this.send(f, peer)
    this.armRetransmit()
  }

  /**
   * A lost last frame is invisible to a standby (it only sees gaps), so the
   * active resends to standbys whose acknowledgement stalled, every
   * `resyncRetryMs`, while any is behind.
   */
  private armRetransmit(): void {
    if (this.retransmitTimer !== undefined || !this.primary?.behind) return
    this.retransmitTimer = this.clock.setTimeout(() => {
      this.retransmitTimer = undefined
      const p = this.primary
      if (!p || this.closed) return
      for (const [peer, acked] of p.stalled()) this.serve(peer, p.epoch, acked)
      this.armRetransmit()
    }, this.resyncRetryMs)
  }

  private onDelta(from: PeerId, epoch: number, seq: number, body: DeltaBody): void {
    const m = this.mirror
    if (!m) return
    switch (m.judge(epoch, seq, body)) {
      case 'stale':
        return this.emit('error', { error: new StaleEpochError(epoch, m.epoch, from), from })
      case 'duplicate':
        return this.ack(from)
      case 'wait':
        return
      case 'apply':
        if (this.applyFrame(from, epoch, seq, body, false)) this.drain(from)
    }
  }

  private onSnapshot(from: PeerId, epoch: number, seq: number, body: SnapshotBody): void {
    const m = this.mirror
    if (!m) return
    if (epoch < m.epoch) return this.emit('error', { error: new StaleEpochError(epoch, m.epoch, from), from })
    if (epoch === m.epoch && seq < m.seq) return this.ack(from)
    if (this.applyFrame(from, epoch, seq, body, true)) this.drain(from)
  }

  private applyFrame(from: PeerId, epoch: number, seq: number, body: DeltaBody | SnapshotBody, snapshot: boolean): boolean {
    const m = this.mirror as Mirror
    let roots: string[]
    try {
      roots = snapshot ? this.graph.applySnapshot(body as SnapshotBody).roots : this.graph.applyDelta(body as DeltaBody).roots
    } catch (error) {
      if (!(error instanceof UnderstudyError)) throw error
      this.emit('error', { error, from })
      if (error instanceof ProtocolError) {
        m.needFull = true
        m.requestResync()
      }
      return false
    }
    m.advance(epoch, seq)
    m.needFull = false
    for (const error of this.graph.takeErrors()) this.emit('error', { error, from }) // e.g. a class not registered here
    this.checkpointApplied(epoch, seq, body, snapshot)
    if (snapshot) {
      this.snapshotsApplied++
      // Tell peers this node now holds state: a node without any lets it win the next election.
      this.broadcastHello()
    }
    this.highestEpoch = Math.max(this.highestEpoch, epoch)
    for (const name of roots) this.emit('root', { name })
    this.emit('change', { epoch, seq, snapshot })
    return true
  }

  private drain(from: PeerId): void {
    const m = this.mirror as Mirror
    for (let body = m.nextEarly(); body; body = m.nextEarly()) if (!this.applyFrame(from, m.epoch, m.seq + 1, body, false)) return
    this.ack(from)
    if (m.waiting) m.requestResync()
  }

  private ack(to: PeerId): void {
    const m = this.mirror as Mirror
    if (m.synced) this.send(writeAck(m.epoch, m.seq), to)
  }

  private sendResync(): void {
    const m = this.mirror
    if (!m || !this.activePeer) return
    // A standby that keeps checkpoints says so before its first ack can arrive (frames on a link stay in order).
    if (this.checkpointer) this.send(writePersisted(0, -1), this.activePeer)
    this.send(writeResync(m.epoch, m.needFull ? -1 : m.seq), this.activePeer)
  }

  /** Standby: tells the active how far its checkpoints are durable, whenever that advances. */
  private persistedAck(epoch: number, seq: number): void {
    if (this.closed || !this.mirror || !this.activePeer) return
    this.send(writePersisted(epoch, seq), this.activePeer)
  }

  /** Standby: the active made a `'persisted'` commit up to (epoch, seq): write what waits under the policy now. */
  private persistRequested(epoch: number, seq: number): void {
    const c = this.checkpointer
    const m = this.mirror
    if (!c || !m || seq < 0) return
    this.persistWanted = { epoch, seq }
    const fail = (error: Error) => this.emit('error', { error })
    if (c.pending) c.sync().catch(fail)
    // Nothing waits: report where the writes in flight end (again, if nothing moved).
    else void c.flushed().then(() => this.persistedAck(c.durable.epoch, c.durable.seq))
  }

  // ---- batches ------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    const primary = this.primary
    if (!primary) return
    const body = this.graph.takeDelta()
    for (const error of this.graph.takeErrors()) this.emit('error', { error })
    if (!body) return
    const { seq, frame } = primary.record((seq) => writeDelta(primary.epoch, seq, body))
    this.lastSend = this.send(frame)
    this.armRetransmit()
    const c = this.checkpointer
    if (c) {
      c.appendDelta(primary.epoch, seq, frame).catch((error: Error) => this.emit('error', { error }))
      if (c.shouldCompact) this.checkpointSnapshot()
    }
  }

  /**
   * Checkpoints now and resolves when it is durable: the whole state as one
   * snapshot, which the log then starts from (batches waiting under the
   * policy are in it). With `name`, the snapshot is kept apart under that name
   * instead, until saved over, for `load({ name })` to return to. Works on the
   * active and on a synced standby (of the state it holds).
   * @throws {ConfigError} without a `checkpoints` store, or with a bad name.
   * @throws {NotActiveError} on a standby that holds no state yet.
   */
  async save(options: { name?: string } = {}): Promise<CommitResult> {
    if (this.closed) throw new ClosedError('save')
    const c = this.needCheckpoints('save')
    const name = checkName('save', options.name)
    if (this.primary) this.flush()
    const at = this.primary ?? (this.mirror?.synced ? this.mirror : undefined)
    if (!at) throw new NotActiveError('save(): this standby holds no state yet')
    const { epoch, seq } = at
    const frame = writeSnapshot(epoch, seq, this.graph.snapshot())
    await (name === undefined ? c.writeSnapshot(epoch, seq, frame) : c.saveNamed(name, epoch, seq, frame))
    return { epoch, seq }
  }

  /**
   * Returns the application state to a checkpoint: the newest durable one
   * (batches still waiting under `checkpointPolicy` are dropped), or the one
   * saved under `name`. Each root in the checkpoint gets its saved contents in
   * place (the root objects keep their identity; objects inside are the saved
   * ones, so references held to the old ones are detached), roots it does not
   * have are left alone, and the change replicates and commits like any other.
   * Active only.
   * @throws {NotExistError} when nothing (or nothing under `name`) is saved.
   * @throws {NotActiveError} on a standby.
   */
  async load(options: { name?: string } = {}): Promise<CommitResult> {
    if (this.closed) throw new ClosedError('load')
    const c = this.needCheckpoints('load')
    const name = checkName('load', options.name)
    if (!this.primary) throw new NotActiveError(`load(): ${this.graph.readOnlyReason}. Only the active loads a checkpoint.`)
    this.flush()
    // Batches waiting under the policy are what a load goes back past: they are never written.
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
      for (const error of corrupt) this.emit('error', { error })
      if (!snapshot) throw new NotExistError(`load(): group "${this.group}" has no checkpoint`)
      scratch.applySnapshot(snapshot.body)
      for (const d of deltas) scratch.applyDelta(d.body)
    }
    if (!this.primary) throw new NotActiveError('load(): this node stopped being the active while the checkpoint was read')
    for (const [rootName, node] of scratch.roots) {
      const live = this.graph.roots.get(rootName)
      if (live) refill(live.getProxy(), node.target, rootName)
      else this.graph.registerRoot(rootName, node.target)
    }
    return this.commit()
  }

  private needCheckpoints(method: string): Checkpointer {
    if (!this.checkpointer) throw new ConfigError(`${method}(): this node has no "checkpoints" store (see Understudy.start)`)
    return this.checkpointer
  }

  /** Resolves once every checkpoint write asked for so far is durable (with `checkpoints`). */
  async checkpointed(): Promise<void> {
    this.flush()
    await this.checkpointer?.sync()
  }

  private hello(): Uint8Array {
    return writeHello({
      group: this.group,
      node: this.nodeId,
      incarnation: this.incarnation,
      role: this.currentRole,
      // A standby reports the epoch of the state it holds, so peers can compare positions.
      epoch: this.primary?.epoch ?? (this.mirror?.synced ? this.mirror.epoch : 0),
      seq: this.primary?.seq ?? this.mirror?.seq ?? -1,
    })
  }

  private broadcastHello(): void {
    this.send(this.hello())
  }

  private send(frame: Uint8Array, to?: PeerId): void | Promise<void> {
    if (this.closed) return
    try {
      const r = this.transport.send(frame, to)
      if (r) return r.catch((error: Error) => this.emit('error', { error }))
    } catch (error) {
      this.emit('error', { error: error as Error })
    }
  }
}

function checkName(method: string, name: string | undefined): string | undefined {
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

const KIND_NAMES: Record<number, string> = { [Kind.Object]: 'object', [Kind.Array]: 'array', [Kind.Map]: 'Map', [Kind.Set]: 'Set', [Kind.Date]: 'Date', [Kind.Buffer]: 'ArrayBuffer', [Kind.NullProto]: 'object' }

/** True when (epoch, seq) is at or before `p`. */
function atOrBefore(epoch: number, seq: number, p: { epoch: number; seq: number }): boolean {
  return epoch < p.epoch || (epoch === p.epoch && seq <= p.seq)
}

const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 100, timeoutMs: 400 }

function validate(o: UnderstudyOptions): void {
  if (!o || typeof o !== 'object') throw new ConfigError('Understudy.start: options are required')
  if (typeof o.group !== 'string' || !o.group) throw new ConfigError('Understudy.start: "group" must be a non-empty string')
  const t = o.transport as Partial<Transport> | undefined
  if (!t || typeof t.open !== 'function' || typeof t.send !== 'function' || typeof t.close !== 'function')
    throw new ConfigError('Understudy.start: "transport" must be a Transport (open, send, close); see understudy-ha/adapters/*')
  if (o.role !== undefined && o.role !== 'active' && o.role !== 'standby')
    throw new ConfigError(`Understudy.start: "role" must be "active" or "standby", not ${JSON.stringify(o.role)}`)
  if (o.commitMode !== undefined && o.commitMode !== 'sync' && o.commitMode !== 'async' && o.commitMode !== 'persisted')
    throw new ConfigError(`Understudy.start: "commitMode" must be "sync", "async" or "persisted", not ${JSON.stringify(o.commitMode)}`)
  for (const k of ['commitTimeoutMs', 'resyncRetryMs', 'maxFrameBytes'] as const) {
    const v = o[k]
    if (v !== undefined && (typeof v !== 'number' || !(v > 0))) throw new ConfigError(`Understudy.start: "${k}" must be a positive number`)
  }
  if (o.epoch !== undefined && (!Number.isSafeInteger(o.epoch) || o.epoch < 1)) throw new ConfigError('Understudy.start: "epoch" must be a positive integer')
  if (o.checkpointPolicy !== undefined) {
    if (!o.checkpoints) throw new ConfigError('Understudy.start: "checkpointPolicy" needs a "checkpoints" store')
    checkPolicy(o.checkpointPolicy)
  }
  if (o.lease && o.election) throw new ConfigError('Understudy.start: give "lease" or "election", not both')
  if (o.lease || o.election) {
    if (o.role !== undefined) throw new ConfigError('Understudy.start: with a "lease" or an "election", leave "role" out: the lease elects the active')
    checkHeartbeat({ ...DEFAULT_HEARTBEAT, ...o.heartbeat })
  } else if (o.heartbeat) throw new ConfigError('Understudy.start: "heartbeat" needs a "lease" (or an "election") to elect with')
}
