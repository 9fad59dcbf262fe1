import { ConfigError, NotActiveError, ProtocolError, UnderstudyError, UnknownClassError, UnsupportedValueError } from '../errors.js'
import { ClassRegistry, TYPED_ARRAYS, classify, describeUnsupported, type ClassList } from './kinds.js'
import { Node, at, makeNode, proxyNodes, shellTarget, type NodeType, type Where } from './nodes/index.js'
import { IdTable } from './table.js'
import { formatPath, type PathStep } from './path.js'
import { KIND_COUNT, Kind, NEG_ZERO, type Cell, type DeltaBody, type NodeRecord, type RootList, type SnapshotBody } from './wire.js'

/** A sweep for unreachable objects runs once this many references were dropped (amortised O(1) per write). */
const MIN_SWEEP = 1024
/** At most this many "last held at" records wait for the next sweep (leak-report hints; beyond it paths are vaguer). */
const MAX_HELD = 1 << 16

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null
}

/** What applying a frame changed, for events. */
export interface Applied {
  /** Roots that arrived with this frame. */
  roots: string[]
}

interface Found {
  kind: Kind
  tag: string | undefined
  /** Index (in the walk) of the object that holds it; -1 for the value itself. */
  from: number
  step: PathStep | undefined
}

/**
 * The replication table of one node: every tracked object by id, the roots,
 * and the current batch (dirty and freshly attached objects).
 *
 * On the active, proxies record changes and {@link Graph.takeDelta} turns a
 * batch into a {@link DeltaBody}. On a standby, {@link Graph.applyDelta} and
 * {@link Graph.applySnapshot} validate a frame completely before changing
 * anything, so a bad frame never leaves a half-applied graph.
 */
export class Graph {
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
  /** Changed keys of the object nodes in {@link Graph.dirty}, by queue position: a key, or a Set from the second on. */
  dirtyKeys: (string | Set<string> | undefined)[] = []
  /** {@link Graph.dirtyKeys} of the batch being encoded. */
  takenKeys: (string | Set<string> | undefined)[] = []
  /** Non-fatal problems found while encoding (a value smuggled past the proxies). */
  errors: UnderstudyError[] = []
  /** Class names that arrived in frames without a registered class, and whether each was reported yet. */
  private readonly unknownClasses = new Map<string, boolean>()
  removedRefs = 0
  /** Where each object that lost a reference since the last sweep was held: holder and step. Cleared by each sweep. */
  private readonly lastHeld = new Map<Node, [Node, PathStep]>()
  private fresh: Node[] = []
  private freshRoots: string[] = []
  private readonly nodes = new WeakMap<object, Node>()
  private sweepAt = MIN_SWEEP
  private forceSweep = false
  /** Nodes a frame under validation introduces, by id. */
  private incoming: Map<number, Node> | undefined
  /** While validating a snapshot, only its own ids may be referenced. */
  private snapshotScope = false

  constructor(readonly scheduleFlush: () => void) {}

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

  /**
   * Breadth-first from the roots: how each reachable node is reached (its
   * holder and the step from it; a root maps to `[null, its name]`). Stops
   * once `until` is reached. Run only to word errors and leak reports.
   */
  private reach(until?: Node): Map<Node, [Node | null, PathStep]> {
    const via = new Map<Node, [Node | null, PathStep]>()
    const queue: Node[] = []
    for (const roots of [this.roots, this.pending])
      for (const [name, r] of roots)
        if (!via.has(r)) {
          via.set(r, [null, name])
          queue.push(r)
        }
    const noFail = (): never => undefined as never
    for (let i = 0; i < queue.length && !(until && via.has(until)); i++) {
      const from = queue[i] as Node
      forEachChild(from.target, from.kind, (v, step) => {
        const c = isObject(v) ? this.nodes.get(v) : undefined
        if (c && !via.has(c)) {
          via.set(c, [from, step])
          queue.push(c)
        }
      }, noFail)
    }
    return via
  }

  /** Root name and steps of a node `via` reaches. */
  private stepsVia(via: Map<Node, [Node | null, PathStep]>, node: Node): [string, PathStep[]] {
    const steps: PathStep[] = []
    let n = node
    for (;;) {
      const [holder, step] = via.get(n) as [Node | null, PathStep]
      if (!holder) return [String(step), steps.reverse()]
      steps.push(step)
      n = holder
    }
  }

