/** What a replication session needs from its node: a way out for frames, and a place for durability. */
import type { DeltaBody, SnapshotBody } from '../graph/wire.js'
import type { PeerId } from '../transport.js'

/** The node as a replication session sees it. */
export interface Link {
  /** Sends `frame` to `to`, or to every peer; a promise when the transport queues it. Never throws. */
  send(frame: Uint8Array, to?: PeerId): void | Promise<void>
  /** This node's HELLO as it stands now (an active puts it before a catch-up). */
  hello(): Uint8Array
  /** A problem that did not stop the node. */
  error(error: Error, from?: PeerId): void
}

/**
 * Durable checkpoints, as replication reaches them (implemented by
 * `checkpoints/durability.ts`). Every method hands the write off and returns at
 * once; failures are reported as `error` events.
 */
export interface DurableLog {
  /** Active: batch `seq` of `epoch` was made, as `frame`: append it (and compact when the log outgrew the snapshot). */
  recorded(epoch: number, seq: number, frame: Uint8Array): void
  /** Active: a new epoch's log starts from a snapshot of the state as it is at (epoch, seq). */
  snapshot(epoch: number, seq: number): void
  /** Standby: a frame from the active was applied; keep it too, so state survives even if the active's disk does not. */
  applied(epoch: number, seq: number, body: DeltaBody | SnapshotBody, snapshot: boolean): void
  /** Standby: the active made a `'persisted'` commit up to (epoch, seq): write what waits under the policy now. */
  persistRequested(epoch: number, seq: number): void
  /** Resolves once every write asked for so far is durable. */
  sync(): Promise<void>
}
