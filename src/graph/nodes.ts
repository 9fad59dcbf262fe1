import { ProtocolError } from '../errors.js'
import type { Graph } from './graph.js'
import { TYPED_ARRAYS } from './kinds.js'
import type { PathStep } from './path.js'
import { ArrayOp, HOLE, Kind, type Cell, type NodeRecord, type Ref } from './wire.js'

/** proxy → node, for every proxy any graph has handed out. */
export const proxyNodes = new WeakMap<object, Node>()

const hasOwn = Object.prototype.hasOwnProperty
/** Marks "no value here" inside recorded array ops (a delete). */
const ABSENT: unique symbol = Symbol('absent')
/** Arrays longer than this are refused from the wire (a hostile length would make later full encodes hang). */
export const MAX_ARRAY_LENGTH = 1 << 26

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null
}

/** Canonical array index for a property key, or -1. */
function toIndex(key: string | symbol): number {
  if (typeof key !== 'string') return -1
  const c = key.charCodeAt(0)
  if (c < 48 || c > 57) return -1
  const n = Number(key)
  return n >>> 0 === n && n !== 4294967295 && String(n) === key ? n : -1
}

/**
 * One tracked object: its id, its change record for the current batch, and —
 * because the node *is* the proxy handler — the traps that record changes.
 * A node with `id === -1` is known but not in the replication table (not yet
 * attached, or freed because it became unreachable); writes to it are not tracked.
 */
export abstract class Node {
  id = -1
  proxy: object | undefined
  ref: Ref | undefined
  /** Attached during the current batch: sent in full, so its own changes are not. */
  fresh = false
  /** In the graph's dirty queue for the current batch. */
  queued = false
  /** Mark of the last reachability sweep that reached it. */
  mark = 0
  /** Where it was first attached: a hint for error paths and leak reports. */
  parent: Node | null = null
  parentStep: PathStep | undefined
  rootName: string | undefined

  constructor(
    readonly graph: Graph,
    readonly target: object,
    readonly kind: Kind,
    public tag: string | undefined,
  ) {}

  getProxy(): object {
    let p = this.proxy
    if (!p) {
      p = new Proxy(this.target, this as ProxyHandler<object>)
      this.proxy = p
      proxyNodes.set(p, this)
    }
    return p
  }

  getRef(): Ref {
    return (this.ref ??= [this.id])
  }

  record(): NodeRecord {
    const payload = this.encodeFull()
    return this.tag === undefined ? [this.id, this.kind, payload] : [this.id, this.kind, payload, this.tag]
  }

