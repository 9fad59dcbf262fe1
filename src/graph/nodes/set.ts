/** Set nodes: a tracked Set (see `collection.ts` for how its changes keep insertion order). */
import { at, checkArray, fail, isObject, nodeOf, wrapIter, wrapPairs, type Where } from './base.js'
import type { Cell } from '../wire.js'
import { CollectionNode } from './collection.js'

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

