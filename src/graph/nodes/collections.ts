/** Map and Set: dirty members, deletions, whole resets when insertion order would otherwise drift. */
import { Node, at, checkArray, fail, isObject, nodeOf, wrapIter, wrapPairs, type Where } from './base.js'
import { HOLE, type Cell } from '../wire.js'

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

