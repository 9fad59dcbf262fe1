/** Arrays, including arrays of shared references. */
import { ProtocolError } from '../../errors.js'
import { MAX_ARRAY_LENGTH, Node, at, checkArray, fail, nodeOf, toIndex, type Where } from './base.js'
import { ArrayOp, HOLE, type Cell } from '../wire.js'

/** Marks "no value here" inside recorded array ops (a delete). */
const ABSENT: unique symbol = Symbol('absent')

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
      n.graph.dropped(v, n, t.length)
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
      n.droppedAll(removed, start)
      for (let i = 0; i < removed.length; i++) removed[i] = g.wrap(removed[i])
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
      n.droppedAll(t, s, s, e)
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
  /**
   * The node of the object last read at each index, a cache in front of the
   * graph's WeakMap: 8 bytes per element of an array read through its proxy.
   * A read checks that the index still holds that object; writes clear their
   * index and anything that moves elements drops the cache, so it never
   * keeps a node alive that the array no longer holds.
   */
  kids: (Node | undefined)[] | null = null

  get(t: unknown[], key: string | symbol, receiver: unknown): unknown {
    const v = t[key as unknown as number]
    if (typeof v === 'object' && v !== null) {
      // The node last read at this index, when it still holds the same object: no WeakMap lookup.
      const kids = this.kids ?? (this.kids = [])
      const k = kids[key as unknown as number]
      if (k !== undefined && k.target === v) return k.proxy ?? k.getProxy()
      const n = this.type.graph.nodeFor(v)
      if (n === undefined) return v
      if (typeof key === 'string') kids[key as unknown as number] = n
      return n.proxy ?? n.getProxy()
    }
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
      g.dropped(old, this, idx)
      return true
    }
    if (key === 'length') {
      const oldLen = t.length
      const to = Number(value)
      const cut = to >= 0 && to < oldLen ? t.slice(to) : undefined
      t.length = value as number
      if (cut) this.droppedAll(cut, to)
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
    this.graph.dropped(old, this, idx)
    return true
  }

  override defineProperty(t: unknown[], key: string | symbol, d: PropertyDescriptor): boolean {
    if (d.get || d.set) throw this.graph.unsupportedKey(this, key, 'an accessor property', 'Store plain values.')
    return this.set(t, key, d.value)
  }

  recordSet(idx: number): void {
    if (this.kids !== null) this.kids[idx] = undefined
    if (this.id < 0) return
    if (this.ops) {
      const t = this.target as unknown[]
      this.ops.push(ArrayOp.Set, idx, idx in t ? t[idx] : ABSENT)
    } else (this.dirtyIdx ??= new Set()).add(idx)
    this.touch()
  }

  /** {@link GraphHost.dropped} for `values[from..to)`, which stood at indices `at`, `at + 1`, … of this array. */
  droppedAll(values: readonly unknown[], at: number, from = 0, to = values.length): void {
    for (let i = from; i < to; i++) this.graph.dropped(values[i], this, at + i - from)
  }

  recordRange(from: number, to: number): void {
    for (let i = from; i < to; i++) this.recordSet(i)
  }

  recordLength(oldLen: number, newLen: number): void {
    this.kids = null
    if (this.id < 0) return
    if (this.ops) this.ops.push(ArrayOp.Length, newLen)
    else if (newLen < oldLen && newLen < this.shrunkTo) this.shrunkTo = newLen
    this.touch()
  }

  /** Splices raw values in and records it: as index sets when nothing shifts, else as a splice op. */
  insert(start: number, deleteCount: number, raws: unknown[]): unknown[] {
    this.kids = null
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
    this.kids = null
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
    this.kids = null
    const t = this.target as unknown[]
    const g = this.graph
    for (let i = 0; i < a.length; ) {
      const op = a[i]
      if (op === ArrayOp.Set) {
        const idx = a[i + 1] as number
        const c = a[i + 2] as Cell
        const old = t[idx]
        if (Array.isArray(c) && c.length === 0) delete t[idx]
        else t[idx] = g.resolve(c)
        if (t[idx] !== old) g.dropped(old, this, idx)
        i += 3
      } else if (op === ArrayOp.Length) {
        const to = a[i + 1] as number
        this.droppedAll(t, to, to, t.length)
        t.length = to
        i += 2
      } else {
        const start = a[i + 1] as number
        const n = a[i + 3] as number
        const vals = new Array<unknown>(n)
        for (let k = 0; k < n; k++) vals[k] = g.resolve(a[i + 4 + k] as Cell)
        this.droppedAll(spliceInto(t, start, a[i + 2] as number, vals), start)
        i += 4 + n
      }
    }
    if (t.length > MAX_ARRAY_LENGTH) throw new ProtocolError('OVERSIZED', `object ${this.id}`, `array grew to ${t.length}`)
    this.syncedLength = t.length
  }

  clear(): void {
    this.kids = null
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

