/**
 * The state of a node's replication table, shared by the modules that work on
 * it: `graph.ts` (writes and batches, on the active), `apply.ts` (frames, on a
 * standby) and `reach.ts` (reachability, leak paths).
 */
import type { UnderstudyError } from '../errors.js'
import { ClassRegistry } from './kinds.js'
import type { Node, NodeType, Where } from './nodes/index.js'
import type { PathStep } from './path.js'
import { IdTable } from './table.js'
import type { Kind } from './wire.js'

/** A sweep for unreachable objects runs once this many references were dropped (amortised O(1) per write). */
export const MIN_SWEEP = 1024

export abstract class GraphState {
  /** Class names that arrived in frames without a registered class, and whether each was reported yet. */
  readonly unknownClasses = new Map<string, boolean>()
  /**
   * Writes are refused after this time (`now()`): the lease was last confirmed
   * too long ago to be sure this node still holds it. Infinity without a lease.
   */
  writableUntil = Infinity
  /** The node's clock, for {@link GraphState.writableUntil}. */
  now: () => number = () => 0
  /** Only the active writes; every write through a proxy checks this. */
  writable = false
  /** Why writes are refused, for {@link NotActiveError} messages. */
  readOnlyReason = 'this node is not the active'
  readonly classes = new ClassRegistry()
  readonly byId = new IdTable<Node>()
  /** The root name each node was first registered under (few entries: roots only). */
  readonly rootNames = new WeakMap<Node, string>()
  readonly roots = new Map<string, Node>()
  /** Roots registered on a standby before the active sent them (their `initial` values). */
  readonly pending = new Map<string, Node>()
  nextId = 1
  dirty: Node[] = []
  /** Changed keys of the object nodes in {@link GraphState.dirty}, by queue position: a key, or a Set from the second on. */
  dirtyKeys: (string | Set<string> | undefined)[] = []
  /** {@link GraphState.dirtyKeys} of the batch being encoded. */
  takenKeys: (string | Set<string> | undefined)[] = []
  /** Non-fatal problems found while encoding (a value smuggled past the proxies). */
  errors: UnderstudyError[] = []
  removedRefs = 0
  /** Where each object that lost a reference since the last sweep was held: holder and step. Cleared by each sweep. */
  readonly lastHeld = new Map<Node, [Node, PathStep]>()
  fresh: Node[] = []
  protected freshRoots: string[] = []
  readonly nodes = new WeakMap<object, Node>()
  protected sweepAt = MIN_SWEEP
  protected forceSweep = false
  /** Nodes a frame under validation introduces, by id. */
  incoming: Map<number, Node> | undefined
  /** While validating a snapshot, only its own ids may be referenced. */
  snapshotScope = false

  /** The shared {@link NodeType} for nodes of `kind` (and `tag`) in this graph. */
  abstract typeOf(kind: Kind, tag: string | undefined): NodeType
  /** Throws `ProtocolError` (at `where[index]`) unless `c` is a valid cell whose reference, if any, resolves. */
  abstract checkCell(c: unknown, allowHole: boolean, where: Where, index: number): void
  /** The raw object behind one of this graph's proxies (or the value itself). */
  abstract unwrap(v: unknown): unknown
}