  /** Queues this node for the current batch. */
  protected touch(): void {
    if (!this.queued && this.id >= 0) {
      this.queued = true
      this.graph.dirty.push(this)
      this.graph.scheduleFlush()
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

function fail(where: string, detail: string): never {
  throw new ProtocolError('TYPE', where, detail)
}

function checkArray(p: unknown, where: Where, what: string): unknown[] {
  if (!Array.isArray(p)) fail(where(), `${what} must be an array`)
  return p
}

/** Plain objects, null-prototype objects and registered class instances. */
export class ObjectNode extends Node {
  /** The first key changed in this batch; a Set is only made when a second key changes. */
  dirtyKey: string | undefined = undefined
  dirtyKeys: Set<string> | null = null

  private markKey(key: string): void {
    if (this.id < 0) return
    if (this.dirtyKey === undefined) this.dirtyKey = key
    else if (this.dirtyKey !== key) (this.dirtyKeys ??= new Set([this.dirtyKey])).add(key)
    this.touch()
  }

  get(t: Record<string, unknown>, key: string | symbol, receiver: unknown): unknown {
    const v = this.kind === Kind.Class ? Reflect.get(t, key, receiver) : t[key as string]
    return typeof v === 'object' && v !== null ? this.graph.wrap(v) : v
  }

  override set(t: Record<string, unknown>, key: string | symbol, value: unknown, receiver: unknown): boolean {
    const g = this.graph
    g.guardWrite(this, key)
    if (typeof key === 'symbol') throw g.unsupportedKey(this, key, 'a symbol-keyed property', 'Use a string key.')
    const own = hasOwn.call(t, key)
    if (!own) {
      if (key === '__proto__')
        throw g.unsupportedKey(this, key, 'a prototype change', 'Replicated objects keep their prototype; use a registered class instead.')
      if (this.kind === Kind.Class) {
        const setter = findSetter(t, key)
        if (setter) {
          setter.call(receiver, value)
          return true
        }
      }
    }
    const raw = g.prepare(value, this, key)
    const old = own ? t[key] : undefined
    if (own && Object.is(old, raw)) return true
    if (this.kind === Kind.Class || key === '__proto__') defineData(t, key, raw)
    else t[key] = raw
    this.markKey(key)
    if (isObject(old)) g.removedRefs++
    return true
  }

  override deleteProperty(t: Record<string, unknown>, key: string | symbol): boolean {
    this.graph.guardWrite(this, key)
    if (typeof key === 'symbol' || !hasOwn.call(t, key)) return Reflect.deleteProperty(t, key)
    const old = t[key]
    if (!delete t[key]) return false
    this.markKey(key)
    if (isObject(old)) this.graph.removedRefs++
    return true
  }

  override defineProperty(t: Record<string, unknown>, key: string | symbol, d: PropertyDescriptor): boolean {
    if (d.get || d.set)
      throw this.graph.unsupportedKey(this, key, 'an accessor property', 'Define getters on a registered class instead.')
    return this.set(t, key, d.value, this.proxy)
  }

  encodeFull(): unknown[] {
    const t = this.target as Record<string, unknown>
    const keys = Object.keys(t)
    const out: unknown[] = new Array(keys.length * 2)
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string
      out[2 * i] = k
      out[2 * i + 1] = this.cell(t[k], k)
    }
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as Record<string, unknown>
    const keys = this.dirtyKeys
    if (keys) {
      const out: unknown[] = []
      for (const k of keys) out.push(k, hasOwn.call(t, k) ? this.cell(t[k], k) : HOLE)
      return out
    }
    const k = this.dirtyKey
    return k === undefined ? undefined : [k, hasOwn.call(t, k) ? this.cell(t[k], k) : HOLE]
  }

  clearChanges(): void {
    this.dirtyKey = undefined
    this.dirtyKeys = null
  }

  children(visit: (v: unknown) => void): void {
    const t = this.target as Record<string, unknown>
    for (const k of Object.keys(t)) visit(t[k])
  }

  checkFull(p: unknown, where: Where): void {
    this.checkChange(p, where)
  }

  checkChange(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'an object payload')
    if (a.length % 2) fail(where(), 'an object payload needs key/value pairs')
    for (let i = 0; i < a.length; i += 2) {
      if (typeof a[i] !== 'string') fail(at(where, i), 'a key must be a string')
      this.graph.checkCell(a[i + 1], true, where, i + 1)
    }
  }

  fill(p: unknown[]): void {
    this.applyChange(p)
  }

  applyChange(p: unknown[]): void {
    const t = this.target as Record<string, unknown>
    const g = this.graph
    for (let i = 0; i < p.length; i += 2) {
      const k = p[i] as string
      const c = p[i + 1] as Cell
      if (Array.isArray(c) && c.length === 0) delete t[k]
      else if (this.kind === Kind.Class || k === '__proto__') defineData(t, k, g.resolve(c))
      else t[k] = g.resolve(c)
    }
  }

  clear(): void {
    const t = this.target as Record<string, unknown>
    for (const k of Object.keys(t)) delete t[k]
  }
}

/** Data properties only; never runs a setter, never reaches a prototype. */
function defineData(t: object, key: string, value: unknown): void {
  Object.defineProperty(t, key, { value, writable: true, enumerable: true, configurable: true })
}

function findSetter(t: object, key: string): ((v: unknown) => void) | undefined {
  for (let o = Object.getPrototypeOf(t) as object | null; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    const d = Object.getOwnPropertyDescriptor(o, key)
    if (d) return d.set
  }
  return undefined
}

/** The node behind a proxy `this` inside an intercepted method. */
function nodeOf<N extends Node>(self: unknown): N {
  const n = proxyNodes.get(self as object)
  if (!n) throw new TypeError('Understudy: method called on an object that is not a tracked proxy')
  return n as N
}

function toInt(v: unknown, dflt: number): number {
  if (v === undefined) return dflt
  const n = Math.trunc(Number(v))
  return Number.isNaN(n) ? 0 : n
}

function clampIndex(rel: number, len: number): number {
  return rel < 0 ? Math.max(len + rel, 0) : Math.min(rel, len)
}

const ARRAY_MUTATORS = new Map<string | symbol, (...args: never[]) => unknown>(
  Object.entries({
    push(this: unknown[], ...items: unknown[]): number {
      const n = nodeOf<ArrayNode>(this)
      n.graph.guardWrite(n, 'push', true)
      const t = n.target as unknown[]
      const start = t.length
      const raws = n.graph.prepareAll(items, n, start)
      n.insert(start, 0, raws)
      return t.length
    },
    pop(this: unknown[]): unknown {
      const n = nodeOf<ArrayNode>(this)
      n.graph.guardWrite(n, 'pop', true)
      const t = n.target as unknown[]
      if (!t.length) return undefined
      const v = t.pop()
      n.recordLength(t.length + 1, t.length)
      if (isObject(v)) n.graph.removedRefs++
      return n.graph.wrap(v)
    },
    shift(this: unknown[]): unknown {
      return (ARRAY_MUTATORS.get('splice') as (this: unknown, ...a: unknown[]) => unknown[]).call(this, 0, 1)[0]
    },
    unshift(this: unknown[], ...items: unknown[]): number {
      ;(ARRAY_MUTATORS.get('splice') as (this: unknown, ...a: unknown[]) => unknown[]).call(this, 0, 0, ...items)
      return (nodeOf<ArrayNode>(this).target as unknown[]).length
    },
    splice(this: unknown[], ...args: unknown[]): unknown[] {
      const n = nodeOf<ArrayNode>(this)
      const g = n.graph
      g.guardWrite(n, 'splice', true)
      const t = n.target as unknown[]
      const len = t.length
      const start = clampIndex(toInt(args[0], 0), len)
      const dc = args.length === 0 ? 0 : args.length === 1 ? len - start : Math.min(Math.max(toInt(args[1], 0), 0), len - start)
      const raws = g.prepareAll(args.slice(2), n, start)
      const removed = n.insert(start, dc, raws)
      for (let i = 0; i < removed.length; i++) {
        if (isObject(removed[i])) g.removedRefs++
        removed[i] = g.wrap(removed[i])
      }
      return removed
    },
    sort(this: unknown[], compare?: (a: unknown, b: unknown) => number): unknown[] {
      const n = nodeOf<ArrayNode>(this)
      const g = n.graph
      g.guardWrite(n, 'sort', true)
      ;(n.target as unknown[]).sort(compare ? (a, b) => compare(g.wrap(a), g.wrap(b)) : undefined)
      n.recordRange(0, (n.target as unknown[]).length)
      return this
    },
    reverse(this: unknown[]): unknown[] {
      const n = nodeOf<ArrayNode>(this)
      n.graph.guardWrite(n, 'reverse', true)
      ;(n.target as unknown[]).reverse()
      n.recordRange(0, (n.target as unknown[]).length)
      return this
    },
    fill(this: unknown[], value: unknown, start?: unknown, end?: unknown): unknown[] {
      const n = nodeOf<ArrayNode>(this)
      n.graph.guardWrite(n, 'fill', true)
      const t = n.target as unknown[]
      const s = clampIndex(toInt(start, 0), t.length)
      const e = clampIndex(toInt(end, t.length), t.length)
      const raw = n.graph.prepare(value, n, s)
      for (let i = s; i < e; i++) if (isObject(t[i])) n.graph.removedRefs++
      t.fill(raw, s, e)
      n.recordRange(s, e)
      return this
    },
    copyWithin(this: unknown[], target: number, start: number, end?: number): unknown[] {
      const n = nodeOf<ArrayNode>(this)
      n.graph.guardWrite(n, 'copyWithin', true)
      const t = n.target as unknown[]
      n.graph.removedRefs += t.length
      t.copyWithin(target, start, end)
      n.recordRange(0, t.length)
      return this
    },
  }),
)

/**
 * Arrays, including arrays of shared references. Plain index writes are
 * recorded as dirty indices and read at flush (so repeated writes coalesce);
 * once a batch shifts elements (splice, shift, unshift) the node switches to an
 * op log, so a splice costs O(inserted) on the wire, not O(length).
 */
export class ArrayNode extends Node {
  dirtyIdx: Set<number> | null = null
  /** Lowest length reached in this batch (index mode); Infinity when it never shrank. */
  shrunkTo = Infinity
  /** The length the standby has: the length at the last flush. */
  syncedLength = 0
  /** Op log (raw values; encoded at flush) once the batch shifted elements. */
  ops: unknown[] | null = null

