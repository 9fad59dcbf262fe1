import type { Clock } from '../clock.js'
import { CommitTimeoutError, NotActiveError } from '../errors.js'
import type { PeerId } from '../transport.js'

/** A standby as the active sees it. */
interface Replica {
  /** Highest seq it acknowledged in the current epoch; -1 before its first ack. */
  acked: number
  /** `acked` at the previous retransmission check. */
  seen: number
  /** The seq produced when it was added: once it acknowledges this, it holds every write acknowledged so far (later ones wait for it). */
  joined: number
  /** Highest seq its checkpoints hold; undefined for a standby that keeps none. */
  persisted?: number
}

interface Waiter {
  seq: number
  /** Wait for this standby only (a handover target); all standbys when undefined. */
  peer?: PeerId
  /** Wait until the batch is in the standbys' checkpoints (those that keep them), not only applied. */
  persisted?: boolean
  resolve: () => void
  reject: (err: Error) => void
  timer: unknown
}

/** How much history the active keeps to catch a standby up without a snapshot. */
export interface LogLimits {
  maxFrames: number
  maxBytes: number
}
export const DEFAULT_LOG: LogLimits = { maxFrames: 1024, maxBytes: 32 * 1024 * 1024 }

/**
 * The active's side of replication: numbers batches, keeps a bounded log of
 * recent delta frames for catch-up, tracks each standby's acknowledgement and
 * resolves sync commits once every connected standby has applied them.
 */
export class Primary {
  seq: number
  private readonly replicas = new Map<PeerId, Replica>()
  /** The in-sync set stored in the lease row (incarnations): its members hold every acknowledged write. */
  private committed = new Set<string>()
  /**
   * Members of the stored in-sync set (or of one just handed out to be stored)
   * that are not connected: commits keep waiting for them, at the seq they
   * last acknowledged, until a stored row leaves them out. So a standby can
   * leave the set but never miss a write the set is trusted to hold.
   */
  private readonly ghosts = new Map<string, number>()
  /** For each incarnation, the last {@link Primary.inSync} call (by number) whose answer named it. */
  private readonly handedOut = new Map<string, number>()
  private handOuts = 0
  private readonly log: { seq: number; frame: Uint8Array }[] = []
  private logHead = 0
  private logBytes = 0
  private waiters: Waiter[] = []

  constructor(
    readonly epoch: number,
    startSeq: number,
    private readonly clock: Clock,
    private readonly limits: LogLimits = DEFAULT_LOG,
    /** The incarnation a peer announced (in-sync sets name runs of nodes, not connections). */
    private readonly nodeOf: (peer: PeerId) => string | undefined = (peer) => peer,
  ) {
    this.seq = startSeq
  }

  /** Number of standbys currently replicating from this active. */
  get standbys(): number {
    return this.replicas.size
  }

  /** The lowest seq every standby has acknowledged (-1 when there is none or one has not acked yet). */
  get ackedByAll(): number {
    if (!this.replicas.size && !this.ghosts.size) return -1
    let min = Infinity
    for (const r of this.replicas.values()) if (r.acked < min) min = r.acked
    for (const acked of this.ghosts.values()) if (acked < min) min = acked
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
    const n = ++this.handOuts
    const out: string[] = []
    for (const [peer, r] of this.replicas) {
      const node = this.nodeOf(peer)
      if (node === undefined || out.includes(node)) continue
      if ((r.acked >= 0 && r.acked >= r.joined) || this.committed.has(node)) {
        out.push(node)
        this.handedOut.set(node, n)
      }
    }
    return out
  }

  /**
   * A lease row with in-sync set `nodes` was stored: members not connected are
   * waited for (from nothing) until a later row drops them; ghosts the row
   * leaves out stop being waited for — unless one of the last two answers of
   * {@link Primary.inSync} named them, since an election in another thread
   * may store an answer one beat old.
   */
  commitIsr(nodes: readonly string[]): void {
    this.committed = new Set(nodes)
    for (const node of [...this.ghosts.keys()])
      if (!this.committed.has(node) && !this.handedOutLately(node)) this.ghosts.delete(node)
    const connected = new Set<string>()
    for (const peer of this.replicas.keys()) {
      const node = this.nodeOf(peer)
      if (node !== undefined) connected.add(node)
    }
    for (const node of this.committed) if (!connected.has(node) && !this.ghosts.has(node)) this.ghosts.set(node, -1)
    this.settle()
  }

