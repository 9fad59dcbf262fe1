/** Plain objects, null-prototype objects and registered class instances. */
import { Node, at, checkArray, fail, hasOwn, type Where } from './base.js'
import { HOLE, Kind, type Cell } from '../wire.js'

export class ObjectNode extends Node {
  /** Records a changed key in the graph's batch (the key itself while there is one, a Set from the second on). */
  private markKey(key: string): void {
    if (this.id < 0) return
    this.touch()
    const keys = this.graph.dirtyKeys
    const i = this.slot
    const d = keys[i]
    if (d === undefined) keys[i] = key
    else if (typeof d === 'string') {
      if (d !== key) keys[i] = new Set([d, key])
    } else d.add(key)
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
    g.dropped(old, this, key)
    return true
  }

  override deleteProperty(t: Record<string, unknown>, key: string | symbol): boolean {
    this.graph.guardWrite(this, key)
    if (typeof key === 'symbol' || !hasOwn.call(t, key)) return Reflect.deleteProperty(t, key)
    const old = t[key]
    if (!delete t[key]) return false
    this.markKey(key)
    this.graph.dropped(old, this, key)
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
    const d = this.graph.takenKeys[this.slot]
    if (d === undefined) return undefined
    if (typeof d === 'string') return [d, hasOwn.call(t, d) ? this.cell(t[d], d) : HOLE]
    const out: unknown[] = []
    for (const k of d) out.push(k, hasOwn.call(t, k) ? this.cell(t[k], k) : HOLE)
    return out
  }

  clearChanges(): void {
    // The keys live in the graph's batch, which the graph drops as a whole.
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
    const cls = this.kind === Kind.Class
    for (let i = 0; i < p.length; i += 2) {
      const k = p[i] as string
      const c = p[i + 1] as Cell
      // A class's prototype may have a getter under this key: read own properties only (plain prototypes have no getters to run).
      const old = !cls || hasOwn.call(t, k) ? t[k] : undefined
      if (Array.isArray(c) && c.length === 0) {
        delete t[k]
        g.dropped(old, this, k)
        continue
      }
      const v = g.resolve(c)
      if (cls || k === '__proto__') defineData(t, k, v)
      else t[k] = v
      if (old !== v) g.dropped(old, this, k)
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

