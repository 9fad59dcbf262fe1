import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Understudy, seededRandom, VirtualClock } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { expectIsomorphic } from './support/isomorphic.js'
import { applyOp, initialGraph, opArb, Point, reachable, replay } from './support/ops.js'
import { settle, startGraphPair, startPair } from './support/pair.js'

const RUNS = Number(process.env.CONVERGENCE_RUNS ?? 120)

describe('invariant 1 — convergence', () => {
  it('after the last acknowledged commit the standby is isomorphic to the active (random graphs and mutations)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async (ops) => {
        const { c, root, mirror } = await startGraphPair()
        try {
          await replay(ops, () => c.active.commit(), root)
          await c.active.commit()
          expectIsomorphic(root, mirror)
          expect(c.errors).toEqual([])
        } finally {
          await c.close()
        }
      }),
      { seed: 20261121, numRuns: RUNS },
    )
  })

  it('objects that become unreachable are dropped from the replication table on both sides', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async (ops) => {
        const { c, root } = await startGraphPair()
        try {
          await replay(ops, () => c.active.commit(), root)
          await c.active.collect()
          const live = reachable(root).length
          expect(c.active.stats().objects).toBe(live)
          expect(c.standby.stats().objects).toBe(live)
        } finally {
          await c.close()
        }
      }),
      { seed: 7, numRuns: Math.ceil(RUNS / 2) },
    )
  })

  it('a standby that joins late receives a snapshot and converges', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), fc.array(opArb, { maxLength: 20 }), async (before, after) => {
        const clock = new VirtualClock()
        const net = new MemoryNetwork({ random: seededRandom(3) })
        const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', clock, classes: { Point } })
        const root = active.register('app', initialGraph())
        await replay(before, () => active.commit({ mode: 'async' }), root)
        await active.commit({ mode: 'async' })
        const late = await Understudy.start({ group: 'g', transport: net.join('late'), clock, classes: { Point } })
        await replay(after, () => active.commit(), root)
        await active.commit()
        expect(late.stats().snapshots).toBe(1)
        expectIsomorphic(root, late.root('app'))
        await active.close()
        await late.close()
      }),
      { seed: 99, numRuns: Math.ceil(RUNS / 2) },
    )
  })

  it('converges through loss, duplication and reordering (seeded network, virtual clock)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 50 }), fc.integer({ min: 1, max: 1_000_000 }), async (ops, seed) => {
        const c = await startPair({ delivery: 'manual', loss: 0.15, duplicate: 0.1, reorder: true }, { classes: { Point } }, seed)
        try {
          const root = c.active.register('app', initialGraph())
          c.standby.register('app', {})
          const pump = async () => {
            for (let i = 0; i < 5 && c.net.pending; i++) {
              while (c.net.step()) await settle(2)
            }
          }
          for (const op of ops) {
            if (applyOp(root, op)) await c.active.commit({ mode: 'async' })
            if (op.b % 3 === 0) await pump()
          }
          await c.active.commit({ mode: 'async' })
          // Retransmission and resync run on the virtual clock; bounded rounds.
          for (let round = 0; round < 200; round++) {
            await settle()
            while (c.net.step()) await settle(2)
            if (c.active.stats().acked === c.active.stats().seq) break
            c.clock.advance(50)
          }
          expect(c.active.stats().acked).toBe(c.active.stats().seq)
          expectIsomorphic(root, c.standby.root('app'))
          expect(c.errors).toEqual([])
        } finally {
          await c.close()
        }
      }),
      { seed: 4242, numRuns: Math.ceil(RUNS / 3) },
    )
  })
})
