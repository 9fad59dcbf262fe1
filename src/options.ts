/** The options of `Understudy.start`, and their checks. */
import type { Clock } from './clock.js'
import { checkPolicy, type CheckpointPolicy } from './checkpoints/checkpointer.js'
import type { CheckpointStore } from './checkpoints/store.js'
import { MAX_NAME_LENGTH } from './codec/frames.js'
import { ConfigError } from './errors.js'
import type { ClassList } from './graph/kinds.js'
import type { Random } from './random.js'
import type { CommitMode } from './replication/active.js'
import type { LogLimits } from './replication/primary.js'
import { checkHeartbeat, type ElectionFactory, type HeartbeatOptions } from './roles/elector.js'
import type { LeaseStore } from './roles/lease.js'
import type { Transport } from './transport.js'

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
  /**
   * A commit resolves only once this many standbys hold the batch (default 0:
   * a lone or degraded active acknowledges on its own word). With 1 or more,
   * commits wait — use `commitTimeoutMs` — while fewer standbys are healthy.
   */
  minStandbys?: number
  /**
   * A standby that is behind and has not acknowledged anything for this long
   * leaves the in-sync set: commits stop waiting for it (with a lease, once a
   * row without it is stored). It keeps receiving frames and rejoins once
   * caught up. Default: the heartbeat timeout T (400 ms).
   */
  standbyTimeoutMs?: number
  /**
   * Most bytes sent to one standby and not yet acknowledged (default 16 MiB).
   * Past it that standby gets no more frames until it reads again (it is then
   * caught up from the log, or by a snapshot) and leaves the in-sync set, so a
   * stopped standby never makes the active's memory grow without bound.
   */
  maxQueueBytes?: number
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

export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 100, timeoutMs: 400 }

export function validate(o: UnderstudyOptions): void {
  if (!o || typeof o !== 'object') throw new ConfigError('Understudy.start: options are required')
  if (typeof o.group !== 'string' || !o.group) throw new ConfigError('Understudy.start: "group" must be a non-empty string')
  const t = o.transport as Partial<Transport> | undefined
  if (!t || typeof t.open !== 'function' || typeof t.send !== 'function' || typeof t.close !== 'function')
    throw new ConfigError('Understudy.start: "transport" must be a Transport (open, send, close); see understudy-ha/adapters/*')
  // Peers refuse a HELLO with longer names (see readFrame).
  const node = o.nodeId ?? t.id
  if (o.group.length > MAX_NAME_LENGTH) throw new ConfigError(`Understudy.start: "group" is at most ${MAX_NAME_LENGTH} characters`)
  if (typeof node !== 'string' || !node || node.length > MAX_NAME_LENGTH) throw new ConfigError(`Understudy.start: the node id ("nodeId", or the transport's id) must be a string of 1 to ${MAX_NAME_LENGTH} characters`)
  if (o.role !== undefined && o.role !== 'active' && o.role !== 'standby')
    throw new ConfigError(`Understudy.start: "role" must be "active" or "standby", not ${JSON.stringify(o.role)}`)
  if (o.commitMode !== undefined && o.commitMode !== 'sync' && o.commitMode !== 'async' && o.commitMode !== 'persisted')
    throw new ConfigError(`Understudy.start: "commitMode" must be "sync", "async" or "persisted", not ${JSON.stringify(o.commitMode)}`)
  for (const k of ['commitTimeoutMs', 'resyncRetryMs', 'maxFrameBytes', 'standbyTimeoutMs', 'maxQueueBytes'] as const) {
    const v = o[k]
    if (v !== undefined && (typeof v !== 'number' || !(v > 0))) throw new ConfigError(`Understudy.start: "${k}" must be a positive number`)
  }
  if (o.minStandbys !== undefined && (!Number.isSafeInteger(o.minStandbys) || o.minStandbys < 0)) throw new ConfigError('Understudy.start: "minStandbys" must be a whole number ≥ 0')
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
