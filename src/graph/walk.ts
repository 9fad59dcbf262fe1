/** Walking the values an object holds. */
import type { PathStep } from './path.js'
import { Kind } from './wire.js'

export function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null
}

/** Calls `visit` for every value `o` (of `kind`) holds, with the step to it. */
export function forEachChild(
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
export function replaceChild(holder: object, kind: Kind, step: PathStep, raw: object, g: { unwrap(v: unknown): unknown }): void {
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
