/**
 * Map and Set: dirty members and deletions, sent so that insertion order
 * survives. A batch's final order is the members that were there before it
 * and never deleted during it (in their old order), followed by the members
 * inserted during it, in the order of their last insertion. So a change is:
 * every member deleted during the batch, then in-place value updates, then
 * the inserted members in order — and the standby, applying deletes first
 * and sets after, ends with the same order. Only `clear()` sends the whole.
 */
import { Node, at, checkArray, fail, isObject, nodeOf, wrapIter, wrapPairs, type Where } from './base.js'
import { HOLE, type Cell } from '../wire.js'

/** Shared logic of Map and Set nodes: dirty members, deletions, whole resets. */
abstract class CollectionNode extends Node {
  dirtyKeys: Set<unknown> | null = null
  deleted: Set<unknown> | null = null
  /** Members inserted during this batch, in the order of their last insertion. */
  inserted: Set<unknown> | null = null
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
    this.inserted?.delete(k)
    this.markKey(k)
  }

  markInserted(k: unknown): void {
    if (this.id < 0) return
    const s = (this.inserted ??= new Set())
    s.delete(k)
    s.add(k)
    this.markKey(k)
  }

  markReset(): void {
    if (this.id < 0) return
    this.reset = true
    this.touch()
  }

  clearChanges(): void {
    this.dirtyKeys = null
    this.deleted = null
    this.inserted = null
    this.reset = false
  }

  /** `[2, deletedCount, ...deleted, ...rest]`: the ordered change, `rest` built by `item` for updated, then inserted, members. */
  protected ordered(has: (k: unknown) => boolean, cell: (k: unknown) => Cell, item: (k: unknown, out: unknown[]) => void): unknown[] {
    const deleted = this.deleted ? [...this.deleted] : []
    const out: unknown[] = [2, deleted.length]
    for (const k of deleted) out.push(cell(k))
    const inserted = this.inserted
    if (this.dirtyKeys) for (const k of this.dirtyKeys) if (has(k) && !inserted?.has(k)) item(k, out)
    if (inserted) for (const k of inserted) if (has(k)) item(k, out)
    return out
  }

  /** Checks an ordered change: a count, that many member cells, then `rest` checked by `item`. */
  protected checkOrdered(a: unknown[], where: Where, width: number): void {
    const n = a[1]
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || 2 + n > a.length) fail(at(where, 1), 'a deleted count that fits the change is expected')
    for (let i = 2; i < 2 + (n as number); i++) this.graph.checkCell(a[i], false, where, i)
    if ((a.length - 2 - (n as number)) % width) fail(where(), `the members after the deleted ones come ${width === 2 ? 'as key/value pairs' : 'one cell each'}`)
    for (let i = 2 + (n as number); i < a.length; i++) this.graph.checkCell(a[i], false, where, i)
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
    if (had) n.markKey(rk)
    else n.markInserted(rk)
    if (isObject(old)) g.dropped(old, n, { mapKey: k }) // the guard saves building the step for a primitive
    return this
  }],
  ['delete', function (this: unknown, k: unknown) {
    const n = nodeOf<MapNode>(this)
    const g = n.graph
    g.guardWrite(n, 'delete', true)
    const t = n.target as Map<unknown, unknown>
    const rk = g.unwrap(k)
    if (!t.has(rk)) return false
    n.droppedEntry(rk, true)
    t.delete(rk)
    n.markDeleted(rk)
    return true
  }],
  ['clear', function (this: unknown) {
    const n = nodeOf<MapNode>(this)
    n.graph.guardWrite(n, 'clear', true)
    const t = n.target as Map<unknown, unknown>
    if (!t.size) return
    n.droppedAll()
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

  /**
   * {@link GraphHost.dropped} for the value at `k` and, when the entry goes, for
   * the key. Call before the Map changes. (Primitives are skipped here, not
   * there, so no path step is built for them.)
   */
  droppedEntry(k: unknown, keyGone: boolean): void {
    const old = (this.target as Map<unknown, unknown>).get(k)
    if (isObject(old)) this.graph.dropped(old, this, { mapKey: k })
    if (keyGone && isObject(k)) this.graph.dropped(k, this, { mapKey: k })
  }

  /** {@link GraphHost.dropped} for every key and value (before a clear or a reset). */
  droppedAll(): void {
    for (const k of (this.target as Map<unknown, unknown>).keys()) this.droppedEntry(k, true)
  }

  encodeFull(): Cell[] {
    const out: Cell[] = []
    for (const [k, v] of this.target as Map<unknown, unknown>) out.push(this.cell(k, { mapKey: k }), this.cell(v, { mapKey: k }))
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as Map<unknown, unknown>
    if (this.reset) return [1, ...this.encodeFull()]
    if (!this.dirtyKeys) return undefined
    if (!this.deleted && !this.inserted) {
      const out: unknown[] = [0]
      for (const k of this.dirtyKeys) out.push(this.cell(k, { mapKey: k }), t.has(k) ? this.cell(t.get(k), { mapKey: k }) : HOLE)
      return out
    }
    return this.ordered(
      (k) => t.has(k),
      (k) => this.cell(k, { mapKey: k }),
      (k, out) => out.push(this.cell(k, { mapKey: k }), this.cell(t.get(k), { mapKey: k })),
    )
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
    if (a[0] === 2) return this.checkOrdered(a, where, 2)
    if (a[0] !== 0 && a[0] !== 1) fail(where(), 'a Map change starts with 0, 1 or 2')
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
    const t = this.target as Map<unknown, unknown>
    const g = this.graph
    if (p[0] === 1) {
      this.droppedAll()
      return this.fill(p.slice(1) as Cell[])
    }
    if (p[0] === 2) {
      const n = p[1] as number
      for (let i = 2; i < 2 + n; i++) {
        const k = g.resolve(p[i] as Cell)
        this.droppedEntry(k, true)
        t.delete(k)
      }
      for (let i = 2 + n; i < p.length; i += 2) {
        const k = g.resolve(p[i] as Cell)
        const v = g.resolve(p[i + 1] as Cell)
        if (t.get(k) !== v) this.droppedEntry(k, false)
        t.set(k, v)
      }
      return
    }
    for (let i = 1; i < p.length; i += 2) {
      const k = g.resolve(p[i] as Cell)
      const c = p[i + 1] as Cell
      if (Array.isArray(c) && c.length === 0) {
        this.droppedEntry(k, true)
        t.delete(k)
      } else {
        const v = g.resolve(c)
        if (t.get(k) !== v) this.droppedEntry(k, false)
        t.set(k, v)
      }
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
    n.markInserted(rv)
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
    if (isObject(rv)) g.dropped(rv, n, { setMember: v })
    return true
  }],
  ['clear', function (this: unknown) {
    const n = nodeOf<SetNode>(this)
    n.graph.guardWrite(n, 'clear', true)
    const t = n.target as Set<unknown>
    if (!t.size) return
    n.droppedAll()
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

  /** {@link GraphHost.dropped} for every member (before a clear or a reset). */
  droppedAll(): void {
    for (const v of this.target as Set<unknown>) if (isObject(v)) this.graph.dropped(v, this, { setMember: v })
  }

  encodeFull(): Cell[] {
    const out: Cell[] = []
    for (const v of this.target as Set<unknown>) out.push(this.cell(v, { setMember: v }))
    return out
  }

  encodeChange(): unknown[] | undefined {
    const t = this.target as Set<unknown>
    if (this.reset) return [1, ...this.encodeFull()]
    if (!this.dirtyKeys) return undefined
    const out = this.ordered(
      (v) => t.has(v),
      (v) => this.cell(v, { setMember: v }),
      (v, o) => o.push(this.cell(v, { setMember: v })),
    )
    return out.length > 2 ? out : undefined
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
    if (a[0] === 2) return this.checkOrdered(a, where, 1)
    if (a[0] !== 0 || a.length % 2 !== 1) fail(where(), 'a Set change is 0 followed by member/present pairs, or 2 and an ordered change')
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
    const t = this.target as Set<unknown>
    const g = this.graph
    const remove = (v: unknown): void => {
      if (t.delete(v) && isObject(v)) g.dropped(v, this, { setMember: v })
    }
    if (p[0] === 1) {
      this.droppedAll()
      return this.fill(p.slice(1) as Cell[])
    }
    if (p[0] === 2) {
      const n = p[1] as number
      for (let i = 2; i < 2 + n; i++) remove(g.resolve(p[i] as Cell))
      for (let i = 2 + n; i < p.length; i++) t.add(g.resolve(p[i] as Cell))
      return
    }
    for (let i = 1; i < p.length; i += 2) {
      const v = g.resolve(p[i] as Cell)
      if (p[i + 1] === 1) t.add(v)
      else remove(v)
    }
  }

  clear(): void {
    ;(this.target as Set<unknown>).clear()
  }
}

