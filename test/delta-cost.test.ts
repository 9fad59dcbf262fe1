import { describe, expect, it } from 'vitest'
import { Understudy } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { expectIsomorphic } from './support/isomorphic.js'
import { lastDeltaBytes, spyFrames } from './support/spy.js'

/** An active with a standby attached, whose sent frames are recorded. */
async function setup<T extends object>(initial: T) {
  const net = new MemoryNetwork()
  const t = net.join('active')
  const log = spyFrames(t)
  const active = await Understudy.start({ group: 'g', transport: t, role: 'active' })
  const standby = await Understudy.start({ group: 'g', transport: net.join('standby') })
  const root = active.register('r', initial)
  await active.commit()
  return {
    root,
    log,
    active,
    /** Bytes of the delta produced by `mutate`, after checking the standby converged. */
    async cost(mutate: (r: T) => void): Promise<number> {
      mutate(root)
      await active.commit()
      expectIsomorphic(root, standby.root('r'))
      return lastDeltaBytes(log)
    },
    close: () => Promise.all([active.close(), standby.close()]),
  }
}

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, count: i, tags: [] as string[] }))

describe('invariant 4 — deltas carry only what changed', () => {
  it('pushing one element onto a 100,000-element array sends a delta of bounded size', async () => {
    const s = await setup({ big: Array.from({ length: 100_000 }, (_, i) => i) })
    expect(await s.cost((r) => r.big.push(42))).toBeLessThanOrEqual(40)
    await s.close()
  })

  it('changing one field in a 100,000-object graph sends a delta of bounded size', async () => {
    const s = await setup({ items: items(100_000) })
    expect(await s.cost((r) => ((r.items[50_000] as { name: string }).name = 'renamed'))).toBeLessThanOrEqual(48)
    await s.close()
  })

  it('the delta for one change does not grow with the graph (1,000 vs 100,000 objects)', async () => {
    const small = await setup({ items: items(1_000) })
    const large = await setup({ items: items(100_000) })
    const change = (r: { items: { count: number }[] }) => ((r.items[500] as { count: number }).count += 1)
    const a = await small.cost(change)
    const b = await large.cost(change)
    // Ids of later objects take a few more bytes in CBOR; nothing else may grow.
    expect(b).toBeLessThanOrEqual(a + 4)
    await small.close()
    await large.close()
  })

  it('a splice in the middle of a 100,000-element array sends the inserted values, not the shifted tail', async () => {
    const s = await setup({ big: Array.from({ length: 100_000 }, (_, i) => i) as unknown[] })
    expect(await s.cost((r) => r.big.splice(50_000, 1, 'a', 'b', 'c'))).toBeLessThanOrEqual(48)
    expect(await s.cost((r) => r.big.unshift(-1))).toBeLessThanOrEqual(40)
    await s.close()
  })

  it('one set on a 100,000-entry Map and one add to a 100,000-member Set are bounded', async () => {
    const s = await setup({
      m: new Map(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i] as [string, number])),
      s: new Set(Array.from({ length: 100_000 }, (_, i) => i)),
    })
    expect(await s.cost((r) => r.m.set('k5', -5))).toBeLessThanOrEqual(40)
    expect(await s.cost((r) => r.s.add(-1))).toBeLessThanOrEqual(40)
    await s.close()
  })

  it('repeated writes to one key in a batch coalesce into one change', async () => {
    const s = await setup({ o: { n: 0 } })
    const once = await s.cost((r) => (r.o.n = 1))
    const many = await s.cost((r) => {
      for (let i = 0; i < 1000; i++) r.o.n = i
    })
    expect(many).toBeLessThanOrEqual(once + 2)
    await s.close()
  })

  it('one element written in a 1 MB typed array sends that element, not the buffer', async () => {
    const s = await setup({ f: new Float64Array(131_072) })
    expect(await s.cost((r) => (r.f[70_000] = 3.5))).toBeLessThanOrEqual(48)
    await s.close()
  })
})
