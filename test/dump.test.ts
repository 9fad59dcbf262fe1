import { describe, expect, it } from 'vitest'
import { canonicalDump } from './support/dump.js'

describe('canonical dump (the cross-process convergence check)', () => {
  it('is equal for isomorphic graphs and differs when identity, prototype, order or a value differs', () => {
    const make = (share: boolean) => {
      const s = { v: 1 }
      const g: Record<string, unknown> = { a: s, b: share ? s : { v: 1 }, m: new Map([['k', -0]]), d: new Date(5) }
      g.self = g
      return g
    }
    expect(canonicalDump(make(true))).toBe(canonicalDump(make(true)))
    expect(canonicalDump(make(true))).not.toBe(canonicalDump(make(false)))
    expect(canonicalDump({ x: -0 })).not.toBe(canonicalDump({ x: 0 }))
    expect(canonicalDump(new Set([1, 2]))).not.toBe(canonicalDump(new Set([2, 1])))
    class P {}
    expect(canonicalDump({ p: new P() })).not.toBe(canonicalDump({ p: {} }))
    expect(canonicalDump([1, , 3])).not.toBe(canonicalDump([1, undefined, 3]))
  })
})
