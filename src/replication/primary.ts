import type { Clock } from '../clock.js'
import { CommitTimeoutError, NotActiveError } from '../errors.js'
import type { PeerId } from '../transport.js'
import { InSyncSet } from './isr.js'
import { DEFAULT_LOG, FrameLog, type LogLimits } from './log.js'
import { DEFAULT_HEALTH, type HealthLimits, type Replica, type Waiter } from './replica.js'

export { DEFAULT_LOG, type LogLimits } from './log.js'
export { DEFAULT_HEALTH, type HealthLimits } from './replica.js'

/**
 * The active's side of replication: numbers batches, keeps a bounded log of
 * recent delta frames for catch-up, tracks each standby's acknowledgement and
 * health, and resolves sync commits once every standby it waits for has
 * applied them: the healthy ones, and members of the stored in-sync set until
 * a lease row without them is stored. With none to wait for, a commit
 * resolves at once (degraded).
 */
export class Primary {
  seq: number
  private readonly replicas = new Map<PeerId, Replica>()
  /** The in-sync set as stored in lease rows, and its members that are not connected. */
  private readonly isr = new InSyncSet()
  /** Recent delta frames for catch-up, and byte counts for the standbys' queues. */
  private readonly log: FrameLog
  private waiters: Waiter[] = []

  constructor(
    readonly epoch: number,
    startSeq: number,
    private readonly clock: Clock,
    limits: LogLimits = DEFAULT_LOG,
    /** The incarnation a peer announced (in-sync sets name runs of nodes, not connections). */
    private readonly nodeOf: (peer: PeerId) => string | undefined = (peer) => peer,
    private readonly health: HealthLimits = DEFAULT_HEALTH,
    /** Called when the set of standbys commits wait for may have changed. */
    private readonly changed: () => void = () => undefined,
  ) {
    this.seq = startSeq
    this.log = new FrameLog(startSeq, limits)
  }

  /** Number of standbys currently replicating from this active. */
  get standbys(): number {
    return this.replicas.size
  }

  /** Standbys commits wait for because they are healthy (not lagging). */
  get healthy(): number {
    let n = 0
    for (const r of this.replicas.values()) if (!r.lagging) n++
    return n
  }

  /** Bytes sent to the standby that has the most unacknowledged, and not acknowledged by it. */
  queued(): number {
    let max = 0
    for (const r of this.replicas.values()) max = Math.max(max, this.queueOf(r))
    return max
  }

  private queueOf(r: Replica): number {
    if (r.paused) return r.held
    const from = Math.max(r.acked, r.base)
    return this.log.bytesAfter(from) + r.resent
  }

  /** The lowest seq every standby has acknowledged (-1 when there is none or one has not acked yet). */
  get ackedByAll(): number {
    if (!this.replicas.size && !this.isr.ghosts.size) return -1
    let min = Infinity
    for (const r of this.replicas.values()) if (r.acked < min) min = r.acked
    for (const acked of this.isr.ghosts.values()) if (acked < min) min = acked
    return min
  }

  /**
   * The in-sync set to store with the next lease renewal: connected standbys
   * that have applied everything produced before they joined (every commit
   * since has waited for them), and connected members of
   * the stored set (commits still wait for them, so they hold every
   * acknowledged write). A member that disconnected is left out: once a row
   * without it is stored, commits stop waiting for it.
   */
  inSync(): string[] {
    const out: string[] = []
    for (const [peer, r] of this.replicas) {
      const node = this.nodeOf(peer)
      if (node === undefined || out.includes(node)) continue
      if (!r.lagging && ((r.acked >= 0 && r.acked >= r.joined) || this.isr.committed.has(node))) out.push(node)
    }
    return this.isr.handOut(out)
  }

  /**
   * A lease row with in-sync set `nodes` was stored: members not connected are
   * waited for (from nothing) until a later row drops them; ghosts the row
   * leaves out stop being waited for — unless one of the last two answers of
   * {@link Primary.inSync} named them, since an election in another thread
   * may store an answer one beat old.
   */
  commitIsr(nodes: readonly string[]): void {
    const connected = new Set<string>()
    for (const peer of this.replicas.keys()) {
      const node = this.nodeOf(peer)
      if (node !== undefined) connected.add(node)
    }
    this.isr.stored(nodes, connected)
    this.changed()
    this.settle()
  }

  /**
   * Takes the next seq for a delta frame and remembers the frame for catch-up.
   * `to` lists the standbys to send it to: every known one whose queue has room
   * (a peer that never said it is a standby gets nothing it could pile up).
   */
  record(frameFor: (seq: number) => Uint8Array): { seq: number; frame: Uint8Array; to: PeerId[] } {
    const seq = ++this.seq
    const frame = frameFor(seq)
    this.log.push(seq, frame)
    const to: PeerId[] = []
    const now = this.clock.now()
    // Byte counts at or before what every standby still sent to has acknowledged are not needed again.
    let min = seq
    for (const [peer, r] of this.replicas) {
      if (!r.paused && this.queueOf(r) > this.health.maxQueueBytes) {
        this.pause(r)
        r.held -= frame.length // this frame is not sent
      }
      if (r.paused) continue
      to.push(peer)
      r.behindSince ??= now
      min = Math.min(min, Math.max(r.acked, r.base))
    }
    this.log.forgetCountsTo(min)
    return { seq, frame, to }
  }

