/**
 * A standby's replication session: it applies the active's frames in order,
 * holds back early ones, asks for what is missing (or for a full copy) and
 * acknowledges what it applied. Frames in, frames and events out, through a
 * {@link Link}; which active it follows is decided elsewhere (`roles/`).
 */
import type { Clock } from '../clock.js'
import { writeAck, writePersisted, writeResync } from '../codec/frames.js'
import { ProtocolError, StaleEpochError, UnderstudyError } from '../errors.js'
import type { Graph } from '../graph/graph.js'
import type { DeltaBody, SnapshotBody } from '../graph/wire.js'
import type { PeerId } from '../transport.js'
import type { DurableLog, Link } from './link.js'
import { Mirror } from './mirror.js'

export interface StandbyOptions {
  clock: Clock
  /** How often an unanswered resync request is repeated, ms. */
  retryMs: number
  /** The active this standby follows, if any: acks, resyncs and durability reports go to it. */
  leader: () => PeerId | undefined
  /** A frame was applied: the new position, and the roots it brought. */
  applied: (epoch: number, seq: number, snapshot: boolean, roots: string[]) => void
}

export class StandbySession {
  readonly mirror: Mirror

  constructor(
    private readonly graph: Graph,
    private readonly link: Link,
    private readonly durable: DurableLog | undefined,
    private readonly o: StandbyOptions,
  ) {
    this.mirror = new Mirror(o.clock, () => this.sendResync(), o.retryMs)
  }

  /** The epoch of the state this standby holds (0: none yet), and the last seq it applied (-1: none). */
  get epoch(): number {
    return this.mirror.epoch
  }

  get seq(): number {
    return this.mirror.seq
  }

  get synced(): boolean {
    return this.mirror.synced
  }

  /** This node now follows `from`, an active announcing (epoch, seq): catch up with it as needed. */
  follow(from: PeerId, epoch: number, seq: number, fresh: boolean): void {
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

  onDelta(from: PeerId, epoch: number, seq: number, body: DeltaBody): void {
    const m = this.mirror
    switch (m.judge(epoch, seq, body)) {
      case 'stale':
        return this.link.error(new StaleEpochError(epoch, m.epoch, from), from)
      case 'duplicate':
        return this.ack(from)
      case 'wait':
        return
      case 'apply':
        if (this.apply(from, epoch, seq, body, false)) this.drain(from)
    }
  }

  onSnapshot(from: PeerId, epoch: number, seq: number, body: SnapshotBody): void {
    const m = this.mirror
    if (epoch < m.epoch) return this.link.error(new StaleEpochError(epoch, m.epoch, from), from)
    if (epoch === m.epoch && seq < m.seq) return this.ack(from)
    if (this.apply(from, epoch, seq, body, true)) this.drain(from)
  }

  /** The active made a `'persisted'` commit up to (epoch, seq). */
  persistRequested(epoch: number, seq: number): void {
    this.durable?.persistRequested(epoch, seq)
  }

  /** This node's checkpoints hold everything up to (epoch, seq): tell the active. */
  persisted(epoch: number, seq: number): void {
    const to = this.o.leader()
    if (to !== undefined) this.link.send(writePersisted(epoch, seq), to)
  }

  /** Stops retrying resyncs. */
  dispose(): void {
    this.mirror.dispose()
  }

  private apply(from: PeerId, epoch: number, seq: number, body: DeltaBody | SnapshotBody, snapshot: boolean): boolean {
    const m = this.mirror
    let roots: string[]
    try {
      roots = snapshot ? this.graph.applySnapshot(body as SnapshotBody).roots : this.graph.applyDelta(body as DeltaBody).roots
    } catch (error) {
      if (!(error instanceof UnderstudyError)) throw error
      this.link.error(error, from)
      if (error instanceof ProtocolError) {
        m.needFull = true
        m.requestResync()
      }
      return false
    }
    m.advance(epoch, seq)
    m.needFull = false
    for (const error of this.graph.takeErrors()) this.link.error(error, from) // e.g. a class not registered here
    this.durable?.applied(epoch, seq, body, snapshot)
    this.o.applied(epoch, seq, snapshot, roots)
    return true
  }

  private drain(from: PeerId): void {
    const m = this.mirror
    for (let body = m.nextEarly(); body; body = m.nextEarly()) if (!this.apply(from, m.epoch, m.seq + 1, body, false)) return
    this.ack(from)
    if (m.waiting) m.requestResync()
  }

  private ack(to: PeerId): void {
    const m = this.mirror
    if (m.synced) this.link.send(writeAck(m.epoch, m.seq), to)
  }

  private sendResync(): void {
    const to = this.o.leader()
    if (to === undefined) return
    // A standby that keeps checkpoints says so before its first ack can arrive (frames on a link stay in order).
    if (this.durable) this.link.send(writePersisted(0, -1), to)
    this.link.send(writeResync(this.mirror.epoch, this.mirror.needFull ? -1 : this.mirror.seq), to)
  }
}