  get(t: unknown[], key: string | symbol, receiver: unknown): unknown {
    const v = t[key as unknown as number]
    if (typeof v === 'object' && v !== null) return this.graph.wrap(v)
    if (typeof v === 'function') return ARRAY_MUTATORS.get(key) ?? v
    return v
  }

  override set(t: unknown[], key: string | symbol, value: unknown): boolean {
    const g = this.graph
    g.guardWrite(this, key)
    const idx = toIndex(key)
    if (idx >= 0) {
      const raw = g.prepare(value, this, idx)
      const had = idx in t
      const old = t[idx]
      if (had && Object.is(old, raw)) return true
      t[idx] = raw
      this.recordSet(idx)
      if (isObject(old)) g.removedRefs++
      return true
    }
    if (key === 'length') {
      const oldLen = t.length
      t.length = value as number
      if (t.length < oldLen) g.removedRefs += oldLen - t.length
      if (t.length !== oldLen) this.recordLength(oldLen, t.length)
      return true
    }
    throw g.unsupportedKey(this, key, 'a non-index property on an array', 'Arrays replicate their elements only; hold named fields in an object.')
  }

  override deleteProperty(t: unknown[], key: string | symbol): boolean {
    this.graph.guardWrite(this, key)
    const idx = toIndex(key)
    if (idx < 0 || !(idx in t)) return Reflect.deleteProperty(t, key)
    const old = t[idx]
    delete t[idx]
    this.recordSet(idx)
    if (isObject(old)) this.graph.removedRefs++
    return true
  }

  override defineProperty(t: unknown[], key: string | symbol, d: PropertyDescriptor): boolean {
    if (d.get || d.set) throw this.graph.unsupportedKey(this, key, 'an accessor property', 'Store plain values.')
    return this.set(t, key, d.value)
  }

  recordSet(idx: number): void {
    if (this.id < 0) return
    if (this.ops) {
      const t = this.target as unknown[]
      this.ops.push(ArrayOp.Set, idx, idx in t ? t[idx] : ABSENT)
    } else (this.dirtyIdx ??= new Set()).add(idx)
    this.touch()
  }

  recordRange(from: number, to: number): void {
    for (let i = from; i < to; i++) this.recordSet(i)
  }

  recordLength(oldLen: number, newLen: number): void {
    if (this.id < 0) return
    if (this.ops) this.ops.push(ArrayOp.Length, newLen)
    else if (newLen < oldLen && newLen < this.shrunkTo) this.shrunkTo = newLen
    this.touch()
  }

