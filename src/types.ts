/** Public types of a node that its parts share: its role, its events, and what its methods return. */
import type { RoleName } from './codec/frames.js'
import type { PeerId } from './transport.js'

/** A node's role. Only the `active` accepts writes. */
export type Role = RoleName

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
  /**
   * The active started (`degraded: true`) or stopped running without a
   * healthy standby: while degraded, commits resolve on this node's word alone
   * (once durable in its own checkpoints, if it keeps them). `standbys`: the
   * healthy standbys now.
   */
  degraded: { degraded: boolean; standbys: number }
  /** A problem that did not stop the node: a bad frame, a stale epoch, an unsupported value smuggled past a proxy… */
  error: { error: Error; from?: PeerId }
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
  /** Active without a healthy standby: commits resolve on this node's word alone (see the `degraded` event). */
  degraded: boolean
  /** Standbys commits wait for because they are healthy (active). */
  inSync: number
  /** Bytes sent to the standby furthest behind that it has not acknowledged (active; bounded by `maxQueueBytes`). */
  queuedBytes: number
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
