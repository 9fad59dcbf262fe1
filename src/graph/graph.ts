import { ConfigError, NotActiveError, ProtocolError, UnderstudyError, UnknownClassError, UnsupportedValueError } from '../errors.js'
import * as apply from './apply.js'
import type { Applied } from './apply.js'
import { classify, describeUnsupported, type ClassList } from './kinds.js'
import { Node, makeNode, proxyNodes, type GraphHost, type NodeType, type Where } from './nodes/index.js'
import type { PathStep } from './path.js'
import * as reach from './reach.js'
import { GraphState, MIN_SWEEP } from './state.js'
import { adopt } from './adopt.js'
import { isObject } from './walk.js'
import { Kind, NEG_ZERO, type Cell, type DeltaBody, type NodeRecord, type RootList, type SnapshotBody } from './wire.js'

export type { Applied } from './apply.js'

/** At most this many "last held at" records wait for the next sweep (leak-report hints; beyond it paths are vaguer). */
const MAX_HELD = 1 << 16


/**
 * The replication table of one node: every tracked object by id, the roots,
 * and the current batch (dirty and freshly attached objects).
 *
 * On the active, proxies record changes and {@link Graph.takeDelta} turns a
 * batch into a {@link DeltaBody}. On a standby, {@link Graph.applyDelta} and
 * {@link Graph.applySnapshot} validate a frame completely before changing
 * anything, so a bad frame never leaves a half-applied graph.
 */
export class Graph extends GraphState implements GraphHost {
  constructor(readonly scheduleFlush: () => void) {
    super()
  }

  /** Node types by kind, for the kinds without a tag (looked up once per attached object: no key to build). */
  private readonly untagged: NodeType[] = []
  /** Node types of the tagged kinds (typed arrays, registered classes), by `kind:tag`. */
  private readonly tagged = new Map<string, NodeType>()

  /** The shared {@link NodeType} for nodes of `kind` (and `tag`) in this graph. */
  typeOf(kind: Kind, tag: string | undefined): NodeType {
    if (tag === undefined) return (this.untagged[kind] ??= { graph: this, kind, tag })
    const key = `${kind}:${tag}`
    let t = this.tagged.get(key)
    if (!t) {
      t = { graph: this, kind, tag }
      this.tagged.set(key, t)
    }
    return t
  }

  // ---- reading ------------------------------------------------------------

  /** The proxy for a raw tracked object (or the value itself). */
  wrap(v: unknown): unknown {
    if (typeof v !== 'object' || v === null) return v
    const n = this.nodes.get(v)
    return n ? (n.proxy ?? n.getProxy()) : v
  }

  /** The node of a raw tracked object. */
  nodeFor(raw: object): Node | undefined {
    return this.nodes.get(raw)
  }

  /** The raw object behind one of this graph's proxies (or the value itself). */
  unwrap(v: unknown): unknown {
    if (typeof v !== 'object' || v === null) return v
    const n = proxyNodes.get(v)
    return n && n.graph === this ? n.target : v
  }

  /** Path of a node from a root, e.g. `app.todos[3]` (see `reach.ts`). */
  pathOf(node: Node, extra: readonly PathStep[] = []): string {
    return reach.pathOf(this, node, extra)
  }

  /** Where objects no root reaches were last reachable: `(detached, was app.todos[3].owner)` (see `reach.ts`). */
  detachedPaths(nodes: readonly Node[], extra: readonly PathStep[] = []): string[] {
    return reach.detachedPaths(this, nodes, extra)
  }

  /**
   * Notes that `holder` no longer holds `old` at `step` (an overwrite or a
   * delete). Primitives are ignored; an object counts toward the next sweep
   * and remembers where it was until then, for leak reports.
   */
  dropped(old: unknown, holder: Node, step: PathStep): void {
    if (typeof old !== 'object' || old === null) return
    this.removedRefs++
    const n = this.nodes.get(old)
    if (n !== undefined && n.id >= 0 && this.lastHeld.size < MAX_HELD) this.lastHeld.set(n, [holder, step])
  }

  // ---- writing (active) ---------------------------------------------------

  /** Throws {@link NotActiveError} unless this graph is writable. `method` names a mutating method being called. */
  guardWrite(node: Node, key: string | symbol, method = false): void {
    if (this.writable && (this.writableUntil === Infinity || this.now() <= this.writableUntil)) return
    const what = method ? `call ${String(key)}() on ${this.pathOf(node)}` : `change ${this.pathOf(node, typeof key === 'string' ? [key] : [])}`
    const why = this.writable ? 'its lease was not confirmed within T − I, so another node may hold it by now; writes resume once a renewal is confirmed' : this.readOnlyReason
    throw new NotActiveError(`cannot ${what}: ${why}. Only the active accepts writes.`)
  }