  /** Splices raw values in and records it: as index sets when nothing shifts, else as a splice op. */
  insert(start: number, deleteCount: number, raws: unknown[]): unknown[] {
    const t = this.target as unknown[]
    const tail = start + deleteCount === t.length
    if (raws.length === deleteCount || (tail && !this.ops)) {
      const oldLen = t.length
      const removed = spliceInto(t, start, deleteCount, raws)
      if (t.length !== oldLen) this.recordLength(oldLen, t.length)
      this.recordRange(start, start + raws.length)
      return removed
    }
    if (this.id >= 0) this.toOps()
    const removed = spliceInto(t, start, deleteCount, raws)
    if (this.ops) {
      this.ops.push(ArrayOp.Splice, start, deleteCount, raws.length)
      for (const r of raws) this.ops.push(r)
      this.touch()
    }
    return removed
  }

  /** Switches this batch to an op log, first writing down what index mode had recorded. */
  private toOps(): void {
    if (this.ops) return
    const t = this.target as unknown[]
    const ops: unknown[] = []
    if (this.shrunkTo < this.syncedLength) ops.push(ArrayOp.Length, this.shrunkTo)
    ops.push(ArrayOp.Length, t.length)
    if (this.dirtyIdx) for (const i of this.dirtyIdx) if (i < t.length) ops.push(ArrayOp.Set, i, i in t ? t[i] : ABSENT)
    this.ops = ops
    this.dirtyIdx = null
    this.shrunkTo = Infinity
  }

  encodeFull(): Cell[] {
    const t = this.target as unknown[]
    const len = t.length
    const out: Cell[] = new Array(len)
    for (let i = 0; i < len; i++) out[i] = i in t ? this.cell(t[i], i) : HOLE
    this.syncedLength = len
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as unknown[]
    const out: unknown[] = []
    if (this.ops) {
      const ops = this.ops
      for (let i = 0; i < ops.length; ) {
        const op = ops[i] as number
        if (op === ArrayOp.Set) {
          const idx = ops[i + 1] as number
          const v = ops[i + 2]
          out.push(op, idx, v === ABSENT ? HOLE : this.cell(v, idx))
          i += 3
        } else if (op === ArrayOp.Length) {
          out.push(op, ops[i + 1])
          i += 2
        } else {
          const start = ops[i + 1] as number
          const n = ops[i + 3] as number
          out.push(op, start, ops[i + 2], n)
          for (let k = 0; k < n; k++) out.push(this.cell(ops[i + 4 + k], start + k))
          i += 4 + n
        }
      }
    } else {
      const base = Math.min(this.shrunkTo, this.syncedLength)
      if (base < this.syncedLength) out.push(ArrayOp.Length, base)
      if (t.length !== base) out.push(ArrayOp.Length, t.length)
      if (this.dirtyIdx)
        for (const i of this.dirtyIdx) if (i < t.length) out.push(ArrayOp.Set, i, i in t ? this.cell(t[i], i) : HOLE)
    }
    this.syncedLength = t.length
    return out.length ? out : undefined
  }

  clearChanges(): void {
    this.dirtyIdx = null
    this.ops = null
    this.shrunkTo = Infinity
  }

  children(visit: (v: unknown) => void): void {
    const t = this.target as unknown[]
    for (let i = 0; i < t.length; i++) visit(t[i])
  }

  checkFull(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'an array payload')
    if (a.length > MAX_ARRAY_LENGTH) throw new ProtocolError('OVERSIZED', where(), `array of ${a.length} elements`)
    for (let i = 0; i < a.length; i++) this.graph.checkCell(a[i], true, where, i)
  }

  checkChange(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'array ops')
    const index = (v: unknown, pos: number): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= MAX_ARRAY_LENGTH)
        throw new ProtocolError('OVERSIZED', at(where, pos), `index or length ${String(v)} out of range`)
      return v
    }
    for (let i = 0; i < a.length; ) {
      const op = a[i]
      if (op === ArrayOp.Set) {
        index(a[i + 1], i + 1)
        if (i + 2 >= a.length) throw new ProtocolError('TRUNCATED', at(where, i), 'SET needs an index and a value')
        this.graph.checkCell(a[i + 2], true, where, i + 2)
        i += 3
      } else if (op === ArrayOp.Length) {
        index(a[i + 1], i + 1)
        i += 2
      } else if (op === ArrayOp.Splice) {
        index(a[i + 1], i + 1)
        index(a[i + 2], i + 2)
        const n = index(a[i + 3], i + 3)
        if (i + 4 + n > a.length) throw new ProtocolError('TRUNCATED', at(where, i), 'SPLICE has fewer values than it says')
        for (let k = 0; k < n; k++) this.graph.checkCell(a[i + 4 + k], false, where, i + 4 + k)
        i += 4 + n
      } else fail(at(where, i), `unknown array op ${String(op)}`)
    }
  }

  fill(p: Cell[]): void {
    const t = this.target as unknown[]
    const g = this.graph
    t.length = p.length
    for (let i = 0; i < p.length; i++) {
      const c = p[i]
      if (Array.isArray(c) && c.length === 0) delete t[i]
      else t[i] = g.resolve(c)
    }
    this.syncedLength = t.length
  }

  applyChange(a: unknown[]): void {
    const t = this.target as unknown[]
    const g = this.graph
    for (let i = 0; i < a.length; ) {
      const op = a[i]
      if (op === ArrayOp.Set) {
        const idx = a[i + 1] as number
        const c = a[i + 2] as Cell
        if (Array.isArray(c) && c.length === 0) delete t[idx]
        else t[idx] = g.resolve(c)
        i += 3
      } else if (op === ArrayOp.Length) {
        t.length = a[i + 1] as number
        i += 2
      } else {
        const n = a[i + 3] as number
        const vals = new Array<unknown>(n)
        for (let k = 0; k < n; k++) vals[k] = g.resolve(a[i + 4 + k] as Cell)
        spliceInto(t, a[i + 1] as number, a[i + 2] as number, vals)
        i += 4 + n
      }
    }
    if (t.length > MAX_ARRAY_LENGTH) throw new ProtocolError('OVERSIZED', `object ${this.id}`, `array grew to ${t.length}`)
    this.syncedLength = t.length
  }

  clear(): void {
    ;(this.target as unknown[]).length = 0
  }
}

