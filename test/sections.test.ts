import { describe, expect, it } from 'vitest'
import { InvalidParamError, MemoryLeaseStore, NoSpaceError, NotActiveError, NotExistError, Understudy, VirtualClock } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { settle, startPair } from './support/pair.js'
import { startCounter } from '../examples/counter/counter.js'

const bytes = (...v: number[]) => new Uint8Array(v)
const ATTRS = { maxSections: 3, maxSectionSize: 8 }

describe('sections API (SAF-style checkpoint service)', () => {
  it('create, read, overwrite, delete and list, with typed errors against the creation attributes', async () => {
    const c = await startPair()
    const cp = c.active.checkpoint('state', ATTRS)
    await cp.create('a', bytes(1, 2))
    expect(cp.read('a')).toEqual(bytes(1, 2))
    await expect(cp.create('a', bytes(3))).rejects.toBeInstanceOf(InvalidParamError)
    await expect(cp.create('big', new Uint8Array(9))).rejects.toThrow(/9 bytes exceed maxSectionSize 8/)
    await expect(cp.overwrite('missing', bytes(1))).rejects.toBeInstanceOf(NotExistError)
    expect(() => cp.read('missing')).toThrow(NotExistError)
    await cp.create('b', bytes(2))
    await cp.create('c', bytes(3))
    await expect(cp.create('d', bytes(4))).rejects.toBeInstanceOf(NoSpaceError)
    await cp.overwrite('a', bytes(9, 9, 9))
    await cp.delete('b')
    await expect(cp.delete('b')).rejects.toBeInstanceOf(NotExistError)
    expect(cp.list()).toEqual(['a', 'c'])
    expect(() => c.active.checkpoint('bad', { maxSections: 0, maxSectionSize: 1 })).toThrow(InvalidParamError)
    await c.close()
  })

  it("sections replicate: the standby reads what the active wrote ('all-replicas' waits for it); writing there is NotActiveError", async () => {
    const c = await startPair()
    const cp = c.active.checkpoint('state', ATTRS)
    await cp.create('x', bytes(7))
    const mirror = c.standby.checkpoint('state', ATTRS)
    expect(mirror.read('x')).toEqual(bytes(7))
    await expect(mirror.create('y', bytes(1))).rejects.toBeInstanceOf(NotActiveError)
    const lazy = c.active.checkpoint('lazy', { ...ATTRS, mode: 'active-replica' })
    await lazy.create('z', bytes(5))
    await lazy.synchronize()
    expect(c.standby.checkpoint('lazy', ATTRS).read('z')).toEqual(bytes(5))
    await c.close()
  })

  it('a section not written for retentionMs is dropped', async () => {
    const c = await startPair()
    const cp = c.active.checkpoint('short', { ...ATTRS, retentionMs: 1000 })
    await cp.create('old', bytes(1))
    c.clock.advance(600)
    await cp.create('new', bytes(2))
    c.clock.advance(600)
    expect(cp.list()).toEqual(['new'])
    await c.close()
  })

  it('the classic 1+1 counter: the active counts into a section every second; kill it; the standby continues the count', async () => {
    const clock = new VirtualClock()
    const net = new MemoryNetwork()
    const lease = new MemoryLeaseStore(clock)
    const start = (id: string) => Understudy.start({ group: 'counter', transport: net.join(id), lease, heartbeat: { intervalMs: 100, timeoutMs: 400 }, clock })
    const nodes = [await start('a'), await start('b')]
    const run = async (ms: number) => {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10)
        await settle()
      }
    }
    /** The counter program every node runs (examples/counter): while active, read the section and write count + 1 every second. */
    const seen: number[] = []
    const program = (ha: Understudy) => startCounter(ha, { clock, everyMs: 1000, onCount: (n) => seen.push(n) })
    nodes.forEach(program)
    await run(5_500)
    const active = nodes.find((n) => n.role === 'active') as Understudy
    const before = seen.at(-1) as number
    expect(before).toBeGreaterThanOrEqual(4)
    await active.abort()
    await run(5_000)
    const next = nodes.find((n) => n.role === 'active') as Understudy
    expect(next).toBeDefined()
    expect(next).not.toBe(active)
    // No reset, no gap: the count goes on from the last value the dead active wrote.
    const after = seen.slice(seen.indexOf(before) + 1)
    expect(after[0]).toBe(before + 1)
    expect(after).toEqual(after.map((_, i) => before + 1 + i))
    await next.close()
  })
})
