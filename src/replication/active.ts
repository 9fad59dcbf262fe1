/**
 * The active's replication session: it closes batches, sends them, keeps each
 * standby caught up (from the log, or with a snapshot) and resolves commits
 * once they are as safe as their mode asks. Frames in, frames out, through a
 * {@link Link}; who is active is decided elsewhere (`roles/`).
 */
import type { Clock } from '../clock.js'
import { writeDelta, writePersisted, writeSnapshot } from '../codec/frames.js'
import type { Graph } from '../graph/graph.js'
import type { PeerId } from '../transport.js'
import type { DurableLog, Link } from './link.js'
import { Primary, type HealthLimits, type LogLimits } from './primary.js'

/**
 * When `commit()` resolves:
 * - `'sync'` (default): once every healthy standby of the in-sync set has
 *   applied the batch (and `minStandbys` hold it). A standby that does not
 *   acknowledge within `standbyTimeoutMs` leaves the set and is not waited
 *   for. With none in sync the node is *degraded*: the commit resolves once
 *   the batch is durable in this node's checkpoints, or at once without them.
 * - `'async'`: once the batch is handed to the transport;
 * - `'persisted'`: as `'sync'`, and the batch is durable in the checkpoints of
 *   every standby waited for that keeps them, and of this node if it does.
 */
export type CommitMode = 'sync' | 'async' | 'persisted'

/** Where a commit landed. */
export interface CommitResult {
  epoch: number
  seq: number
  /** How many standbys held the batch when the commit resolved (0: only this node has it — a degraded acknowledgement). */
  standbys: number
}

export interface ActiveOptions {
  epoch: number
  /** The last seq the state holds (the next batch is seq + 1). */
  seq: number
  clock: Clock
  log: LogLimits
  /** How often standbys whose acknowledgement stalled are served again, ms. */
  retryMs: number
  /** The incarnation a peer announced (in-sync sets name runs of nodes). */
  nodeOf: (peer: PeerId) => string | undefined
  health: HealthLimits
  /** This node started or stopped running without a healthy standby. */
  degraded: (degraded: boolean, standbys: number) => void
}

export class ActiveSession {
  readonly primary: Primary
  private retransmitTimer: unknown = undefined
  private healthTimer: unknown = undefined
  private disposed = false
  /** No healthy standby: commits resolve on this node's word alone. */
  degraded: boolean | undefined

  constructor(
    private readonly graph: Graph,
    private readonly link: Link,
    private readonly durable: DurableLog | undefined,
    private readonly o: ActiveOptions,
  ) {
    this.primary = new Primary(o.epoch, o.seq, o.clock, o.log, o.nodeOf, o.health, () => this.healthChanged())
    this.healthChanged()
  }

  private healthChanged(): void {
    if (this.disposed || !this.primary) return
    const healthy = this.primary.healthy
    if (this.degraded === (healthy === 0)) return
    this.degraded = healthy === 0
    this.o.degraded(this.degraded, healthy)
  }

  get epoch(): number {
    return this.primary.epoch
  }

  get seq(): number {
    return this.primary.seq
  }

  /** Closes the current batch: numbers it, sends it to every standby, keeps it in the log and the checkpoints. */
  flush(): void {
    const body = this.graph.takeDelta()
    for (const error of this.graph.takeErrors()) this.link.error(error)
    if (!body) return
    const p = this.primary
    const { seq, frame, to } = p.record((seq) => writeDelta(p.epoch, seq, body))
    for (const peer of to) this.link.send(frame, peer)
    this.armRetransmit()
    this.armHealth()
    this.durable?.recorded(p.epoch, seq, frame)
  }