  /** Takes the next seq for a delta frame and remembers the frame for catch-up. */
  record(frameFor: (seq: number) => Uint8Array): { seq: number; frame: Uint8Array } {
    const seq = ++this.seq
    const frame = frameFor(seq)
    this.log.push({ seq, frame })
    this.logBytes += frame.length
    while (this.log.length - this.logHead > this.limits.maxFrames || (this.logBytes > this.limits.maxBytes && this.log.length - this.logHead > 1)) {
      this.logBytes -= (this.log[this.logHead] as { frame: Uint8Array }).frame.length
      this.log[this.logHead++] = undefined as never
    }
    if (this.logHead > 1024 && this.logHead * 2 > this.log.length) {
      this.log.splice(0, this.logHead)
      this.logHead = 0
    }
    return { seq, frame }
  }

  /**
   * The frames a standby at (epoch, seq) needs, or undefined when it needs a
   * snapshot (another epoch, or older than the log).
   */
  catchUp(epoch: number, seq: number): Uint8Array[] | undefined {
    if (epoch !== this.epoch || seq > this.seq || seq < 0) return undefined
    if (seq === this.seq) return []
    const first = this.log[this.logHead]
    if (!first || first.seq > seq + 1) return undefined
    const out: Uint8Array[] = []
    for (let i = this.logHead + (seq + 1 - first.seq); i < this.log.length; i++) out.push((this.log[i] as { frame: Uint8Array }).frame)
    return out
  }

  /** Starts (or restarts) tracking a standby; its acknowledgement starts over. */
  addReplica(peer: PeerId): void {
    this.replicas.set(peer, { acked: -1, seen: -2, joined: this.seq })
    const node = this.nodeOf(peer)
    if (node !== undefined) this.ghosts.delete(node)
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

  /** True when one of the last two answers of {@link Primary.inSync} named `node`: an election in another thread may still store it. */
  private handedOutLately(node: string): boolean {
    return (this.handedOut.get(node) ?? -Infinity) >= this.handOuts - 1
  }

  /** Stops tracking a standby. A member of the in-sync set is still waited for (see {@link Primary.commitIsr}). */
  removeReplica(peer: PeerId): void {
    const r = this.replicas.get(peer)
    if (!r) return
    this.replicas.delete(peer)
    const node = this.nodeOf(peer)
    if (node !== undefined && (this.committed.has(node) || this.handedOutLately(node))) this.ghosts.set(node, r.acked)
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

  /** The seq every standby holds durably where it keeps checkpoints, and has applied where it does not. */
  private get persistedByAll(): number {
    if (!this.replicas.size && !this.ghosts.size) return -1
    let min = Infinity
    for (const r of this.replicas.values()) min = Math.min(min, r.persisted === undefined ? r.acked : Math.min(r.persisted, r.acked))
    for (const acked of this.ghosts.values()) min = Math.min(min, acked)
    return min
  }

  /** Records an acknowledgement; acks of another epoch are ignored. */
  ack(peer: PeerId, epoch: number, seq: number): void {
    const r = this.replicas.get(peer)
    if (!r || epoch !== this.epoch || seq <= r.acked) return
    r.acked = Math.min(seq, this.seq)
    this.settle()
  }

  /**
   * Resolves once every connected standby (at least one) has applied `seq`.
   * With no standby connected it waits for one to join and catch up. Rejects
   * with {@link CommitTimeoutError} after `timeoutMs`, if given.
   */
  waitFor(seq: number, timeoutMs: number | undefined, peer?: PeerId, persisted = false): Promise<void> {
    if (seq <= 0 || (peer === undefined ? (persisted ? this.persistedByAll : this.ackedByAll) : (this.ackedBy(peer) ?? -1)) >= seq) return Promise.resolve()
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
      if (r.acked < this.seq && r.acked === r.seen) out.push([peer, r.acked])
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

  private settle(): void {
    if (!this.waiters.length) return
    const all = this.ackedByAll
    const durable = this.persistedByAll
    const keep: Waiter[] = []
    for (const w of this.waiters) {
      const acked = w.peer === undefined ? (w.persisted ? durable : all) : (this.ackedBy(w.peer) ?? -1)
      if (acked >= 0 && w.seq <= acked) {
        this.clock.clearTimeout(w.timer)
        w.resolve()
      } else keep.push(w)
    }
    this.waiters = keep
  }
}
