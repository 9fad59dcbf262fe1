/** Map nodes: a tracked Map (see `collection.ts` for how its changes keep insertion order). */
import { checkArray, fail, isObject, nodeOf, wrapIter, wrapPairs, type Where } from './base.js'
import { HOLE, type Cell } from '../wire.js'
import { CollectionNode } from './collection.js'

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