/** `Array.prototype.splice` without spreading huge argument lists onto the stack. */
function spliceInto(t: unknown[], start: number, deleteCount: number, items: unknown[]): unknown[] {
  if (items.length < 10_000) return t.splice(start, deleteCount, ...items)
  const removed = t.splice(start, deleteCount)
  const tail = t.splice(start)
  for (const v of items) t.push(v)
  for (const v of tail) t.push(v)
  return removed
}

/** Methods on a collection/Date/typed-array proxy run against the real object (internal slots). */
function readerFor(fn: (...a: unknown[]) => unknown): (...a: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]) {
    return fn.apply(nodeOf(this).target, args)
  }
}

function* wrapIter(g: Graph, it: Iterable<unknown>): IterableIterator<unknown> {
  for (const v of it) yield g.wrap(v)
}
function* wrapPairs(g: Graph, it: Iterable<[unknown, unknown]>): IterableIterator<[unknown, unknown]> {
  for (const [k, v] of it) yield [g.wrap(k), g.wrap(v)]
}

/** Shared logic of Map and Set nodes: dirty members, deletions, whole resets. */
abstract class CollectionNode extends Node {
  dirtyKeys: Set<unknown> | null = null
  deleted: Set<unknown> | null = null
  reset = false

  get(t: Map<unknown, unknown>, key: string | symbol): unknown {
    if (key === 'size') return t.size
    const m = this.methods().get(key)
    if (m) return m
    return Reflect.get(t, key, t)
  }

  protected abstract methods(): Map<string | symbol, unknown>

  markKey(k: unknown): void {
    if (this.id < 0) return
    ;(this.dirtyKeys ??= new Set()).add(k)
    this.touch()
  }

  markDeleted(k: unknown): void {
    if (this.id < 0) return
    ;(this.deleted ??= new Set()).add(k)
    this.markKey(k)
  }

  markReset(): void {
    if (this.id < 0) return
    this.reset = true
    this.touch()
  }

  /** True when the batch must be sent as the whole content to keep insertion order. */
  protected needsReset(has: (k: unknown) => boolean): boolean {
    if (this.reset) return true
    if (this.deleted) for (const k of this.deleted) if (has(k)) return true
    return false
  }

  clearChanges(): void {
    this.dirtyKeys = null
    this.deleted = null
    this.reset = false
  }
}

const MAP_METHODS = new Map<string | symbol, unknown>([
  ['get', function (this: unknown, k: unknown) {
    const n = nodeOf<MapNode>(this)
    return n.graph.wrap((n.target as Map<unknown, unknown>).get(n.graph.unwrap(k)))
  }],
  ['has', function (this: unknown, k: unknown) {
    const n = nodeOf<MapNode>(this)
    return (n.target as Map<unknown, unknown>).has(n.graph.unwrap(k))
  }],
  ['set', function (this: unknown, k: unknown, v: unknown) {
    const n = nodeOf<MapNode>(this)
    const g = n.graph
    g.guardWrite(n, 'set', true)
    const t = n.target as Map<unknown, unknown>
    const rk = g.prepare(k, n, { mapKey: k })
    const rv = g.prepare(v, n, { mapKey: k })
    const had = t.has(rk)
    const old = t.get(rk)
    if (had && Object.is(old, rv)) return this
    t.set(rk, rv)
    n.markKey(rk)
    if (isObject(old)) g.removedRefs++
    return this
  }],
  ['delete', function (this: unknown, k: unknown) {
    const n = nodeOf<MapNode>(this)
    const g = n.graph
    g.guardWrite(n, 'delete', true)
    const t = n.target as Map<unknown, unknown>
    const rk = g.unwrap(k)
    if (!t.has(rk)) return false
    const old = t.get(rk)
    t.delete(rk)
    n.markDeleted(rk)
    if (isObject(old)) g.removedRefs++
    if (isObject(rk)) g.removedRefs++
    return true
  }],
  ['clear', function (this: unknown) {
    const n = nodeOf<MapNode>(this)
    n.graph.guardWrite(n, 'clear', true)
    const t = n.target as Map<unknown, unknown>
    if (!t.size) return
    n.graph.removedRefs += t.size
    t.clear()
    n.markReset()
  }],
  ['forEach', function (this: unknown, cb: (v: unknown, k: unknown, m: unknown) => void, thisArg?: unknown) {
    const n = nodeOf<MapNode>(this)
    const g = n.graph
    ;(n.target as Map<unknown, unknown>).forEach((v, k) => cb.call(thisArg, g.wrap(v), g.wrap(k), this))
  }],
  ['keys', function (this: unknown) {
    const n = nodeOf<MapNode>(this)
    return wrapIter(n.graph, (n.target as Map<unknown, unknown>).keys())
  }],
  ['values', function (this: unknown) {
    const n = nodeOf<MapNode>(this)
    return wrapIter(n.graph, (n.target as Map<unknown, unknown>).values())
  }],
  ['entries', function (this: unknown) {
    const n = nodeOf<MapNode>(this)
    return wrapPairs(n.graph, (n.target as Map<unknown, unknown>).entries())
  }],
])
MAP_METHODS.set(Symbol.iterator, MAP_METHODS.get('entries'))

