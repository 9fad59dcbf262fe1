/**
 * Leak detection (THA-style, for a garbage-collected runtime): `ha.leaks()`
 * reports tracked objects that no registered root reaches, on either side;
 * `collect()` drops them on both.
 */
import { execFileSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { opArb, reachable, replay } from './support/ops.js'
import { startGraphPair, startPair } from './support/pair.js'

describe('leak detection', () => {
  it('a detached subgraph is found on both sides, with the path it was last reachable at and its size; collect() drops it on both', async () => {
    const c = await startPair()
    const root = c.active.register('app', { items: [{ name: 'first', detail: { notes: ['a', 'b'] } }, { name: 'second' }] as object[] })
    c.standby.register('app', {})
    await c.active.commit()
    expect(c.active.leaks()).toEqual([])
    root.items.splice(0, 1)
    await c.active.commit()
    const leaks = c.active.leaks()
    expect(leaks.map((l) => l.path).sort()).toEqual(['(detached, was app.items[0])', '(detached, was app.items[0].detail)', '(detached, was app.items[0].detail.notes)'])
    expect(leaks.map((l) => l.kind).sort()).toEqual(['array', 'object', 'object'])
    for (const l of leaks) expect(l.bytes).toBeGreaterThan(0)
    // The standby holds the same unreachable objects, under the same ids and paths.
    expect(c.standby.leaks().map((l) => l.id).sort()).toEqual(leaks.map((l) => l.id).sort())
    expect(c.standby.leaks().map((l) => l.path).sort()).toEqual(leaks.map((l) => l.path).sort())
    const before = c.active.stats().objects
    await c.active.collect()
    expect(c.active.leaks()).toEqual([])
    expect(c.standby.leaks()).toEqual([])
    expect(c.active.stats().objects).toBe(before - 3)
    expect(c.standby.stats().objects).toBe(before - 3)
    await c.close()
  })

  it('a cycle detached as a whole is found (reference counting would miss it)', async () => {
    const c = await startPair()
    const root = c.active.register('app', { ring: undefined as object | undefined })
    const a: { name: string; next?: object } = { name: 'a' }
    const b = { name: 'b', next: a }
    a.next = b
    root.ring = a
    await c.active.commit()
    root.ring = undefined
    await c.active.commit()
    expect(c.active.leaks().map((l) => l.path).sort()).toEqual(['(detached, was app.ring)', '(detached, was app.ring.next)'])
    expect(c.standby.leaks()).toHaveLength(2)
    await c.close()
  })

  it('an object still reachable another way is never reported, whatever path it was attached by', async () => {
    const c = await startPair()
    const shared = { tag: 'shared' }
    const root = c.active.register('app', { left: [shared], right: { ref: shared } })
    await c.active.commit()
    root.left.pop()
    await c.active.commit()
    expect(c.active.leaks()).toEqual([])
    await c.close()
  })

  it('the path is where an object was last held, not where it was first attached', async () => {
    const c = await startPair()
    type Box = { list: object[] }
    const root = c.active.register('app', { a: { name: 'x', detail: { n: 1 } } as object | undefined, box: { list: [] } as Box | undefined })
    await c.active.commit()
    const x = root.a as object
    root.a = undefined // x is held by nothing for a moment...
    ;(root.box as Box).list.push(x) // ...then moved into the box
    await c.active.commit()
    expect(c.active.leaks()).toEqual([])
    root.box = undefined // the box goes, and x with it
    await c.active.commit()
    const paths = ['(detached, was app.box)', '(detached, was app.box.list)', '(detached, was app.box.list[0])', '(detached, was app.box.list[0].detail)']
    expect(c.active.leaks().map((l) => l.path).sort()).toEqual(paths)
    // The standby records the drops it applies: the same paths.
    expect(c.standby.leaks().map((l) => l.path).sort()).toEqual(paths)
    await c.close()
  })

  it('objects dropped from a Map, a Set or by shortening an array are reported where they were held', async () => {
    const c = await startPair()
    const root = c.active.register('app', { m: new Map([['k', { v: 1 }]]), s: new Set([{ v: 2 }, { v: 5 }]), t: new Set([{ v: 6 }]), list: [{ v: 3 }, { v: 4 }] })
    await c.active.commit()
    root.m.delete('k')
    root.s.delete([...root.s][0] as { v: number })
    root.t.clear()
    root.list.length = 1
    await c.active.commit()
    const paths = ['(detached, was app.list[1])', '(detached, was app.m.get("k"))', '(detached, was app.s{member {…}})', '(detached, was app.t{member {…}})']
    expect(c.active.leaks().map((l) => l.path).sort()).toEqual(paths)
    expect(c.standby.leaks().map((l) => l.path).sort()).toEqual(paths)
    await c.close()
  })

  it('property: after random mutations, leaks() is exactly the tracked objects that are not reachable — never a reachable one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async (ops) => {
        const { c, root } = await startGraphPair()
        try {
          await replay(ops, () => c.active.commit(), root)
          await c.active.commit()
          const live = reachable(root).length
          const leaks = c.active.leaks()
          expect(leaks.length).toBe(c.active.stats().objects - live)
          expect(c.standby.leaks().map((l) => l.id).sort()).toEqual(leaks.map((l) => l.id).sort())
          // Dropping exactly those keeps every reachable object tracked: writes to all of them still replicate.
          await c.active.collect()
          expect(c.active.stats().objects).toBe(live)
          expect(c.active.leaks()).toEqual([])
        } finally {
          await c.close()
        }
      }),
      { seed: 11, numRuns: 60 },
    )
  })

  it('soak: heavy churn with periodic collect() keeps the table and the heap (after GC) flat', () => {
    // In a child process with --expose-gc, so the heap can be measured after a full collection.
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', new URL('./support/leak-soak.ts', import.meta.url).pathname], { encoding: 'utf8', timeout: 120_000 })
    const r = JSON.parse(out.trim().split('\n').at(-1) as string) as { rounds: number; objects: number[]; heapMB: number[]; leaksBeforeCollect: number[] }
    // Each round detaches what the previous one built: leaks() sees it, collect() drops it.
    for (const n of r.leaksBeforeCollect) expect(n).toBeGreaterThan(0)
    expect(new Set(r.objects).size).toBe(1) // the table is the same size after every round
    const [, warm, ...rest] = r.heapMB
    // Heap after GC: a leak raises the floor round after round, so the lowest of the last ten rounds stays within 25%
    // (+2 MB) of the warm figure; one round measured while the machine is loaded (a compile or sweep in flight) may
    // read a few MB higher, but none by half.
    expect(Math.min(...rest.slice(-10))).toBeLessThan((warm as number) * 1.25 + 2)
    for (const h of rest) expect(h).toBeLessThan((warm as number) * 1.5 + 4)
  }, 150_000)
})
