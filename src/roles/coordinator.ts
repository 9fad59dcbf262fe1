/**
 * Who is active, and which replication session runs. The coordinator keeps the group's membership (HELLO frames),
 * the epoch, the election glue and the handover protocol, and routes every incoming frame: HELLOs to `hellos.ts`,
 * replication frames to the {@link ActiveSession} or {@link StandbySession} of the current role. Every role change
 * goes through the table in `machine.ts`.
 */
import type { Clock } from '../clock.js'
import { readFrame, writeHello, writeResync, type CodecLimits, type Frame } from '../codec/frames.js'
import { ClosedError, NotActiveError, StaleEpochError } from '../errors.js'
import type { Graph } from '../graph/graph.js'
import { ActiveSession } from '../replication/active.js'
import type { DurableLog, Link } from '../replication/link.js'
import type { HealthLimits, LogLimits } from '../replication/primary.js'
import { StandbySession } from '../replication/standby.js'
import type { PeerId, Transport, TransportHandler } from '../transport.js'
import type { HandoverResult, Role, Stats, UnderstudyEvents } from '../types.js'
import { Elector, eligibleWith, type Candidacy, type ElectionFactory, type ElectorEvents, type ElectorLike, type HeartbeatOptions } from './elector.js'
import type { LeaseStore } from './lease.js'
import { runHandover, type HandingOver, type HandoverHost } from './handover.js'
import { nextRole, type RoleEvent } from './machine.js'
import { Members, candidacyOf } from './members.js'
import { Hellos, type HelloHost } from './hellos.js'

export interface CoordinatorConfig {
  group: string
  nodeId: string
  incarnation: string
  transport: Transport
  clock: Clock
  graph: Graph
  durable: DurableLog | undefined
  limits: CodecLimits
  log: LogLimits
  health: HealthLimits
  retryMs: number
  heartbeat: HeartbeatOptions
  lease?: LeaseStore
  election?: ElectionFactory
  emit: <K extends keyof UnderstudyEvents>(event: K, value: UnderstudyEvents[K]) => void
  /** The node stopped (its durability stops too). */
  stopped: () => void
}

export class Coordinator implements Link, HandoverHost, HelloHost {
  role: Role = 'standby'
  /** The session of the current role: exactly one of the two is set until the node stops. */
  active: ActiveSession | undefined
  standby: StandbySession | undefined
  /** The highest epoch this node has seen an active hold (or held). */
  highestEpoch = 0
  /** Full snapshots applied as a standby. */
  snapshots = 0
  /** Set when state was restored from disk: an election waits T before it trusts it. */
  restored = false
  closed = false
  readonly members = new Members()
  readonly elector: ElectorLike | undefined
  /** The active this node follows as a standby (with a lease, only the holder its lease row names: see `hellos.ts`). */
  activePeer: PeerId | undefined
  /** Set while this node hands over: resolved when the new active is heard. */
  handingOver: HandingOver | undefined
  /** Set on the standby chosen by a handover: it takes the lease even if a tie would favour another. */
  chosen = false
  /** The in-sync set of the last lease row this node stored. */
  private leaseIsr: string[] = []
  private readonly startedAt: number
  private leaving = false
  /** When each stranger was last asked to introduce itself. */
  private readonly asked = new Map<PeerId, number>()
  private flushScheduled = false
  readonly emit: CoordinatorConfig['emit']
  private readonly hellos: Hellos