  unsupportedKey(node: Node, key: string | symbol, what: string, hint: string): UnsupportedValueError {
    return new UnsupportedValueError(this.pathOf(node, [typeof key === 'string' ? key : String(key)]), what, hint)
  }

  /**
   * Readies a value for storage in a tracked object: validates everything new
   * it brings (throwing {@link UnsupportedValueError} before anything changes),
   * replaces nested proxies by their raw objects, and — when `parent` is
   * attached — gives every new object an id. Returns the raw value to store.
   */
  prepare(value: unknown, parent: Node, step: PathStep, attach = parent.id >= 0): unknown {
    if (typeof value !== 'object' || value === null) {
      if (typeof value === 'function' || typeof value === 'symbol') {
        const { what, hint } = describeUnsupported(value)
        throw new UnsupportedValueError(this.pathOf(parent, [step]), what, hint)
      }
      return value
    }
    const p = proxyNodes.get(value)
    const raw = p && p.graph === this ? p.target : value
    const n = this.nodes.get(raw)
    if (n !== undefined && n.id >= 0) {
      if (this.lastHeld.size) this.lastHeld.delete(n)
      return raw
    }
    adopt(this, raw, parent, step, undefined, attach)
    return raw
  }

  /** {@link Graph.prepare} for values stored at consecutive indices: all are validated before any is attached. */
  prepareAll(values: unknown[], parent: Node, start: number): unknown[] {
    if (values.length > 1) for (let i = 0; i < values.length; i++) this.prepare(values[i], parent, start + i, false)
    const out = new Array<unknown>(values.length)
    for (let i = 0; i < values.length; i++) out[i] = this.prepare(values[i], parent, start + i)
    return out
  }

  /** Registers `initial` as root `name` (active) or as its placeholder (standby). Returns the proxy. */
  registerRoot(name: string, initial: unknown): object {
    const existing = this.roots.get(name) ?? this.pending.get(name)
    if (existing) return existing.getProxy()
    if (!isObject(initial))
      throw new ConfigError(`register("${name}"): the initial value must be an object, an array, a Map or a Set (got ${initial === null ? 'null' : typeof initial})`)
    const raw = this.unwrap(initial) as object
    const known = this.nodes.get(raw)
    if (!known || known.id < 0) adopt(this, raw, null, undefined, name, this.writable)
    const node = this.nodes.get(raw) ?? this.placeholder(raw, name)
    node.rootName ??= name
    if (this.writable) this.addRoot(name, node)
    else this.pending.set(name, node)
    return node.getProxy()
  }

  private placeholder(raw: object, name: string): Node {
    const c = classify(raw, this.classes)
    if (!c) throw new UnsupportedValueError(name, describeUnsupported(raw).what, describeUnsupported(raw).hint)
    const node = makeNode(this.typeOf(c.kind, c.tag), raw)
    this.nodes.set(raw, node)
    return node
  }

  private addRoot(name: string, node: Node): void {
    this.roots.set(name, node)
    this.freshRoots.push(name)
    this.scheduleFlush()
  }

  /** Adds classes; objects that arrived before their class was known get their prototype now. */
  addClasses(list: ClassList | undefined): void {
    const added = this.classes.add(list)
    if (!added.length) return
    for (const name of added) this.unknownClasses.delete(name)
    this.byId.forEach((n) => {
      if (n.kind !== Kind.Class || !added.includes(n.tag as string)) return
      const proto = this.classes.prototypeOf(n.tag as string)
      if (proto && Object.getPrototypeOf(n.target) !== proto) Object.setPrototypeOf(n.target, proto)
    })
  }

  /**
   * Takes the non-fatal problems to report: what {@link GraphState.errors} holds,
   * and an {@link UnknownClassError} for each class name that arrived with no
   * class registered for it and was not reported before (its objects are kept
   * as plain objects until the class is registered).
   */
  takeErrors(): UnderstudyError[] {
    const out = this.errors
    this.errors = []
    for (const [name, reported] of this.unknownClasses) {
      if (reported) continue
      this.unknownClasses.set(name, true)
      out.push(new UnknownClassError(name))
    }
    return out
  }

  /** Makes this graph the writable one: roots only registered locally become real roots. */
  promote(): void {
    this.writable = true
    this.byId.forEach((_, id) => {
      if (id >= this.nextId) this.nextId = id + 1
    })
    for (const [name, node] of this.pending) {
      this.pending.delete(name)
      if (this.roots.has(name)) continue
      adopt(this, node.target, null, undefined, name, true)
      this.addRoot(name, node)
    }
  }

  /** Forgets the current batch without sending it (a deposed active's unacknowledged changes). */
  discardBatch(): void {
    for (const n of this.dirty) {
      n.queued = false
      n.clearChanges()
    }
    for (const n of this.fresh) n.fresh = false
    this.dirty = []
    this.dirtyKeys = []
    this.fresh = []
    this.freshRoots = []
  }

