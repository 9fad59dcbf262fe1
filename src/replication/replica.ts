/** What the active keeps per standby, the health limits it judges them by, and pending commits. */
import type { PeerId } from '../transport.js'

/** A standby as the active sees it. */
export interface Replica {
  /** Highest seq it acknowledged in the current epoch; -1 before its first ack. */
  acked: number
  /** `acked` at the previous retransmission check. */
  seen: number
  /** The seq produced when it was added: once it acknowledges this, it holds every write acknowledged so far (later ones wait for it). */
  joined: number
  /** Highest seq its checkpoints hold; undefined for a standby that keeps none. */
  persisted?: number
  /**
   * Out of the set commits wait for: it did not acknowledge within
   * `standbyTimeoutMs`, or its queue passed `maxQueueBytes`. It still gets
   * frames (or is resynced) and rejoins once it acknowledges `rejoinAt`.
   */
  lagging: boolean
  rejoinAt: number
  /** Since when it has been behind without acknowledging anything new (undefined while caught up). */
  behindSince: number | undefined
  /** No frames go to it (its queue passed `maxQueueBytes`) until its acknowledgement moves again. */
  paused: boolean
  /** Its queue when it was paused (what the transport may still hold for it). */
  held: number
  /** Frames after this seq were sent to it (its queue is what it has not acknowledged of them). */
  base: number
  /** Bytes of catch-up sent to it (resent frames, snapshots) since its acknowledgement last moved. */
  resent: number
}

/** When a standby leaves the set commits wait for, and how many must hold a batch before a commit resolves. */
export interface HealthLimits {
  /** A standby that has not acknowledged for this long (while behind) leaves the in-sync set. */
  standbyTimeoutMs: number
  /** A standby whose unacknowledged frames pass this many bytes gets none until it reads again, and leaves the in-sync set. */
  maxQueueBytes: number
  /** Commits resolve only once this many standbys hold the batch (default 0). */
  minStandbys: number
}

export const DEFAULT_HEALTH: HealthLimits = { standbyTimeoutMs: 400, maxQueueBytes: 16 * 1024 * 1024, minStandbys: 0 }

export interface Waiter {
  seq: number
  /** Wait for this standby only (a handover target); all standbys when undefined. */
  peer?: PeerId
  /** Wait until the batch is in the standbys' checkpoints (those that keep them), not only applied. */
  persisted?: boolean
  resolve: (standbys: number) => void
  reject: (err: Error) => void
  timer: unknown
}
