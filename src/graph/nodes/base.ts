/** The node base class (each node is its proxy's handler) and the helpers every kind shares. */
import { ProtocolError, UnderstudyError, type UnsupportedValueError } from '../../errors.js'
import type { PathStep } from '../path.js'
import { Kind, type Cell, type NodeRecord } from '../wire.js'

/** proxy → node, for every proxy any graph has handed out. */
export const proxyNodes = new WeakMap<object, Node>()

export const hasOwn = Object.prototype.hasOwnProperty
/** Arrays longer than this are refused from the wire (a hostile length would make later full encodes hang). */
export const MAX_ARRAY_LENGTH = 1 << 26

export function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null
}

/** Canonical array index for a property key, or -1. */
export function toIndex(key: string | symbol): number {
  if (typeof key !== 'string') return -1
  const c = key.charCodeAt(0)
  if (c < 48 || c > 57) return -1
  const n = Number(key)
  return n >>> 0 === n && n !== 4294967295 && String(n) === key ? n : -1
}

/**
 * What a node needs from the graph that owns it. The graph implements it; the
 * nodes see only this, so `nodes/*` never import `graph.ts` and the two
 * modules do not depend on each other in a circle.
 */
export interface GraphHost {
  /** The root name each node was first registered under. */
  readonly rootNames: WeakMap<Node, string>
  /** The current batch's queue of changed nodes, and their changed keys by queue position. */
  dirty: Node[]
  dirtyKeys: (string | Set<string> | undefined)[]
  /** The changed keys of the batch being encoded. */
  takenKeys: (string | Set<string> | undefined)[]
  /** References dropped since the last sweep (it paces the sweeps). */
  removedRefs: number
  /** Asks for the current batch to be closed soon. */
  scheduleFlush(): void
  /** The proxy for a raw tracked value (plain values pass through). */
  wrap(v: unknown): unknown
  /** The raw value behind a proxy (plain values pass through). */
  unwrap(v: unknown): unknown
  /** The node tracking a raw object, if any. */
  nodeFor(raw: object): Node | undefined
  /** Records that `old` was held by `holder` at `step` and no longer is (leak paths, sweeps). */
  dropped(old: unknown, holder: Node, step: PathStep): void
  /** Throws `NotActiveError` unless this node may write. */
  guardWrite(node: Node, key: string | symbol, method?: boolean): void
  /** The error for a write the graph cannot replicate, naming where it happened. */
  unsupportedKey(node: Node, key: string | symbol, what: string, hint: string): UnsupportedValueError
  /** Checks and tracks a value about to be stored at `parent[step]`; returns what to store raw. */
  prepare(value: unknown, parent: Node, step: PathStep, attach?: boolean): unknown
  /** {@link GraphHost.prepare} for values stored at `start`, `start + 1`, … */
  prepareAll(values: unknown[], parent: Node, start: number): unknown[]
  /** The wire cell for a value held at `parent[step]`. */
  cell(v: unknown, parent: Node, step: PathStep): Cell
  /** The value a wire cell stands for. */
  resolve(c: Cell): unknown
  /** Validates one cell of an incoming record; throws `ProtocolError` naming `where`. */
  checkCell(c: unknown, allowHole: boolean, where: Where, index: number): void
}

/** What every node of one kind (and tag) in one graph shares: one object, so a node spends one field on it. */
export interface NodeType {
  readonly graph: GraphHost
  readonly kind: Kind
  /** Typed-array constructor name or registered class name; undefined for the other kinds. */
  readonly tag: string | undefined
}

const QUEUED = 1
const FRESH = 2
const MARKED = 4
/** The bits below the batch-queue position in a node's state. */
const FLAG_BITS = 3
const FLAGS = (1 << FLAG_BITS) - 1

/**
 * One tracked object: its id, its change record for the current batch, and —
 * because the node *is* the proxy handler — the traps that record changes.
 * A node with `id === -1` is known but not in the replication table (not yet
 * attached, or freed because it became unreachable); writes to it are not tracked.
 *
 * Nodes are kept small because there is one per tracked object: the graph,
 * kind and tag sit in a shared {@link NodeType}; the batch flags, the sweep
 * mark and the node's position in the batch queue share one small integer;
 * root names, and an object node's changed keys, live in the graph.
 */
export abstract class Node {
  id = -1
  proxy: object | undefined = undefined
  /** Bit 0: queued; bit 1: fresh; bit 2: marked by the sweep in progress; above: the position in the batch queue. */
  private state = 0

  constructor(
    readonly type: NodeType,
    readonly target: object,
  ) {}

  get graph(): GraphHost {
    return this.type.graph
  }
  get kind(): Kind {
    return this.type.kind
  }
  get tag(): string | undefined {
    return this.type.tag
  }