  /** Stops accepting writes (a standby again). */
  demote(reason: string): void {
    this.writable = false
    this.readOnlyReason = reason
  }



  /** Encodes a value held by `parent` as a wire cell, attaching what was smuggled past the proxies. */
  cell(v: unknown, parent: Node, step: PathStep): Cell {
    if (typeof v !== 'object' || v === null) {
      if (v === 0 && 1 / v < 0) return NEG_ZERO
      if (typeof v === 'function' || typeof v === 'symbol') {
        const { what, hint } = describeUnsupported(v)
        this.errors.push(new UnsupportedValueError(this.pathOf(parent, [step]), what, hint + ' (It was written around the proxy and is sent as undefined.)'))
        return undefined
      }
      return v as Cell
    }
    let n = this.nodes.get(v)
    if (n === undefined || n.id < 0) {
      const p = proxyNodes.get(v)
      const raw = p && p.graph === this ? p.target : v
      n = this.nodes.get(raw)
      if (n === undefined || n.id < 0) {
        try {
          adopt(this, raw, parent, step, undefined, true)
        } catch (err) {
          if (!(err instanceof UnderstudyError)) throw err
          this.errors.push(err)
          return undefined
        }
        n = this.nodes.get(raw) as Node
      }
    }
    // A fresh [id] each time: caching it on the node cost 56 bytes per tracked object.
    return [n.id]
  }

  // ---- batches ------------------------------------------------------------

  /** Asks the next {@link Graph.takeDelta} to sweep for unreachable objects. */
  requestSweep(): void {
    this.forceSweep = true
    this.scheduleFlush()
  }

  /** Closes the current batch: what changed, what is new, what became unreachable. */
  takeDelta(): DeltaBody | undefined {
    const changes: unknown[] = []
    const dirty = this.dirty
    this.dirty = []
    this.takenKeys = this.dirtyKeys
    this.dirtyKeys = []
    for (const n of dirty) {
      n.queued = false
      if (n.id >= 0 && !n.fresh) {
        const p = n.encodeChange()
        if (p !== undefined) changes.push(n.id, p)
      }
      n.clearChanges()
    }
    this.takenKeys = []
    const records: NodeRecord[] = []
    const fresh = this.fresh
    for (let i = 0; i < fresh.length; i++) {
      const n = fresh[i] as Node
      if (n.id >= 0) records.push(n.record())
    }
    for (const n of fresh) {
      n.fresh = false
      n.clearChanges()
    }
    this.fresh = []
    const roots: RootList = []
    for (const name of this.freshRoots) {
      const n = this.roots.get(name)
      if (n && n.id >= 0) roots.push(name, n.id)
    }
    this.freshRoots = []
    const freed = this.forceSweep || this.removedRefs >= this.sweepAt ? this.sweep() : []
    if (!changes.length && !records.length && !roots.length && !freed.length) return undefined
    return [roots, records, changes, freed]
  }

  /** Every root and object. Call after {@link Graph.takeDelta}, so no batch is half in it. */
  snapshot(): SnapshotBody {
    const roots: RootList = []
    for (const [name, n] of this.roots) roots.push(name, n.id)
    const records: NodeRecord[] = []
    this.byId.forEach((n) => records.push(n.record()))
    return [roots, records]
  }

  /** Drops objects no longer reachable from any root; returns their ids. */
  sweep(): number[] {
    const freed: number[] = []
    for (const n of this.unreachable()) {
      freed.push(n.id)
      this.byId.delete(n.id)
      n.id = -1
      n.clearChanges()
    }
    this.removedRefs = 0
    this.lastHeld.clear()
    this.forceSweep = false
    this.sweepAt = Math.max(MIN_SWEEP, this.byId.size >> 1)
    return freed
  }

  /** Tracked objects that no root reaches any more. */
  unreachable(): Node[] {
    return reach.unreachable(this)
  }

  // ---- applying (standby) -------------------------------------------------

  /** The value a validated cell stands for. Holes come back as undefined (callers test for them first). */
  resolve(c: Cell): unknown {
    return apply.resolveCell(this, c)
  }

  /** Throws {@link ProtocolError} (at `where[index]`) unless `c` is a valid cell whose reference, if any, resolves. */
  checkCell(c: unknown, allowHole: boolean, where: Where, index: number): void {
    apply.checkCell(this, c, allowHole, where, index)
  }

  /** Applies a delta from the active. Validates everything first: on error nothing has changed. */
  applyDelta(body: DeltaBody): Applied {
    return apply.applyDelta(this, body)
  }

  /** Replaces the whole graph with a snapshot, keeping the identity of objects that keep their id and kind. */
  applySnapshot(body: SnapshotBody): Applied {
    return apply.applySnapshot(this, body)
  }

}