  /**
   * Path of a node from a root, e.g. `app.todos[3]`: the shortest one in the
   * live graph, or where it was last reachable when no root reaches it (see
   * {@link Graph.detachedPaths}).
   */
  pathOf(node: Node, extra: readonly PathStep[] = []): string {
    const via = this.reach(node)
    if (!via.has(node)) return this.detachedPaths([node], extra, via)[0] as string
    const [root, steps] = this.stepsVia(via, node)
    return formatPath(root, [...steps, ...extra])
  }

  /**
   * Where objects no root reaches were last reachable:
   * `(detached, was app.todos[3].owner)`. An object that lost a reference
   * since the last sweep remembers the holder and step it lost (see
   * {@link Graph.dropped}); objects inside it are placed from there, and a
   * replaced root by its name. A standby records the drops it applies the
   * same way (in the order the changes arrive, so a move within one batch can
   * leave it a step behind). What cannot be placed (past the memory cap, or
   * dropped by a write that bypassed the proxies) is `(detached object)`.
   */
  detachedPaths(nodes: readonly Node[], extra: readonly PathStep[] = [], via = this.reach()): string[] {
    const placed = new Map<Node, [string, PathStep[]]>()
    const place = (n: Node, depth: number): [string, PathStep[]] | undefined => {
      if (via.has(n)) return this.stepsVia(via, n)
      const known = placed.get(n)
      if (known || depth > 64) return known
      const held = this.lastHeld.get(n)
      const from = held && place(held[0], depth + 1)
      let p: [string, PathStep[]] | undefined
      if (from) p = [from[0], [...from[1], (held as [Node, PathStep])[1]]]
      else {
        const name = n.rootName
        if (name !== undefined) p = [name, []]
      }
      if (p) placed.set(n, p)
      return p
    }
    for (const head of this.lastHeld.keys()) place(head, 0)
    for (const n of nodes) place(n, 0)
    // Spread from the placed nodes into what they hold that nothing placed yet.
    const queue = [...placed.keys()]
    const noFail = (): never => undefined as never
    for (let i = 0; i < queue.length; i++) {
      const from = queue[i] as Node
      const [root, steps] = placed.get(from) as [string, PathStep[]]
      forEachChild(from.target, from.kind, (v, step) => {
        const c = isObject(v) ? this.nodes.get(v) : undefined
        if (c && c.id >= 0 && !via.has(c) && !placed.has(c)) {
          placed.set(c, [root, [...steps, step]])
          queue.push(c)
        }
      }, noFail)
    }
    return nodes.map((n) => {
      const p = placed.get(n)
      return p ? formatPath(`(detached, was ${p[0]}`, [...p[1], ...extra]) + ')' : formatPath('(detached object)', [...extra])
    })
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
    if (this.writable) return
    const what = method ? `call ${String(key)}() on ${this.pathOf(node)}` : `change ${this.pathOf(node, typeof key === 'string' ? [key] : [])}`
    throw new NotActiveError(`cannot ${what}: ${this.readOnlyReason}. Only the active accepts writes.`)
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
    this.adopt(raw, parent, step, undefined, attach)
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
    if (!known || known.id < 0) this.adopt(raw, null, undefined, name, this.writable)
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
   * Takes the non-fatal problems to report: what {@link Graph.errors} holds,
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
      this.adopt(node.target, null, undefined, name, true)
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

  /**
   * Walks the untracked objects reachable from `raw`, validating each; then
   * (when `attach`) gives each an id. Tracked objects end the walk: they are
   * shared references, not new content.
   */
  private adopt(raw: object, parent: Node | null, step: PathStep | undefined, rootName: string | undefined, attach: boolean): void {
    const list: object[] = [raw]
    const seen = new Map<object, Found>()
    const fix: [holder: object, kind: Kind, step: PathStep, raw: object][] = []
    const root = classify(raw, this.classes)
    const fail = (i: number, childStep: PathStep | undefined, v: unknown): never => {
      const steps: PathStep[] = childStep === undefined ? [] : [childStep]
      for (let k = i; k > 0; ) {
        const f = seen.get(list[k] as object) as Found
        if (f.step !== undefined) steps.push(f.step)
        k = f.from
      }
      if (step !== undefined) steps.push(step)
      steps.reverse()
      const frozen = isObject(v) && classify(v, this.classes) !== undefined
      const { what, hint } = frozen
        ? { what: 'a frozen or sealed object', hint: 'Frozen objects cannot be tracked: assign a copy ({ ...value }).' }
        : describeUnsupported(v)
      const path = rootName !== undefined ? formatPath(rootName, steps) : parent ? this.pathOf(parent, steps) : formatPath('(value)', steps)
      throw new UnsupportedValueError(path, what, hint)
    }
    if (!root || !Object.isExtensible(raw)) fail(0, undefined, raw)
    seen.set(raw, { kind: (root as { kind: Kind }).kind, tag: root?.tag, from: -1, step })
    for (let i = 0; i < list.length; i++) {
      const o = list[i] as object
      const { kind } = seen.get(o) as Found
      const visit = (v: unknown, s: PathStep): void => {
        if (typeof v !== 'object' || v === null) {
          if (typeof v === 'function' || typeof v === 'symbol') fail(i, s, v)
          return
        }
        const p = proxyNodes.get(v)
        let r = v
        if (p && p.graph === this) {
          r = p.target
          fix.push([o, kind, s, r])
        }
        const n = this.nodes.get(r)
        if ((n !== undefined && n.id >= 0) || seen.has(r)) return
        const c = classify(r, this.classes)
        if (!c || !Object.isExtensible(r)) fail(i, s, r)
        seen.set(r, { kind: c!.kind, tag: c!.tag, from: i, step: s })
        list.push(r)
      }
      forEachChild(o, kind, visit, (s, v) => fail(i, s, v))
    }
    for (const [holder, kind, s, r] of fix) replaceChild(holder, kind, s, r, this)
    if (!attach) return
    for (let i = 0; i < list.length; i++) {
      const o = list[i] as object
      const f = seen.get(o) as Found
      let node = this.nodes.get(o)
      if (!node) {
        node = makeNode(this.typeOf(f.kind, f.tag), o)
        this.nodes.set(o, node)
      }
      node.id = this.nextId++
      node.clearChanges()
      this.byId.set(node.id, node)
      node.fresh = true
      this.fresh.push(node)
    }
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
          this.adopt(raw, parent, step, undefined, true)
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

  /**
   * Tracked objects that no root reaches any more: a mark from the roots, then
   * one pass over the table that collects the unmarked and clears the marks
   * (so a mark is one bit, not a per-node sweep counter).
   */
  unreachable(): Node[] {
    const stack: Node[] = []
    const reach = (c: Node): void => {
      if (c.id >= 0 && !c.marked) {
        c.marked = true
        stack.push(c)
      }
    }
    const out: Node[] = []
    try {
      for (const n of this.roots.values()) reach(n)
      const visit = (v: unknown): void => {
        if (typeof v !== 'object' || v === null) return
        let c = this.nodes.get(v)
        if (c === undefined) {
          const p = proxyNodes.get(v)
          if (p && p.graph === this) c = p
        }
        if (c !== undefined) reach(c)
      }
      while (stack.length) (stack.pop() as Node).children(visit)
    } finally {
      this.byId.forEach((n) => {
        if (n.marked) n.marked = false
        else out.push(n)
      })
    }
    return out
  }

  // ---- applying (standby) -------------------------------------------------

  /** The value a validated cell stands for. Holes come back as undefined (callers test for them first). */
  resolve(c: Cell): unknown {
    if (!Array.isArray(c)) return c
    if (c.length === 1) {
      const n = (this.incoming?.get(c[0]) ?? this.byId.get(c[0])) as Node
      // Stored again: where it was dropped before no longer says where it is.
      if (this.lastHeld.size !== 0) this.lastHeld.delete(n)
      return n.target
    }
    return c.length === 2 ? -0 : undefined
  }

  /** Throws {@link ProtocolError} (at `where[index]`) unless `c` is a valid cell whose reference, if any, resolves. */
  checkCell(c: unknown, allowHole: boolean, where: Where, index: number): void {
    if (c === null || c === undefined) return
    switch (typeof c) {
      case 'boolean':
      case 'number':
      case 'string':
      case 'bigint':
        return
    }
    if (Array.isArray(c)) {
      if (c.length === 0) {
        if (allowHole) return
        throw new ProtocolError('TYPE', at(where, index), 'a hole is not allowed here')
      }
      if (c.length === 1) {
        const id = c[0] as unknown
        if (typeof id !== 'number' || !(this.incoming?.has(id) || (!this.snapshotScope && this.byId.has(id))))
          throw new ProtocolError('UNKNOWN_OBJECT', at(where, index), `reference to unknown object ${String(id)}`)
        return
      }
      if (c.length === 2 && c[0] === 0 && c[1] === 0) return
    }
    throw new ProtocolError('TYPE', at(where, index), `not a valid value (${Object.prototype.toString.call(c)})`)
  }

  /** Applies a delta from the active. Validates everything first: on error nothing has changed. */
  applyDelta(body: DeltaBody): Applied {
    const [roots, records, changes, freed] = body
    const plan = this.plan(records, roots, false)
    try {
      if (changes.length % 2) throw new ProtocolError('TYPE', 'delta.changes', 'changes are id/payload pairs')
      const targets: Node[] = new Array(changes.length >> 1)
      let at = 0
      const where = () => `delta.changes[${at}]` // one closure per frame; read only to word an error
      const incoming = this.incoming as Map<number, Node>
      for (let i = 0; i < changes.length; i += 2) {
        const id = changes[i]
        const n = typeof id === 'number' ? (this.byId.get(id) ?? incoming.get(id)) : undefined
        if (!n) throw new ProtocolError('UNKNOWN_OBJECT', `delta.changes[${i}]`, `change to unknown object ${String(id)}`)
        at = i + 1
        n.checkChange(changes[i + 1], where)
        targets[i >> 1] = n
      }
      for (let i = 0; i < freed.length; i++)
        if (typeof freed[i] !== 'number') throw new ProtocolError('TYPE', `delta.freed[${i}]`, 'an id is a number')
      this.execute(plan, records)
      for (let i = 0; i < targets.length; i++) (targets[i] as Node).applyChange(changes[2 * i + 1])
    } finally {
      this.incoming = undefined
    }
    for (const id of freed) {
      const n = this.byId.get(id)
      if (!n) continue
      this.byId.delete(id)
      n.id = -1
    }
    // The active swept: what it did not free is reachable, so the drop records have done their work.
    if (freed.length) this.lastHeld.clear()
    return { roots: this.bindRoots(roots) }
  }

  /** Replaces the whole graph with a snapshot, keeping the identity of objects that keep their id and kind. */
  applySnapshot(body: SnapshotBody): Applied {
    const [roots, records] = body
    const plan = this.plan(records, roots, true)
    this.lastHeld.clear()
    const keep = new Set(plan.keys())
    try {
      this.execute(plan, records)
    } finally {
      this.incoming = undefined
    }
    this.byId.forEach((n, id) => {
      if (keep.has(id)) return
      this.byId.delete(id)
      n.id = -1
    })
    const before = new Set(this.roots.keys())
    this.roots.clear()
    return { roots: this.bindRoots(roots).filter((r) => !before.has(r)) }
  }

  /** Validates records and roots; returns the node each record lands in (reused or new). */
  private plan(records: NodeRecord[], roots: RootList, snapshot: boolean): Map<number, Node> {
    const plan = new Map<number, Node>()
    this.incoming = plan
    this.snapshotScope = snapshot
    try {
      if (roots.length % 2) throw new ProtocolError('TYPE', 'roots', 'roots are name/id pairs')
      const rootNameOf = new Map<number, string>()
      for (let i = 0; i < roots.length; i += 2) {
        if (typeof roots[i] !== 'string' || typeof roots[i + 1] !== 'number') throw new ProtocolError('TYPE', `roots[${i}]`, 'a root is a name and an id')
        rootNameOf.set(roots[i + 1] as number, roots[i] as string)
      }
      for (let i = 0; i < records.length; i++) {
        const rec = records[i] as unknown
        const where = `nodes[${i}]`
        if (!Array.isArray(rec) || rec.length < 3 || rec.length > 4) throw new ProtocolError('TYPE', where, 'a node is [id, kind, payload, tag?]')
        const [id, kind, payload, tag] = rec as [unknown, unknown, unknown, unknown]
        if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new ProtocolError('TYPE', `${where}[0]`, 'an id is a positive integer')
        if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind >= KIND_COUNT) throw new ProtocolError('TYPE', `${where}[1]`, `unknown kind ${String(kind)}`)
        const tagged = kind === Kind.Typed || kind === Kind.Class
        if (tagged !== (typeof tag === 'string')) throw new ProtocolError('TYPE', `${where}[3]`, tagged ? 'this kind needs a tag' : 'this kind takes no tag')
        if (kind === Kind.Typed || kind === Kind.Buffer) {
          if (!(payload instanceof Uint8Array)) throw new ProtocolError('TYPE', `${where}[2]`, 'a byte string is expected')
          const C = kind === Kind.Typed ? (TYPED_ARRAYS.get(tag as string) as unknown as { BYTES_PER_ELEMENT: number } | undefined) : { BYTES_PER_ELEMENT: 1 }
          if (!C) throw new ProtocolError('TYPE', `${where}[3]`, `unknown typed array ${String(tag)}`)
          if (payload.length % C.BYTES_PER_ELEMENT) throw new ProtocolError('TYPE', `${where}[2]`, 'byte length is not a whole number of elements')
        }
        if (plan.has(id)) throw new ProtocolError('MALFORMED', `${where}[0]`, `object ${id} appears twice`)
        plan.set(id, this.landing(id, kind as Kind, tag as string | undefined, payload, rootNameOf.get(id)))
      }
      for (let i = 0; i < records.length; i++) {
        const rec = records[i] as NodeRecord
        ;(plan.get(rec[0]) as Node).checkFull(rec[2], () => `nodes[${i}][2]`)
      }
      for (let i = 1; i < roots.length; i += 2) this.checkCell([roots[i] as number], false, () => 'roots', i)
    } catch (err) {
      this.incoming = undefined
      throw err
    } finally {
      this.snapshotScope = false
    }
    return plan
  }

  /** The node a record fills: the existing one when id, kind and size agree, a root placeholder, or a new shell. */
  private landing(id: number, kind: Kind, tag: string | undefined, payload: unknown, rootName: string | undefined): Node {
    const same = (n: Node | undefined): n is Node =>
      n !== undefined &&
      n.kind === kind &&
      (kind !== Kind.Typed || (n.tag === tag && (n.target as Uint8Array).byteLength === (payload as Uint8Array).length)) &&
      (kind !== Kind.Buffer || (n.target as ArrayBuffer).byteLength === (payload as Uint8Array).length)
    const existing = this.byId.get(id)
    if (same(existing)) return existing
    const placeholder = rootName !== undefined ? this.pending.get(rootName) : undefined
    if (same(placeholder) && placeholder.tag === tag) return placeholder
    const proto = kind === Kind.Class ? this.classes.prototypeOf(tag as string) : undefined
    if (kind === Kind.Class && !proto && !this.unknownClasses.has(tag as string)) this.unknownClasses.set(tag as string, false)
    const target = shellTarget(kind, tag, payload, proto)
    return makeNode(this.typeOf(kind, tag), target)
  }

  private execute(plan: Map<number, Node>, records: NodeRecord[]): void {
    for (const [id, n] of plan) {
      if (n.id !== id) {
        const old = this.byId.get(id)
        if (old && old !== n) old.id = -1
        n.id = id
        this.byId.set(id, n)
        this.nodes.set(n.target, n)
      } else n.clear()
      if (id >= this.nextId) this.nextId = id + 1
    }
    for (const rec of records) (plan.get(rec[0]) as Node).fill(rec[2])
  }

  private bindRoots(roots: RootList): string[] {
    const added: string[] = []
    for (let i = 0; i < roots.length; i += 2) {
      const name = roots[i] as string
      const n = this.byId.get(roots[i + 1] as number) as Node
      if (!this.roots.has(name)) added.push(name)
      this.roots.set(name, n)
      n.rootName ??= name
      const p = this.pending.get(name)
      if (p) {
        this.pending.delete(name)
        if (p !== n) p.rootName = undefined
      }
    }
    return added
  }
}

/** Calls `visit` for every value `o` (of `kind`) holds, with the step to it. */
function forEachChild(
  o: object,
  kind: Kind,
  visit: (v: unknown, s: PathStep) => void,
  fail: (s: PathStep, v: unknown) => never,
): void {
  switch (kind) {
    case Kind.Object:
    case Kind.NullProto:
    case Kind.Class: {
      const r = o as Record<string, unknown>
      for (const k of Object.keys(r)) visit(r[k], k)
      const syms = Object.getOwnPropertySymbols(o)
      if (syms.length) fail(String(syms[0]), syms[0])
      return
    }
    case Kind.Array: {
      const a = o as unknown[]
      for (let i = 0; i < a.length; i++) visit(a[i], i)
      return
    }
    case Kind.Map:
      for (const [k, v] of o as Map<unknown, unknown>) {
        visit(k, { mapKey: k })
        visit(v, { mapKey: k })
      }
      return
    case Kind.Set:
      for (const v of o as Set<unknown>) visit(v, { setMember: v })
      return
  }
}

/** Stores the raw object in place of a proxy inside a new (untracked) container. */
function replaceChild(holder: object, kind: Kind, step: PathStep, raw: object, g: Graph): void {
  if (kind === Kind.Map || kind === Kind.Set) {
    const entries = [...(holder as Map<unknown, unknown>)]
    if (kind === Kind.Map) {
      const m = holder as Map<unknown, unknown>
      m.clear()
      for (const [k, v] of entries) m.set(g.unwrap(k), g.unwrap(v))
    } else {
      const s = holder as Set<unknown>
      s.clear()
      for (const v of entries) s.add(g.unwrap(v))
    }
    return
  }
  if (typeof step === 'string' || typeof step === 'number') (holder as Record<string | number, unknown>)[step] = raw
}