  /** A full queue: no more frames to this standby until it reads again; it leaves the set commits wait for. */
  private pause(r: Replica): void {
    r.held = this.queueOf(r)
    r.paused = true
    this.lag(r)
  }

  private lag(r: Replica): void {
    if (!r.lagging) {
      r.lagging = true
      r.rejoinAt = this.seq
      this.changed()
    }
    this.settle()
  }

  /**
   * Whether `peer` may be sent catch-up now: not while what it has not
   * acknowledged already fills its queue (a stopped standby is not sent the
   * same frames again every retry).
   */
  mayServe(peer: PeerId): boolean {
    const r = this.replicas.get(peer)
    return !r || this.queueOf(r) <= this.health.maxQueueBytes
  }

  /**
   * Catch-up was sent to `peer`: the frames after `from` again (or, with
   * `snapshot`, a snapshot of that size at the current seq). They add to its
   * queue until its acknowledgement moves, and a paused standby gets frames again.
   */
  served(peer: PeerId, from: number, snapshot?: number): void {
    const r = this.replicas.get(peer)
    if (!r) return
    r.paused = false
    if (snapshot === undefined) r.resent += this.log.bytesAfter(Math.max(from, r.acked))
    else {
      r.resent += snapshot
      r.base = this.seq
    }
    if (r.acked < this.seq) r.behindSince ??= this.clock.now()
  }

  /**
   * Moves standbys that have been behind for `standbyTimeoutMs` without
   * acknowledging anything out of the set commits wait for. Returns when to
   * check next (undefined: nobody is behind).
   */
  checkHealth(): number | undefined {
    const now = this.clock.now()
    let next: number | undefined
    for (const r of this.replicas.values()) {
      if (r.behindSince === undefined || r.lagging) continue
      const due = r.behindSince + this.health.standbyTimeoutMs
      if (now >= due) this.lag(r)
      else next = Math.min(next ?? Infinity, due)
    }
    return next
  }

  /**
   * The frames a standby at (epoch, seq) needs, or undefined when it needs a
   * snapshot (another epoch, or older than the log).
   */
  catchUp(epoch: number, seq: number): Uint8Array[] | undefined {
    if (epoch !== this.epoch || seq > this.seq || seq < 0) return undefined
    return this.log.after(seq)
  }

  /** Starts (or restarts) tracking a standby; its acknowledgement starts over. */
  addReplica(peer: PeerId): void {
    const behindSince = this.clock.now()
    this.replicas.set(peer, { acked: -1, seen: -2, joined: this.seq, lagging: false, rejoinAt: this.seq, behindSince, paused: false, held: 0, base: this.seq, resent: 0 })
    this.changed()
    const node = this.nodeOf(peer)
    if (node !== undefined) this.isr.ghosts.delete(node)
  }

  /** The standby that has acknowledged the most (ties: the first connected), if any. */
  bestReplica(): PeerId | undefined {
    let best: PeerId | undefined
    let acked = -2
    for (const [peer, r] of this.replicas)
      if (r.acked > acked) {
        best = peer
        acked = r.acked
      }
    return best
  }

  /** The seq `peer` has acknowledged in this epoch (-1 before its first ack, undefined if unknown). */
  ackedBy(peer: PeerId): number | undefined {
    return this.replicas.get(peer)?.acked
  }

  hasReplica(peer: PeerId): boolean {
    return this.replicas.has(peer)
  }

  /** Stops tracking a standby. A member of the in-sync set is still waited for (see {@link Primary.commitIsr}). */
  removeReplica(peer: PeerId): void {
    const r = this.replicas.get(peer)
    if (!r) return
    this.replicas.delete(peer)
    const node = this.nodeOf(peer)
    if (node !== undefined && this.isr.binds(node)) this.isr.ghosts.set(node, r.acked)
    this.changed()
    this.settle()
  }

  /** Records that a standby's checkpoints hold `seq` (−1: it keeps checkpoints, nothing durable yet). */
  persist(peer: PeerId, epoch: number, seq: number): void {
    const r = this.replicas.get(peer)
    if (!r) return
    if (seq < 0) r.persisted ??= -1
    else if (epoch === this.epoch && seq > (r.persisted ?? -1)) r.persisted = Math.min(seq, this.seq)
    this.settle()
  }

