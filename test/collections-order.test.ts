/**
 * Map and Set deltas keep insertion order (invariant 1) without sending the
 * whole collection when members are deleted and re-inserted (invariant 4).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { spyFrames, lastDeltaBytes } from './support/spy.js'
import { startPair } from './support/pair.js'
import { Understudy } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

type Op = [kind: 'set' | 'del' | 'add' | 'rm', key: number, value: number]
const opArb = fc.tuple(fc.constantFrom('set', 'del', 'add', 'rm'), fc.nat(12), fc.nat(5)) as fc.Arbitrary<Op>

describe('Map and Set order (invariants 1 and 4)', () => {
  it('property: after any batches of sets, deletes and re-inserts, the standby has the same entries in the same order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(opArb, { maxLength: 12 }), { maxLength: 8 }), async (batches) => {
        const c = await startPair()
        try {
          const root = c.active.register('app', { m: new Map<string, number>([['k1', 1], ['k2', 2], ['k3', 3]]), s: new Set<string>(['k1', 'k2', 'k3']) })
          c.standby.register('app', {})
          await c.active.commit()
          for (const batch of batches) {
            for (const [kind, k, v] of batch) {
              const key = `k${k}`
              if (kind === 'set') root.m.set(key, v)
              else if (kind === 'del') root.m.delete(key)
              else if (kind === 'add') root.s.add(key)
              else root.s.delete(key)
            }
            await c.active.commit()
          }
          const mirror = c.standby.root('app') as typeof root
          expect([...mirror.m]).toEqual([...root.m])
          expect([...mirror.s]).toEqual([...root.s])
          expect(c.errors).toEqual([])
        } finally {
          await c.close()
        }
      }),
      { seed: 42, numRuns: 200 },
    )
  })

  it('re-inserting a key of a 100,000-entry Map (or Set) sends that key, not the collection', async () => {
    const net = new MemoryNetwork()
    const t = net.join('active')
    const frames = spyFrames(t)
    const c = { active: await Understudy.start({ group: 'g', transport: t, role: 'active' }), standby: await Understudy.start({ group: 'g', transport: net.join('standby') }), close: async () => undefined }
    const root = c.active.register('app', { m: new Map(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])), s: new Set(Array.from({ length: 100_000 }, (_, i) => `k${i}`)) })
    await c.active.commit()
    root.m.delete('k500')
    root.m.set('k500', 1)
    root.s.delete('k7')
    root.s.add('k7')
    await c.active.commit()
    expect(lastDeltaBytes(frames)).toBeLessThan(100)
    const mirror = c.standby.root('app') as typeof root
    expect([...mirror.m.keys()].at(-1)).toBe('k500')
    expect([...mirror.s].at(-1)).toBe('k7')
    await Promise.all([c.active.close(), c.standby.close()])
  })
})