  /** Closes the current batch and resolves when it is as safe as `mode` asks. */
  async commit(mode: CommitMode, timeoutMs: number | undefined): Promise<CommitResult> {
    this.flush()
    const p = this.primary
    const seq = p.seq
    // 'async' does not wait for the transport to drain: a standby that stopped reading must not hold writes up (its queue is bounded instead).
    if (mode === 'async') return { epoch: p.epoch, seq, standbys: p.holders(seq) }
    let standbys: number
    if (mode === 'persisted') {
      // Standbys that wait under a checkpoint policy write now when asked.
      if (p.standbys) this.link.send(writePersisted(p.epoch, seq))
      ;[standbys] = await Promise.all([p.waitFor(seq, timeoutMs, undefined, true), this.durable?.sync()])
    } else {
      standbys = await p.waitFor(seq, timeoutMs)
      // Degraded: no standby holds it, so this node's own checkpoints are its only other copy.
      if (standbys === 0) await this.durable?.sync()
    }
    return { epoch: p.epoch, seq, standbys }
  }

  /** A standby announced itself: it replicates from now on. */
  standbyHello(peer: PeerId): void {
    if (!this.primary.hasReplica(peer)) this.primary.addReplica(peer)
    this.armRetransmit()
  }

  /** Answers a standby at (epoch, seq) with the frames it lacks, or a snapshot. */
  serve(peer: PeerId, epoch: number, seq: number): void {
    const p = this.primary
    if (!p.hasReplica(peer)) p.addReplica(peer)
    if (!p.mayServe(peer)) return
    this.flush()
    const frames = p.catchUp(epoch, seq)
    // A HELLO first: a standby that missed this node's announcement (lost, or it was paused) takes frames only from the active it follows.
    this.link.send(this.link.hello(), peer)
    if (!frames) {
      const snapshot = writeSnapshot(p.epoch, p.seq, this.graph.snapshot())
      p.served(peer, p.seq, snapshot.length)
      this.link.send(snapshot, peer)
    } else {
      p.served(peer, seq)
      for (const f of frames) this.link.send(f, peer)
    }
    this.armRetransmit()
    this.armHealth()
  }

  /** A standby applied everything up to (epoch, seq); one whose queue was full and reads again is served what it lacks. */
  ack(peer: PeerId, epoch: number, seq: number): void {
    if (this.primary.ack(peer, epoch, seq)) this.serve(peer, epoch, this.primary.ackedBy(peer) ?? -1)
  }

  /** This session's figures for `stats()`. */
  figures(): { standbys: number; acked: number; unackedSeq: number; degraded: boolean; inSync: number; queuedBytes: number } {
    const p = this.primary
    const acked = p.ackedByAll
    return { standbys: p.standbys, acked, unackedSeq: p.seq - Math.max(0, acked), degraded: this.degraded ?? false, inSync: p.healthy, queuedBytes: p.queued() }
  }

  /** A standby's checkpoints hold everything up to (epoch, seq). */
  persisted(peer: PeerId, epoch: number, seq: number): void {
    this.primary.persist(peer, epoch, seq)
  }

  /** Ends the session: pending commits reject with `reason`. */
  dispose(reason: string): void {
    this.disposed = true
    this.o.clock.clearTimeout(this.retransmitTimer)
    this.o.clock.clearTimeout(this.healthTimer)
    this.primary.abandon(reason)
  }

  /** Checks, when the first standby that is behind is due, whether it acknowledged within `standbyTimeoutMs`. */
  private armHealth(): void {
    if (this.healthTimer !== undefined || this.disposed) return
    const next = this.primary.checkHealth()
    if (next === undefined) return
    this.healthTimer = this.o.clock.setTimeout(() => {
      this.healthTimer = undefined
      this.armHealth()
    }, Math.max(1, next - this.o.clock.now()))
  }

  /**
   * A lost last frame is invisible to a standby (it only sees gaps), so the
   * active resends to standbys whose acknowledgement stalled, every
   * `retryMs`, while any is behind.
   */
  private armRetransmit(): void {
    if (this.retransmitTimer !== undefined || this.disposed || !this.primary.behind) return
    this.retransmitTimer = this.o.clock.setTimeout(() => {
      this.retransmitTimer = undefined
      if (this.disposed) return
      const p = this.primary
      for (const [peer, acked] of p.stalled()) this.serve(peer, p.epoch, acked)
      this.armRetransmit()
    }, this.o.retryMs)
  }
}