export class MapNode extends CollectionNode {
  protected methods(): Map<string | symbol, unknown> {
    return MAP_METHODS
  }

  encodeFull(): Cell[] {
    const out: Cell[] = []
    for (const [k, v] of this.target as Map<unknown, unknown>) out.push(this.cell(k, { mapKey: k }), this.cell(v, { mapKey: k }))
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as Map<unknown, unknown>
    if (this.needsReset((k) => t.has(k))) return [1, ...this.encodeFull()]
    if (!this.dirtyKeys) return undefined
    const out: unknown[] = [0]
    for (const k of this.dirtyKeys) out.push(this.cell(k, { mapKey: k }), t.has(k) ? this.cell(t.get(k), { mapKey: k }) : HOLE)
    return out
  }

  children(visit: (v: unknown) => void): void {
    for (const [k, v] of this.target as Map<unknown, unknown>) {
      visit(k)
      visit(v)
    }
  }

  checkFull(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'a Map payload')
    if (a.length % 2) fail(where(), 'a Map payload needs key/value pairs')
    for (let i = 0; i < a.length; i++) this.graph.checkCell(a[i], false, where, i)
  }

  checkChange(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'a Map change')
    if (a[0] !== 0 && a[0] !== 1) fail(where(), 'a Map change starts with 0 or 1')
    if (a.length % 2 !== 1) fail(where(), 'a Map change needs key/value pairs')
    for (let i = 1; i < a.length; i++) this.graph.checkCell(a[i], i % 2 === 0 && a[0] === 0, where, i)
  }

  fill(p: Cell[]): void {
    const t = this.target as Map<unknown, unknown>
    const g = this.graph
    t.clear()
    for (let i = 0; i < p.length; i += 2) t.set(g.resolve(p[i] as Cell), g.resolve(p[i + 1] as Cell))
  }

  applyChange(p: unknown[]): void {
    if (p[0] === 1) return this.fill(p.slice(1) as Cell[])
    const t = this.target as Map<unknown, unknown>
    const g = this.graph
    for (let i = 1; i < p.length; i += 2) {
      const k = g.resolve(p[i] as Cell)
      const c = p[i + 1] as Cell
      if (Array.isArray(c) && c.length === 0) t.delete(k)
      else t.set(k, g.resolve(c))
    }
  }

  clear(): void {
    ;(this.target as Map<unknown, unknown>).clear()
  }
}

const SET_METHODS = new Map<string | symbol, unknown>([
  ['has', function (this: unknown, v: unknown) {
    const n = nodeOf<SetNode>(this)
    return (n.target as Set<unknown>).has(n.graph.unwrap(v))
  }],
  ['add', function (this: unknown, v: unknown) {
    const n = nodeOf<SetNode>(this)
    const g = n.graph
    g.guardWrite(n, 'add', true)
    const t = n.target as Set<unknown>
    const rv = g.prepare(v, n, { setMember: v })
    if (t.has(rv)) return this
    t.add(rv)
    n.markKey(rv)
    return this
  }],
  ['delete', function (this: unknown, v: unknown) {
    const n = nodeOf<SetNode>(this)
    const g = n.graph
    g.guardWrite(n, 'delete', true)
    const t = n.target as Set<unknown>
    const rv = g.unwrap(v)
    if (!t.delete(rv)) return false
    n.markDeleted(rv)
    if (isObject(rv)) g.removedRefs++
    return true
  }],
  ['clear', function (this: unknown) {
    const n = nodeOf<SetNode>(this)
    n.graph.guardWrite(n, 'clear', true)
    const t = n.target as Set<unknown>
    if (!t.size) return
    n.graph.removedRefs += t.size
    t.clear()
    n.markReset()
  }],
  ['forEach', function (this: unknown, cb: (v: unknown, k: unknown, s: unknown) => void, thisArg?: unknown) {
    const n = nodeOf<SetNode>(this)
    const g = n.graph
    ;(n.target as Set<unknown>).forEach((v) => {
      const w = g.wrap(v)
      cb.call(thisArg, w, w, this)
    })
  }],
  ['values', function (this: unknown) {
    const n = nodeOf<SetNode>(this)
    return wrapIter(n.graph, (n.target as Set<unknown>).values())
  }],
  ['entries', function (this: unknown) {
    const n = nodeOf<SetNode>(this)
    return wrapPairs(n.graph, (n.target as Set<unknown>).entries())
  }],
])
SET_METHODS.set('keys', SET_METHODS.get('values'))
SET_METHODS.set(Symbol.iterator, SET_METHODS.get('values'))