  /** In the graph's dirty queue for the current batch. */
  get queued(): boolean {
    return (this.state & QUEUED) !== 0
  }
  set queued(v: boolean) {
    this.state = v ? this.state | QUEUED : this.state & ~QUEUED
  }
  /** Attached during the current batch: sent in full, so its own changes are not. */
  get fresh(): boolean {
    return (this.state & FRESH) !== 0
  }
  set fresh(v: boolean) {
    this.state = v ? this.state | FRESH : this.state & ~FRESH
  }
  /** Reached by the reachability sweep in progress (cleared when it ends). */
  get marked(): boolean {
    return (this.state & MARKED) !== 0
  }
  set marked(v: boolean) {
    this.state = v ? this.state | MARKED : this.state & ~MARKED
  }
  /** Position in the graph's batch queue; meaningful while queued. */
  get slot(): number {
    return this.state >>> FLAG_BITS
  }
  /** The root name it was first registered under, if it ever was a root. */
  get rootName(): string | undefined {
    return this.type.graph.rootNames.get(this)
  }
  set rootName(name: string | undefined) {
    if (name === undefined) this.type.graph.rootNames.delete(this)
    else this.type.graph.rootNames.set(this, name)
  }

  getProxy(): object {
    let p = this.proxy
    if (!p) {
      p = new Proxy(this.target, this as ProxyHandler<object>)
      this.proxy = p
      proxyNodes.set(p, this)
    }
    return p
  }

  record(): NodeRecord {
    const payload = this.encodeFull()
    return this.tag === undefined ? [this.id, this.kind, payload] : [this.id, this.kind, payload, this.tag]
  }

  /** Queues this node for the current batch. */
  protected touch(): void {
    if ((this.state & QUEUED) === 0 && this.id >= 0) {
      const g = this.graph
      this.state = (this.state & FLAGS) | QUEUED | (g.dirty.length << FLAG_BITS)
      g.dirty.push(this)
      g.dirtyKeys.push(undefined)
      g.scheduleFlush()
    }
  }

  protected cell(v: unknown, step: PathStep): Cell {
    return this.graph.cell(v, this, step)
  }

  /** Full content as a wire payload. */
  abstract encodeFull(): unknown
  /** This batch's changes as a wire payload, or undefined when nothing changed. */
  abstract encodeChange(): unknown
  abstract clearChanges(): void
  /** Calls `visit` with every value this object holds (for reachability). */
  abstract children(visit: (v: unknown) => void): void
  /** Validates a full payload from the wire (throws ProtocolError); `ids` resolves references. */
  abstract checkFull(payload: unknown, where: Where): void
  abstract checkChange(payload: unknown, where: Where): void
  /** Replaces the content with a validated full payload. */
  abstract fill(payload: unknown): void
  abstract applyChange(payload: unknown): void
  /** Empties the object (before a snapshot refills it). */
  abstract clear(): void

  set(_t: object, key: string | symbol, _v: unknown, _r: unknown): boolean {
    this.graph.guardWrite(this, key)
    throw this.graph.unsupportedKey(this, key, `a property on a ${KIND_NAMES[this.kind]}`, 'Use its own methods to change it.')
  }

  deleteProperty(t: object, key: string | symbol): boolean {
    return this.set(t, key, undefined, undefined)
  }

  defineProperty(t: object, key: string | symbol, _d: PropertyDescriptor): boolean {
    return this.set(t, key, undefined, undefined)
  }
}

const KIND_NAMES = ['object', 'array', 'Map', 'Set', 'Date', 'typed array', 'ArrayBuffer', 'object', 'object']

/** Where in a frame a payload sits; built only when an error needs it. */
export type Where = () => string

/** `where[index]`, for error messages. */
export function at(where: Where, index: number): string {
  return `${where()}[${index}]`
}

export function fail(where: string, detail: string): never {
  throw new ProtocolError('TYPE', where, detail)
}

export function checkArray(p: unknown, where: Where, what: string): unknown[] {
  if (!Array.isArray(p)) fail(where(), `${what} must be an array`)
  return p
}


/** The node behind a proxy `this` inside an intercepted method. */
export function nodeOf<N extends Node>(self: unknown): N {
  const n = proxyNodes.get(self as object)
  if (!n) throw new UnderstudyError('NOT_TRACKED', 'Understudy: a tracked collection method was called on an object that is not a tracked proxy')
  return n as N
}

/** Methods on a collection/Date/typed-array proxy run against the real object (internal slots). */
export function readerFor(fn: (...a: unknown[]) => unknown): (...a: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]) {
    return fn.apply(nodeOf(this).target, args)
  }
}

export function* wrapIter(g: GraphHost, it: Iterable<unknown>): IterableIterator<unknown> {
  for (const v of it) yield g.wrap(v)
}
export function* wrapPairs(g: GraphHost, it: Iterable<[unknown, unknown]>): IterableIterator<[unknown, unknown]> {
  for (const [k, v] of it) yield [g.wrap(k), g.wrap(v)]
}
