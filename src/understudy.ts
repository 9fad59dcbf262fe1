/**
 * The public face of a node: it wires the graph, the coordinator (`roles/`:
 * who is active, and which replication session runs) and durability
 * (`checkpoints/`), and owns the API. See docs/architecture.md.
 */
import { realClock, type Clock } from './clock.js'
import { DEFAULT_LIMITS } from './codec/frames.js'
import { ConfigError, NotActiveError } from './errors.js'
import { Emitter } from './events.js'
import { Graph } from './graph/graph.js'
import type { ClassList } from './graph/kinds.js'
import { findLeaks } from './leaks.js'
import { DEFAULT_HEARTBEAT, validate, type UnderstudyOptions } from './options.js'
import { defaultRandom } from './random.js'
import type { CommitMode, CommitResult } from './replication/active.js'
import { DEFAULT_HEALTH, DEFAULT_LOG } from './replication/primary.js'
import { Coordinator } from './roles/coordinator.js'
import { incarnationId } from './roles/lease.js'
import { Durability, checkName, type Position } from './checkpoints/durability.js'
import type { CheckpointCorruptError } from './checkpoints/checkpointer.js'
import { SectionCheckpoint, checkAttributes, type SectionAttributes } from './checkpoints/sections.js'
import { newProgress, runSequence, type Sequence, type SequenceProgress, type SequenceResult } from './sequences/index.js'
import type { PeerId, Transport } from './transport.js'
import type { HandoverResult, Leak, Role, Stats, UnderstudyEvents } from './types.js'