export class SetNode extends CollectionNode {
  protected methods(): Map<string | symbol, unknown> {
    return SET_METHODS
  }

  encodeFull(): Cell[] {
    const out: Cell[] = []
    for (const v of this.target as Set<unknown>) out.push(this.cell(v, { setMember: v }))
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as Set<unknown>
    if (this.needsReset((k) => t.has(k))) return [1, ...this.encodeFull()]
    if (!this.dirtyKeys) return undefined
    const out: unknown[] = [0]
    for (const v of this.dirtyKeys) {
      const present = t.has(v)
      out.push(this.cell(v, { setMember: v }), present ? 1 : 0)
    }
    return out.length > 1 ? out : undefined
  }

  children(visit: (v: unknown) => void): void {
    for (const v of this.target as Set<unknown>) visit(v)
  }

  checkFull(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'a Set payload')
    for (let i = 0; i < a.length; i++) this.graph.checkCell(a[i], false, where, i)
  }

  checkChange(p: unknown, where: Where): void {
    const a = checkArray(p, where, 'a Set change')
    if (a[0] === 1) {
      for (let i = 1; i < a.length; i++) this.graph.checkCell(a[i], false, where, i)
      return
    }
    if (a[0] !== 0 || a.length % 2 !== 1) fail(where(), 'a Set change is 0 followed by member/present pairs')
    for (let i = 1; i < a.length; i += 2) {
      this.graph.checkCell(a[i], false, where, i)
      if (a[i + 1] !== 0 && a[i + 1] !== 1) fail(at(where, i + 1), 'present must be 0 or 1')
    }
  }

  fill(p: Cell[]): void {
    const t = this.target as Set<unknown>
    t.clear()
    for (const c of p) t.add(this.graph.resolve(c))
  }

  applyChange(p: unknown[]): void {
    if (p[0] === 1) return this.fill(p.slice(1) as Cell[])
    const t = this.target as Set<unknown>
    for (let i = 1; i < p.length; i += 2) {
      const v = this.graph.resolve(p[i] as Cell)
      if (p[i + 1] === 1) t.add(v)
      else t.delete(v)
    }
  }

  clear(): void {
    ;(this.target as Set<unknown>).clear()
  }
}

const DATE_METHODS = new Map<string | symbol, unknown>()
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  const fn = (Date.prototype as unknown as Record<string, unknown>)[name]
  if (typeof fn !== 'function' || name === 'constructor') continue
  DATE_METHODS.set(
    name,
    name.startsWith('set')
      ? function (this: unknown, ...args: unknown[]) {
          const n = nodeOf<DateNode>(this)
          n.graph.guardWrite(n, name, true)
          const r = (fn as (...a: unknown[]) => unknown).apply(n.target, args)
          n.changed = true
          n.markChanged()
          return r
        }
      : readerFor(fn as (...a: unknown[]) => unknown),
  )
}
for (const sym of [Symbol.toPrimitive]) {
  const fn = (Date.prototype as unknown as Record<symbol, (...a: unknown[]) => unknown>)[sym]
  if (fn) DATE_METHODS.set(sym, readerFor(fn))
}

export class DateNode extends Node {
  changed = false

  get(t: Date, key: string | symbol): unknown {
    return DATE_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  markChanged(): void {
    this.touch()
  }

  encodeFull(): number {
    return (this.target as Date).getTime()
  }

  encodeChange(): number | undefined {
    return this.changed ? this.encodeFull() : undefined
  }

  clearChanges(): void {
    this.changed = false
  }

  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (typeof p !== 'number') fail(where(), 'a Date payload is a number')
  }

  checkChange(p: unknown, where: Where): void {
    this.checkFull(p, where)
  }

  fill(p: number): void {
    ;(this.target as Date).setTime(p)
  }

  applyChange(p: number): void {
    this.fill(p)
  }

  clear(): void {}
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

const TYPED_MUTATORS = new Set(['set', 'fill', 'copyWithin', 'reverse', 'sort'])
const TYPED_METHODS = new Map<string | symbol, unknown>()
{
  const proto = Object.getPrototypeOf(Int8Array.prototype) as Record<string | symbol, unknown>
  for (const key of [...Object.getOwnPropertyNames(proto), Symbol.iterator] as (string | symbol)[]) {
    const d = Object.getOwnPropertyDescriptor(proto, key)
    if (!d || typeof d.value !== 'function' || key === 'constructor') continue
    const fn = d.value as (...a: unknown[]) => unknown
    TYPED_METHODS.set(
      key,
      typeof key === 'string' && TYPED_MUTATORS.has(key)
        ? function (this: unknown, ...args: unknown[]) {
            const n = nodeOf<TypedNode>(this)
            n.graph.guardWrite(n, key, true)
            fn.apply(n.target, args)
            n.markRange(0, (n.target as Uint8Array).length)
            return key === 'set' ? undefined : this
          }
        : readerFor(fn),
    )
  }
}

/** Typed arrays: changes are sent as the byte range between the lowest and highest written element. */
export class TypedNode extends Node {
  lo = Infinity
  hi = -1

