/** Identifies one peer on a transport. */
export type PeerId = string

/** What a transport reports to the node that opened it. */
export interface TransportHandler {
  /** A frame arrived from `from`. The bytes are untrusted. */
  message(from: PeerId, data: Uint8Array): void
  /** A peer became reachable. */
  peerUp(peer: PeerId): void
  /** A peer went away: it said goodbye (`'closed'`) or was lost (`'lost'`). */
  peerDown(peer: PeerId, reason: 'closed' | 'lost'): void
  /** A transport-level problem that did not close the transport (a malformed or oversized frame…). */
  error(err: Error): void
}

/**
 * Moves frames between the nodes of a group. Frames are opaque bytes;
 * ordering per peer pair is expected, loss is tolerated (the replication layer
 * detects gaps and resyncs). Every adapter passes the shared contract suite.
 */
export interface Transport {
  /** This end's peer id, unique within the group. */
  readonly id: PeerId
  /** Starts delivering events to `handler`. Called once. */
  open(handler: TransportHandler): void | Promise<void>
  /**
   * Sends a frame to one peer, or to every peer when `to` is omitted. May
   * return a promise that resolves once the transport can take more (backpressure).
   */
  send(data: Uint8Array, to?: PeerId): void | Promise<void>
  /** Says goodbye to peers and releases every resource. Sends after close are dropped. */
  close(): Promise<void>
}
