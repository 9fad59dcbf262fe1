import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IdTable } from '../src/graph/table.js'
import { startPair } from './support/pair.js'

type Op = { set: number } | { del: number } | { sweep: number }

/** Runs `ops` against an IdTable and a Map model; they must agree after every step. */
function agree(ops: Op[]): IdTable<string> {
  const t = new IdTable<string>()
  const m = new Map<number, string>()
  let n = 0
  for (const op of ops) {
    if ('set' in op) {
      const v = `v${n++}`
      t.set(op.set, v)
      m.set(op.set, v)
    } else if ('del' in op) expect(t.delete(op.del)).toBe(m.delete(op.del))
    else {
      // Deletes inside forEach (what a sweep does): every entry is still visited once.
      const seen: number[] = []
      t.forEach((_, id) => {
        seen.push(id)
        if (id % op.sweep === 0) t.delete(id)
      })
      expect(seen.sort((a, b) => a - b)).toEqual([...m.keys()].sort((a, b) => a - b))
      for (const id of seen) if (id % op.sweep === 0) m.delete(id)
    }
    expect(t.size).toBe(m.size)
  }
  for (const [id, v] of m) expect(t.get(id)).toBe(v)
  const entries: [number, string][] = []
  t.forEach((v, id) => entries.push([id, v]))
  expect(entries.sort((a, b) => a[0] - b[0])).toEqual([...m].sort((a, b) => a[0] - b[0]))
  return t
}

describe('the id table (tracked objects by id)', () => {
  it('agrees with a Map under any mix of dense ids, far ids, deletes and sweeps', () => {
    const id = fc.oneof(fc.integer({ min: 1, max: 6000 }), fc.integer({ min: 1, max: 2 ** 40 }))
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: id.map((set) => ({ set })) },
      { weight: 3, arbitrary: id.map((del) => ({ del })) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map((sweep) => ({ sweep })) },
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => void agree(ops)), { seed: 8, numRuns: 200 })
  })

  it('a dense table that is mostly deleted moves to map mode and keeps every live entry', () => {
    const ops: Op[] = []
    for (let i = 1; i <= 8_000; i++) ops.push({ set: i })
    for (let i = 1; i <= 8_000; i++) if (i % 7) ops.push({ del: i })
    expect(agree(ops).sparse).toBe(true)
  })

  it('an id far beyond the dense range does not open a gap of slots', () => {
    const t = new IdTable<number>()
    t.set(1, 1)
    t.set(2 ** 45, 2)
    expect(t.sparse).toBe(true)
    expect(t.get(2 ** 45)).toBe(2)
    expect(t.get(1)).toBe(1)
    expect(t.size).toBe(2)
  })

  it('invariant 1 — convergence holds once churn has moved the table to map mode', async () => {
    const c = await startPair()
    try {
      const root = c.active.register('r', { list: [] as { n: number }[] })
      const mirror = c.standby.register('r', { list: [] as { n: number }[] })
      // 30 rounds of replacing 500 objects: ids reach 15,000 while 500 stay live.
      for (let round = 0; round < 30; round++) {
        root.list.splice(0, root.list.length, ...Array.from({ length: 500 }, (_, i) => ({ n: round * 1000 + i })))
        await c.active.commit()
        await c.active.collect()
      }
      await c.active.commit()
      expect(mirror.list.map((x) => x.n)).toEqual(root.list.map((x) => x.n))
      expect(c.errors).toEqual([])
    } finally {
      await c.close()
    }
  })
})