  get(t: Uint8Array, key: string | symbol): unknown {
    if (toIndex(key) >= 0) return t[key as unknown as number]
    return TYPED_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  override set(t: Uint8Array, key: string | symbol, value: unknown): boolean {
    this.graph.guardWrite(this, key)
    const idx = toIndex(key)
    if (idx < 0)
      throw this.graph.unsupportedKey(this, key, 'a non-index property on a typed array', 'Typed arrays replicate their elements only.')
    if (idx >= t.length) return true
    ;(t as unknown as Record<number, unknown>)[idx] = value
    this.markRange(idx, idx + 1)
    return true
  }

  markRange(from: number, to: number): void {
    if (this.id < 0) return
    if (from < this.lo) this.lo = from
    if (to > this.hi) this.hi = to
    this.touch()
  }

  private get bpe(): number {
    return (this.target as Uint8Array).BYTES_PER_ELEMENT
  }

  encodeFull(): Uint8Array {
    return bytesOf(this.target as Uint8Array)
  }

  encodeChange(): unknown[] | undefined {
    if (this.hi < 0) return undefined
    const b = this.bpe
    return [this.lo * b, bytesOf(this.target as Uint8Array).subarray(this.lo * b, this.hi * b)]
  }

  clearChanges(): void {
    this.lo = Infinity
    this.hi = -1
  }

  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (!(p instanceof Uint8Array)) fail(where(), 'a typed-array payload is a byte string')
    if (p.length !== (this.target as Uint8Array).byteLength) fail(where(), `expected ${(this.target as Uint8Array).byteLength} bytes, got ${p.length}`)
  }

  checkChange(p: unknown, where: Where): void {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || !(p[1] instanceof Uint8Array))
      fail(where(), 'a typed-array change is [byteOffset, bytes]')
    const [off, bytes] = p as [number, Uint8Array]
    if (!Number.isInteger(off) || off < 0 || off + bytes.length > (this.target as Uint8Array).byteLength)
      throw new ProtocolError('OVERSIZED', where(), 'byte range outside the typed array')
  }

  fill(p: Uint8Array): void {
    bytesOf(this.target as Uint8Array).set(p)
  }

  applyChange(p: [number, Uint8Array]): void {
    bytesOf(this.target as Uint8Array).set(p[1], p[0])
  }

  clear(): void {}
}

const BUFFER_METHODS = new Map<string | symbol, unknown>(
  ['slice'].map((k) => [k, readerFor((ArrayBuffer.prototype as unknown as Record<string, (...a: unknown[]) => unknown>)[k] as (...a: unknown[]) => unknown)]),
)

/**
 * ArrayBuffers replicate their content when attached. Writes through other
 * views are invisible to a proxy, so they are not tracked: keep bytes you
 * change in a typed array.
 */
export class BufferNode extends Node {
  get(t: ArrayBuffer, key: string | symbol): unknown {
    return BUFFER_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  encodeFull(): Uint8Array {
    return bytesOf(this.target as ArrayBuffer)
  }

  encodeChange(): undefined {
    return undefined
  }

  clearChanges(): void {}
  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (!(p instanceof Uint8Array)) fail(where(), 'an ArrayBuffer payload is a byte string')
    if (p.length !== (this.target as ArrayBuffer).byteLength) fail(where(), 'ArrayBuffer size mismatch')
  }

  checkChange(p: unknown, where: Where): void {
    this.checkFull(p, where)
  }

  fill(p: Uint8Array): void {
    new Uint8Array(this.target as ArrayBuffer).set(p)
  }

  applyChange(p: Uint8Array): void {
    this.fill(p)
  }

  clear(): void {}
}

/** Creates an empty object of `kind` to be filled from the wire, and the node for it. */
export function shellTarget(kind: Kind, tag: string | undefined, payload: unknown, proto: object | undefined): object {
  switch (kind) {
    case Kind.Object:
      return {}
    case Kind.NullProto:
      return Object.create(null) as object
    case Kind.Class:
      return Object.create(proto ?? Object.prototype) as object
    case Kind.Array:
      return []
    case Kind.Map:
      return new Map()
    case Kind.Set:
      return new Set()
    case Kind.Date:
      return new Date(Number.NaN)
    case Kind.Typed: {
      const C = TYPED_ARRAYS.get(tag as string) as unknown as new (n: number) => Uint8Array
      return new C((payload as Uint8Array).length / (C as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT)
    }
    case Kind.Buffer:
      return new ArrayBuffer((payload as Uint8Array).length)
  }
}

export function makeNode(graph: Graph, target: object, kind: Kind, tag: string | undefined): Node {
  switch (kind) {
    case Kind.Array:
      return new ArrayNode(graph, target, kind, tag)
    case Kind.Map:
      return new MapNode(graph, target, kind, tag)
    case Kind.Set:
      return new SetNode(graph, target, kind, tag)
    case Kind.Date:
      return new DateNode(graph, target, kind, tag)
    case Kind.Typed:
      return new TypedNode(graph, target, kind, tag)
    case Kind.Buffer:
      return new BufferNode(graph, target, kind, tag)
    default:
      return new ObjectNode(graph, target, kind, tag)
  }
}