  /**
   * Whether commits wait for `r`: a healthy standby, or a lagging one still
   * named by a stored (or just handed out) in-sync set — it may take over, so
   * it must hold every acknowledged write until a row without it is stored.
   */
  private waitsFor(peer: PeerId, r: Replica): boolean {
    if (!r.lagging) return true
    const node = this.nodeOf(peer)
    return node !== undefined && this.isr.binds(node)
  }

  /** The seq every standby commits wait for has applied (or, `persisted`, holds durably where it keeps checkpoints); this.seq when there is none. */
  private safe(persisted: boolean): number {
    let min = this.seq
    for (const [peer, r] of this.replicas) if (this.waitsFor(peer, r)) min = Math.min(min, holds(r, persisted))
    for (const acked of this.isr.ghosts.values()) min = Math.min(min, acked)
    return min
  }

  /** How many standbys hold `seq` (applied, or `persisted` durably where they keep checkpoints). */
  holders(seq: number, persisted = false): number {
    let n = 0
    for (const r of this.replicas.values()) if (holds(r, persisted) >= seq) n++
    return n
  }

  /**
   * Records an acknowledgement (acks of another epoch are ignored). Returns
   * true when the standby was paused and reads again: serve it what it lacks.
   */
  ack(peer: PeerId, epoch: number, seq: number): boolean {
    const r = this.replicas.get(peer)
    if (!r || epoch !== this.epoch || seq <= r.acked) return false
    r.acked = Math.min(seq, this.seq)
    r.resent = 0
    r.held = 0 // reading again: what the transport held for it is moving
    r.behindSince = r.acked < this.seq ? this.clock.now() : undefined
    if (r.lagging && !r.paused && r.acked >= r.rejoinAt) {
      // Caught up: waited for again from now on, and in the in-sync set once it holds what is produced from here.
      r.lagging = false
      r.joined = this.seq
      this.changed()
    }
    this.settle()
    return r.paused
  }

  /**
   * Resolves, with how many standbys hold it, once every standby commits wait
   * for has applied `seq` (`persisted`: holds it durably where it keeps
   * checkpoints) and at least `minStandbys` hold it — at once when there is
   * nobody to wait for and `minStandbys` is 0. With `peer`, waits for that
   * standby alone. Rejects with {@link CommitTimeoutError} after `timeoutMs`, if given.
   */
  waitFor(seq: number, timeoutMs: number | undefined, peer?: PeerId, persisted = false): Promise<number> {
    const done = this.reached({ seq, peer, persisted })
    if (done !== undefined) return Promise.resolve(done)
    return new Promise((resolve, reject) => {
      const w: Waiter = { seq, resolve, reject, timer: undefined }
      if (peer !== undefined) w.peer = peer
      if (persisted) w.persisted = true
      if (timeoutMs !== undefined)
        w.timer = this.clock.setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w)
          reject(new CommitTimeoutError(seq, timeoutMs, this.replicas.size))
        }, timeoutMs)
      this.waiters.push(w)
    })
  }

  /** True while some standby has not acknowledged the latest seq. */
  get behind(): boolean {
    for (const r of this.replicas.values()) if (r.acked < this.seq) return true
    return false
  }

  /**
   * Standbys that are behind and whose acknowledgement did not move since the
   * previous call: their frames (or acks) were probably lost. Returns each with
   * the seq it acknowledged, so the caller can resend from there.
   */
  stalled(): [PeerId, number][] {
    const out: [PeerId, number][] = []
    for (const [peer, r] of this.replicas) {
      // A paused standby is served again once it reads (its acknowledgement moves, or it asks).
      if (r.acked < this.seq && r.acked === r.seen && !r.paused) out.push([peer, r.acked])
      r.seen = r.acked
    }
    return out
  }

  /** Rejects every pending commit (this node stopped being the active). */
  abandon(reason: string): void {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) {
      this.clock.clearTimeout(w.timer)
      w.reject(new NotActiveError(`commit #${w.seq} was not acknowledged before ${reason}`))
    }
  }

  /** The number of standbys holding `w.seq` once the wait is over, else undefined. */
  private reached(w: { seq: number; peer?: PeerId; persisted?: boolean }): number | undefined {
    if (w.peer !== undefined) return (this.ackedBy(w.peer) ?? -1) >= w.seq ? 1 : undefined
    const holders = this.holders(w.seq, w.persisted)
    if (w.seq <= 0) return holders
    return this.safe(w.persisted === true) >= w.seq && holders >= this.health.minStandbys ? holders : undefined
  }

  private settle(): void {
    if (!this.waiters.length) return
    const keep: Waiter[] = []
    for (const w of this.waiters) {
      const n = this.reached(w)
      if (n !== undefined) {
        this.clock.clearTimeout(w.timer)
        w.resolve(n)
      } else keep.push(w)
    }
    this.waiters = keep
  }
}

/** The last seq `r` holds: applied, or with `persisted` also durable where it keeps checkpoints. */
function holds(r: Replica, persisted: boolean): number {
  return persisted && r.persisted !== undefined ? Math.min(r.persisted, r.acked) : r.acked
}