export type { CommitMode, CommitResult } from './replication/active.js'
export type { UnderstudyOptions } from './options.js'
export type { HandoverResult, Leak, Role, Stats, UnderstudyEvents } from './types.js'

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
  /** This node's id, as its peers see it. */
  readonly nodeId: string
  /**
   * This run of the node: `<nodeId>@<random>`, fresh at every start. The lease is held by the incarnation, so a node
   * restarted from its disk can never renew its previous life's lease at the same epoch.
   */
  readonly incarnation: string
  readonly group: string
  /** What the start-up restore found (with `checkpoints`): the seq reached, and records skipped as corrupt. */
  restored: (Position & { corrupt: CheckpointCorruptError[] }) | undefined
  private readonly graph: Graph
  private readonly node: Coordinator
  private readonly durability: Durability | undefined
  private readonly transport: Transport
  private readonly commitMode: CommitMode
  private readonly commitTimeoutMs: number | undefined
  private readonly clock: Clock

  private constructor(o: UnderstudyOptions) {
    super()
    const clock = (this.clock = o.clock ?? realClock)
    this.group = o.group
    this.transport = o.transport
    this.nodeId = o.nodeId ?? o.transport.id
    this.incarnation = incarnationId(this.nodeId, o.random ?? defaultRandom)
    this.commitMode = o.commitMode ?? 'sync'
    this.commitTimeoutMs = o.commitTimeoutMs
    this.graph = new Graph(() => this.node.scheduleFlush())
    this.graph.addClasses(o.classes)
    this.durability = o.checkpoints
      ? new Durability(o.checkpoints, o.group, this.graph, { policy: o.checkpointPolicy, clock, onError: (error) => this.emit('error', { error }), flush: () => this.node.flush(), onDurable: (e, s) => this.node.standby?.persisted(e, s) })
      : undefined
    this.node = new Coordinator({
      ...{ group: o.group, nodeId: this.nodeId, incarnation: this.incarnation, transport: o.transport, clock, graph: this.graph, durable: this.durability },
      ...{ limits: { ...DEFAULT_LIMITS, ...(o.maxFrameBytes ? { maxFrameBytes: o.maxFrameBytes } : {}) }, log: { ...DEFAULT_LOG, ...o.log }, retryMs: o.resyncRetryMs ?? 1000 },
      health: { standbyTimeoutMs: o.standbyTimeoutMs ?? (o.heartbeat?.timeoutMs ?? DEFAULT_HEARTBEAT.timeoutMs), maxQueueBytes: o.maxQueueBytes ?? DEFAULT_HEALTH.maxQueueBytes, minStandbys: o.minStandbys ?? 0 },
      ...{ heartbeat: { ...DEFAULT_HEARTBEAT, ...o.heartbeat }, lease: o.lease, election: o.election, emit: (event, value) => this.emit(event, value), stopped: () => this.durability?.dispose() },
    })
  }

  /**
   * Creates a node and opens its transport.
   * @throws {ConfigError} on invalid options.
   */
  static async start(options: UnderstudyOptions): Promise<Understudy> {
    validate(options)
    const ha = new Understudy(options)
    await ha.restore()
    await ha.node.start(options.role === 'active' ? (options.epoch ?? 1) : undefined)
    return ha
  }

  /** The current role. */
  get role(): Role {
    return this.node.role
  }

  /** The current epoch: the active's fencing token. */
  get epoch(): number {
    return this.node.epoch
  }

  /**
   * Registers an object graph under `name` and returns its tracked proxy. `initial` is used only when no peer already
   * holds this root: on the active it becomes the root (and is sent to the standbys); on a standby it is a placeholder
   * that the active's copy replaces, in place, when it arrives. Keep using the returned proxy: writes to `initial`
   * itself are not seen.
   * @throws {UnsupportedValueError} when `initial` holds a value that cannot replicate.
   * @throws {ConfigError} when `initial` is not an object, or a class name is bound twice.
   */
  register<T extends object>(name: string, initial: T, options: { classes?: ClassList } = {}): T {
    this.node.open(`register("${name}")`)
    if (typeof name !== 'string' || !name) throw new ConfigError('register: a root needs a non-empty string name')
    this.graph.addClasses(options.classes)
    return this.graph.registerRoot(name, initial) as T
  }

  /**
   * A SAF-style checkpoint of named sections, replicated and persisted with the graph (it lives in a reserved root).
   * Open it on every node with the same attributes; only the active writes.
   * @throws {InvalidParamError} on bad attributes.
   */
  checkpoint(name: string, attributes: SectionAttributes): SectionCheckpoint {
    const attrs = checkAttributes(name, attributes)
    const root = this.register(`understudy:checkpoint:${name}`, { sections: new Map<string, { data: Uint8Array; writtenAt: number }>() })
    // 'local': handed to the standbys, and durable in this node's own store.
    const commit = (mode: CommitMode | 'local') => (mode !== 'local' ? this.commit({ mode }) : this.commit({ mode: 'async' }).then(async (at) => (await this.durability?.sync(), at)))
    return new SectionCheckpoint(name, attrs, root, this.clock, commit, () => this.node.active?.primary.standbys ?? 0)
  }

  /**
   * Runs — or resumes — the step sequence `id`, its progress kept in the replicated graph (a reserved root) and
   * committed at every change of step and every `checkpoint(marker)`. If the active dies mid-sequence, call this again
   * with the same `id` on the new active: it resumes at the interrupted step, rolling it back first when it has a
   * rollback function. A finished sequence is returned as it ended (`forgetSequence(id)` clears it).
   * @throws {NotActiveError} on a standby, or when this node is deposed mid-run.
   */
  runSequence<C>(id: string, seq: Sequence<C>, context: C, options: { startStep?: string; mode?: CommitMode } = {}): Promise<SequenceResult> {
    this.node.open('runSequence')
    if (!this.node.active) throw new NotActiveError(`runSequence("${id}"): ${this.graph.readOnlyReason}. Only the active runs sequences.`)
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
    this.node.open('commit')
    const active = this.node.active
    if (!active) throw new NotActiveError(`commit: ${this.graph.readOnlyReason}. Only the active commits.`)
    return active.commit(options.mode ?? this.commitMode, options.timeoutMs ?? this.commitTimeoutMs)
  }

  /** Sweeps the replication table now (unreachable objects are dropped here and on the standbys); resolves like {@link Understudy.commit}. */
  collect(): Promise<CommitResult> {
    this.graph.requestSweep()
    return this.commit()
  }

  /**
   * Leak detection: the tracked objects no registered root reaches any more, on this node (active or standby),
   * with the path each was last reachable at and its size. The next sweep drops them: by itself, amortised as
   * references are dropped, or on {@link Understudy.collect}.
   */
  leaks(): Leak[] {
    return findLeaks(this.graph)
  }

  /** Makes this standby the active, with a higher epoch; the objects it holds become writable in place. */
  promote(): void {
    this.node.open('promote')
    if (this.node.elector) throw new ConfigError('promote(): this node is elected through its lease; the lease decides who is active')
    const s = this.node.standby
    if (s) this.node.becomeActive('promoted', Math.max(this.node.highestEpoch, s.epoch) + 1)
  }

  /**
   * Planned switchover to a standby (`to`, or the most up-to-date one). This node enters `quiescing` — writes throw
   * `NotActiveError` ("a handover is in progress") — flushes, waits until the target has applied everything, gives up
   * its lease and tells the target to take over now; it then follows the new active as a standby. Rejects, resuming as
   * active, if the target does not catch up within `timeoutMs` (default 5000).
   */
  async handover(options: { to?: PeerId; timeoutMs?: number } = {}): Promise<HandoverResult> {
    this.node.open('handover')
    const d = this.durability
    return this.node.handover(options.to, options.timeoutMs ?? 5000, () => (d?.onHandover ? d.sync().catch((error: Error) => this.emit('error', { error })) : undefined))
  }

  /** Figures about this node. */
  stats(): Stats {
    return this.node.stats()
  }

  /** Sends what is pending, stops the node and closes its transport. Pending sync commits reject. */
  async close(): Promise<void> {
    if (this.node.closed) return
    this.node.flush()
    this.node.leave() // no more acknowledgements of what its last checkpoint would not hold
    await this.durability?.sync()
    // Give the lease up first, so a standby takes over at its next beat instead of after T.
    await this.node.elector?.resign('the node closed')
    this.node.stop('closed')
    this.emit('role', { role: 'stopped', epoch: this.node.highestEpoch })
    await this.transport.close()
  }

  /** Stops this node as a crash would, for drills and tests: no goodbye, no lease release (it expires after T), pending commits rejected; the transport is closed if it has no `abort()` of its own. */
  async abort(): Promise<void> {
    if (this.node.closed) return
    this.node.stop('aborted') // first: stopping the elector then demotes nothing, and nothing is announced
    this.node.elector?.stop('aborted')
    const t = this.transport as Transport & { abort?: () => void | Promise<void> }
    await (t.abort ? t.abort() : t.close())
  }

  /** Loads the newest consistent checkpoint, as a standby would apply it (with `checkpoints`). */
  private async restore(): Promise<void> {
    if (!this.durability) return
    this.restored = await this.durability.restore()
    this.node.restoredAt(this.restored.epoch, this.restored.seq)
  }

  /**
   * Checkpoints now and resolves when it is durable: the whole state as one snapshot, which the log then starts from
   * (batches waiting under the policy are in it). With `name`, the snapshot is kept apart under that name instead,
   * until saved over, for `load({ name })` to return to. Works on the active and on a synced standby (its state).
   * @throws {ConfigError} without a `checkpoints` store, or with a bad name.
   * @throws {NotActiveError} on a standby that holds no state yet.
   */
  async save(options: { name?: string } = {}): Promise<Position> {
    const d = this.store('save', options.name)
    this.node.flush()
    return d.save(this.node.position, options.name)
  }

  /**
   * Returns the application state to a checkpoint: the newest durable one (batches still waiting under
   * `checkpointPolicy` are dropped), or the one saved under `name`. Each root in the checkpoint gets its saved
   * contents in place (the root objects keep their identity; objects inside are the saved ones, so references held to
   * the old ones are detached), roots it does not have are left alone, and the change replicates and commits like any
   * other. Active only.
   * @throws {NotExistError} when nothing (or nothing under `name`) is saved.
   * @throws {NotActiveError} on a standby.
   */
  async load(options: { name?: string } = {}): Promise<CommitResult> {
    const d = this.store('load', options.name)
    if (!this.node.active) throw new NotActiveError(`load(): ${this.graph.readOnlyReason}. Only the active loads a checkpoint.`)
    this.node.flush()
    await d.load(options.name, () => {
      if (!this.node.active) throw new NotActiveError('load(): this node stopped being the active while the checkpoint was read')
    })
    return this.commit()
  }

  /** Resolves once every checkpoint write asked for so far is durable (with `checkpoints`). */
  async checkpointed(): Promise<void> {
    this.node.flush()
    await this.durability?.sync()
  }

  /** The checkpoints, for `method` with checkpoint `name`: refused once stopped, without a store, or with a bad name. */
  private store(method: string, name: string | undefined): Durability {
    this.node.open(method)
    if (!this.durability) throw new ConfigError(`${method}(): this node has no "checkpoints" store (see Understudy.start)`)
    checkName(method, name)
    return this.durability
  }
}