  constructor(private readonly c: CoordinatorConfig) {
    this.emit = c.emit
    this.hellos = new Hellos(this, c.clock, c.heartbeat.intervalMs)
    this.startedAt = c.clock.now()
    c.graph.demote('this node is a standby')
    c.graph.now = () => c.clock.now() // for writes refused on an unconfirmed lease
    this.standby = this.newStandby()
    const events: ElectorEvents = {
      elected: (epoch) => {
        if (!this.closed && !this.active) this.becomeActive('elected', epoch)
      },
      demoted: (reason) => {
        if (this.closed || !this.active) return
        this.becomeStandby('deposed', `this node lost its lease (${reason})`)
        this.hellos.leaseChanged() // follows the new holder, if it is known
      },
      observed: () => this.hellos.leaseChanged(),
      eligible: (row, now, timeoutMs) => eligibleWith(this.candidacy(), row, now, timeoutMs),
      candidacy: () => this.candidacy(),
      // Standbys tell their peers how far they got, so the most up-to-date one wins the next election.
      beat: () => {
        if (this.closed) return
        if (this.standby) this.send(this.hello())
        this.emit('heartbeat', { role: this.role, epoch: this.epoch })
      },
      error: (error) => this.emit('error', { error }),
      isr: () => this.active?.primary.inSync() ?? [],
      confirmed: (row, validUntil) => {
        c.graph.writableUntil = validUntil
        this.leaseIsr = row.isr ?? []
        this.active?.primary.commitIsr(this.leaseIsr)
      },
    }
    if (c.lease) this.elector = new Elector(c.incarnation, c.group, c.lease, c.clock, c.heartbeat, events)
    else if (c.election) this.elector = c.election(c.incarnation, c.group, c.heartbeat, events)
  }

  get group(): string {
    return this.c.group
  }

  get incarnation(): string {
    return this.c.incarnation
  }

  /** The current epoch: the active's fencing token. */
  get epoch(): number {
    return this.active?.epoch ?? this.highestEpoch
  }

  /** Where this node's state stands: the epoch of the state it holds (0: none) and its last seq (-1: none). */
  get position(): { epoch: number; seq: number } {
    if (this.active) return { epoch: this.active.epoch, seq: this.active.seq }
    const s = this.standby
    return { epoch: s?.synced ? s.epoch : 0, seq: s?.seq ?? -1 }
  }

  // ---- Link: what the sessions send through --------------------------------

  send(frame: Uint8Array, to?: PeerId): void | Promise<void> {
    if (this.closed) return
    try {
      const r = this.c.transport.send(frame, to)
      if (r) return r.catch((error: Error) => this.emit('error', { error }))
    } catch (error) {
      this.emit('error', { error: error as Error })
    }
  }

  hello(): Uint8Array {
    const { epoch, seq } = this.position
    return writeHello({ group: this.c.group, node: this.c.nodeId, incarnation: this.c.incarnation, role: this.role, epoch, seq })
  }

  error(error: Error, from?: PeerId): void {
    this.emit('error', from === undefined ? { error } : { error, from })
  }

  // ---- roles ---------------------------------------------------------------

  /** Makes this node the active at `epoch`; the objects it holds become writable in place. */
  becomeActive(event: RoleEvent, epoch: number, announce = true): void {
    const role = nextRole(this.role, event)
    if (role !== 'active') return
    const s = this.standby as StandbySession
    const seq = s.synced ? s.seq : 0
    this.chosen = false
    s.dispose()
    this.standby = undefined
    this.highestEpoch = Math.max(this.highestEpoch, epoch)
    const { clock, log, retryMs, health } = this.c
    this.active = new ActiveSession(this.c.graph, this, this.c.durable, { epoch, seq, clock, log, retryMs, health, degraded: (degraded, standbys) => this.emit('degraded', { degraded, standbys }), nodeOf: (peer) => this.members.get(peer)?.incarnation })
    for (const [peer, m] of this.members) if (m.role === 'standby') this.active.primary.addReplica(peer)
    // Elected: the row it took names the standbys that still hold every acknowledged write.
    if (this.elector) this.active.primary.commitIsr(this.leaseIsr)
    this.c.graph.promote()
    // A new epoch's checkpoint log starts from a snapshot in that epoch.
    this.c.durable?.snapshot(epoch, seq)
    this.setRole(role, announce)
  }

