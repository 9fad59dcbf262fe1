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
import { Primary, type LogLimits } from './primary.js'

/**
 * When `commit()` resolves:
 * - `'sync'` (default): once every connected standby has applied the batch
 *   (with none connected, it waits for one to join and catch up);
 * - `'async'`: once the batch is handed to the transport;
 * - `'persisted'`: as `'sync'`, and the batch is durable in the checkpoints of
 *   every standby that keeps them, and of this node if it does.
 */
export type CommitMode = 'sync' | 'async' | 'persisted'

/** Where a commit landed. */
export interface CommitResult {
  epoch: number
  seq: number
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
}

export class ActiveSession {
  readonly primary: Primary
  private lastSend: void | Promise<void> = undefined
  private retransmitTimer: unknown = undefined
  private disposed = false

  constructor(
    private readonly graph: Graph,
    private readonly link: Link,
    private readonly durable: DurableLog | undefined,
    private readonly o: ActiveOptions,
  ) {
    this.primary = new Primary(o.epoch, o.seq, o.clock, o.log, o.nodeOf)
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
    if (this.graph.errors.length) {
      const errors = this.graph.errors
      this.graph.errors = []
      for (const error of errors) this.link.error(error)
    }
    if (!body) return
    const p = this.primary
    const { seq, frame } = p.record((seq) => writeDelta(p.epoch, seq, body))
    this.lastSend = this.link.send(frame)
    this.armRetransmit()
    this.durable?.recorded(p.epoch, seq, frame)
  }

  /** Closes the current batch and resolves when it is as safe as `mode` asks. */
  async commit(mode: CommitMode, timeoutMs: number | undefined): Promise<CommitResult> {
    this.flush()
    const p = this.primary
    const seq = p.seq
    if (mode === 'async') await this.lastSend
    else if (mode === 'persisted') {
      // Standbys that wait under a checkpoint policy write now when asked.
      if (p.standbys) this.link.send(writePersisted(p.epoch, seq))
      await Promise.all([p.waitFor(seq, timeoutMs, undefined, true), this.durable?.sync()])
    } else await p.waitFor(seq, timeoutMs)
    return { epoch: p.epoch, seq }
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
    this.flush()
    const frames = p.catchUp(epoch, seq)
    // A HELLO first: a standby that missed this node's announcement (lost, or it was paused) takes frames only from the active it follows.
    this.link.send(this.link.hello(), peer)
    if (!frames) this.link.send(writeSnapshot(p.epoch, p.seq, this.graph.snapshot()), peer)
    else for (const f of frames) this.link.send(f, peer)
    this.armRetransmit()
  }

  /** A standby applied everything up to (epoch, seq). */
  ack(peer: PeerId, epoch: number, seq: number): void {
    this.primary.ack(peer, epoch, seq)
  }

  /** A standby's checkpoints hold everything up to (epoch, seq). */
  persisted(peer: PeerId, epoch: number, seq: number): void {
    this.primary.persist(peer, epoch, seq)
  }

  /** Ends the session: pending commits reject with `reason`. */
  dispose(reason: string): void {
    this.disposed = true
    this.o.clock.clearTimeout(this.retransmitTimer)
    this.primary.abandon(reason)
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