  /** Makes this node a standby (`deposed`, `handedOver`) or stops it (`stop`); pending commits reject with `reason`. */
  becomeStandby(event: RoleEvent, reason: string): void {
    const role = nextRole(this.role, event)
    if (!role) return
    const a = this.active
    if (a) {
      // What was written goes out as a batch of this epoch (the others refuse it once they are further): the graph is then exactly (epoch, seq).
      if (role !== 'stopped') a.flush()
      a.dispose(reason)
      this.active = undefined
      if (role !== 'stopped') this.c.graph.discardBatch()
    }
    this.c.graph.demote(reason)
    if (role === 'stopped') {
      this.closed = true
      this.standby?.dispose()
      this.standby = undefined
      this.role = role
      return
    }
    this.standby = this.newStandby()
    // A deposed active still holds its state: it says how far it got, so an election can weigh it (a new active's epoch differs, so it is sent a snapshot).
    if (a) this.standby.mirror.advance(a.epoch, a.seq)
    this.setRole(role, true)
  }

  private newStandby(): StandbySession {
    return new StandbySession(this.c.graph, this, this.c.durable, {
      clock: this.c.clock,
      retryMs: this.c.retryMs,
      leader: () => this.activePeer,
      applied: (epoch, _seq, snapshot, roots) => {
        if (snapshot) {
          this.snapshots++
          // Tell peers this node now holds state: a node without any lets it win the next election.
          this.send(this.hello())
        }
        this.highestEpoch = Math.max(this.highestEpoch, epoch)
        for (const name of roots) this.emit('root', { name })
        this.emit('change', { epoch, seq: _seq, snapshot })
      },
    })
  }

  setRole(role: Role, announce: boolean): void {
    this.role = role
    if (!announce) return
    this.send(this.hello())
    this.emit('role', { role, epoch: this.epoch })
  }

  /** See {@link candidacyOf}. */
  private candidacy(): Candidacy {
    const s = this.standby
    const waited = this.c.clock.now() - this.startedAt
    return candidacyOf(this.members, this.c.nodeId, s && { epoch: s.synced ? s.epoch : 0, seq: s.seq }, this.chosen, waited >= (this.restored ? this.c.heartbeat.timeoutMs : this.c.heartbeat.intervalMs))
  }

  /** Hands over to `to`, or to the most up-to-date standby (see {@link runHandover}). */
  async handover(to: PeerId | undefined, timeoutMs: number, save: () => Promise<void> | undefined): Promise<HandoverResult> {
    const a = this.active
    if (!a || this.role !== 'active') throw new NotActiveError(`handover(): only the active hands over; this node is ${this.role}`)
    to ??= a.primary.bestReplica()
    if (to === undefined || !a.primary.hasReplica(to)) throw new NotActiveError(`handover(): ${to === undefined ? 'there is no standby to hand over to' : `${to} is not a standby of this node`}`)
    return runHandover(this, this.c.clock, this.c.graph, to, timeoutMs, save)
  }

  /** Starts the node: as the active at `epoch` (raised past restored state), or as a standby; opens the transport and the election. */
  async start(epoch: number | undefined): Promise<void> {
    const at = this.position
    if (epoch !== undefined) this.becomeActive('promoted', Math.max(epoch, at.seq >= 0 ? at.epoch + 1 : 1), false)
    await this.c.transport.open(this.handler)
    this.send(this.hello())
    this.elector?.start()
  }

  /** Figures about this node. */
  stats(): Stats {
    const active = this.active?.figures() ?? { standbys: 0, acked: -1, unackedSeq: 0, degraded: false, inSync: 0, queuedBytes: 0 }
    return { role: this.role, ...this.position, objects: this.c.graph.byId.size, roots: [...this.c.graph.roots.keys()], snapshots: this.snapshots, ...active }
  }

  /** Closes the active's current batch soon (a write happened). */
  scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  /** Closes the active's current batch now. */
  flush(): void {
    this.flushScheduled = false
    this.active?.flush()
  }

  /** State restored from disk reached (epoch, seq): this standby holds it, and an election waits T before trusting it. */
  restoredAt(epoch: number, seq: number): void {
    if (seq >= 0) this.standby?.mirror.advance(epoch, seq)
    this.highestEpoch = Math.max(this.highestEpoch, epoch)
    this.restored = seq >= 0
  }

  /** Stops every local activity: the session, pending commits, writes. */
  stop(how: 'closed' | 'aborted'): void {
    if (this.closed) return
    this.becomeStandby('stop', `the node was ${how}`)
    this.c.graph.demote(`this node was ${how}`)
    this.c.stopped()
  }

  /** Refuses a call once the node has stopped. */
  open(method: string): void {
    if (this.closed) throw new ClosedError(method)
  }

  // ---- incoming ------------------------------------------------------------

  readonly handler: TransportHandler = {
    message: (from, data) => this.onMessage(from, data),
    peerUp: (peer) => {
      if (!this.closed) this.send(this.hello(), peer)
    },
    peerDown: (peer) => this.peerDown(peer),
    error: (error) => this.emit('error', { error }),
  }

  /** `peer` left (or its node restarted): it is no member, nor a replica, nor the active followed. */
  peerDown(peer: PeerId): void {
    const m = this.members.get(peer)
    if (!m) return
    // The replica goes first: it is named by the incarnation the member announced (a member of the in-sync set stays waited for).
    this.active?.primary.removeReplica(peer)
    this.members.delete(peer)
    if (this.activePeer === peer) this.activePeer = undefined
    this.emit('peer', { peer, up: false, role: m.role })
    this.hellos.leaseChanged() // another member may now be the one the lease names
  }

  /** A closing node takes no more frames: its final checkpoint would not keep what it acknowledged from here. */
  leave(): void {
    this.leaving = true
  }

  private onMessage(from: PeerId, data: Uint8Array): void {
    if (this.closed || this.leaving) return
    let f: Frame
    try {
      f = readFrame(data, this.c.limits)
    } catch (error) {
      this.emit('error', { error: error as Error, from })
      return
    }
    if (f.type === 'hello') return this.hellos.onHello(from, f)
    if (!this.members.has(from)) return this.stranger(from)
    // A standby takes replication frames only from the active it follows; an older epoch is reported as fenced.
    if ((f.type === 'delta' || f.type === 'snapshot') && from !== this.activePeer) {
      if (f.epoch < this.highestEpoch) this.emit('error', { error: new StaleEpochError(f.epoch, this.highestEpoch, from), from })
      return
    }
    const { active, standby } = this
    switch (f.type) {
      case 'delta':
        return standby?.onDelta(from, f.epoch, f.seq, f.body)
      case 'snapshot':
        return standby?.onSnapshot(from, f.epoch, f.seq, f.body)
      case 'ack':
        return active?.ack(from, f.epoch, f.seq)
      case 'resync':
        return active?.serve(from, f.epoch, f.seq)
      case 'handover':
        return this.onHandover(from, f.epoch, f.seq)
      case 'persisted':
        if (active) return active.persisted(from, f.epoch, f.seq)
        if (from === this.activePeer) return standby?.persistRequested(f.epoch, f.seq)
    }
  }

  /** The active chose this standby: take over now, once everything it committed is applied. */
  private onHandover(from: PeerId, epoch: number, seq: number): void {
    const s = this.standby
    if (!s || from !== this.activePeer || epoch !== s.epoch || s.seq < seq) return
    if (this.elector) {
      this.chosen = true
      this.elector.poke()
    } else this.becomeActive('promoted', Math.max(this.highestEpoch, s.epoch) + 1)
  }

  /** A frame from a non-member (declared gone, HELLO lost) is not trusted, but the peer is asked to introduce itself: our HELLO and, from a standby, a resync an active answers with its HELLO and what we lack. Once per `resyncRetryMs` per peer. */
  private stranger(from: PeerId): void {
    const now = this.c.clock.now()
    if (now - (this.asked.get(from) ?? -Infinity) < this.c.retryMs) return
    if (this.asked.size >= 1024) this.asked.clear()
    this.asked.set(from, now)
    this.send(this.hello(), from)
    const s = this.standby
    if (s) this.send(writeResync(s.epoch, s.mirror.needFull || !s.synced ? -1 : s.seq), from)
  }
}
