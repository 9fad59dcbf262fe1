import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryLeaseStore, NotActiveError, Understudy, VirtualClock, seededRandom, type Role } from 'understudy-ha'
import { MemoryNetwork, type MemoryNetworkOptions } from 'understudy-ha/adapters/memory'
import { expectIsomorphic } from './support/isomorphic.js'
import { settle } from './support/pair.js'

const I = 100
const T = 400

/** Nodes that elect their active through one lease store, on a virtual clock and a seeded network. */
async function cluster(ids: string[], net: MemoryNetworkOptions = {}, seed = 1) {
  const clock = new VirtualClock()
  const network = new MemoryNetwork({ random: seededRandom(seed), ...net })
  const lease = new MemoryLeaseStore(clock)
  const errors: Error[] = []
  const start = async (id: string) => {
    const ha = await Understudy.start({ group: 'g', transport: network.join(id), lease, heartbeat: { intervalMs: I, timeoutMs: T }, clock, resyncRetryMs: 50 })
    ha.on('error', (e) => errors.push(e.error))
    return ha
  }
  const nodes = new Map<string, Understudy>()
  for (const id of ids) nodes.set(id, await start(id))
  /** Moves virtual time on in small steps, delivering frames and running microtasks between them. */
  const run = async (ms: number, until?: () => boolean) => {
    for (let t = 0; t < ms; t += 5) {
      clock.advance(5)
      for (let k = 0; k < 3; k++) {
        await settle()
        network.deliverAll(10_000)
      }
      if (until?.()) return clock.now()
    }
    return clock.now()
  }
  const roles = () => Object.fromEntries([...nodes].map(([id, n]) => [id, n.role])) as Record<string, Role>
  const active = () => [...nodes.values()].filter((n) => n.role === 'active')
  return { clock, network, lease, nodes, errors, start, run, roles, active }
}

describe('election and failover (virtual clock, seeded network)', () => {
  it('peers starting at once elect exactly one active, whatever the delivery order (invariant 3)', async () => {
    for (let seed = 0; seed < 12; seed++) {
      const c = await cluster(['a', 'b', 'c'], { delivery: 'manual', reorder: true }, seed)
      await c.run(5 * T)
      expect(c.active()).toHaveLength(1)
      expect(c.active()[0]?.epoch).toBe(1)
      for (const n of c.nodes.values()) await n.close()
    }
  })

  it('crash: the standby promotes after the lease expires, holding every sync-acked write, with the same objects (invariant 2)', async () => {
    const c = await cluster(['a', 'b'], { delivery: 'manual' })
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const b = [...c.nodes.values()].find((n) => n !== a) as Understudy
    const root = a.register('app', { acked: [] as number[] })
    const mirror = b.register('app', { acked: [] as number[] })
    for (let i = 0; i < 20; i++) {
      root.acked.push(i)
      const p = a.commit()
      await c.run(5, () => false)
      await p
    }
    root.acked.push(-1) // never acknowledged
    const crashedAt = c.clock.now()
    await a.abort()
    const promotedAt = await c.run(10 * T, () => b.role === 'active')
    expect(b.role).toBe('active')
    expect(b.epoch).toBe(2)
    expect(promotedAt - crashedAt).toBeLessThanOrEqual(T + 2 * I)
    expect(mirror.acked.slice(0, 20)).toEqual([...Array(20).keys()])
    mirror.acked.push(99) // the same reference, now writable
    await b.commit({ mode: 'async' })
    expect(b.stats().unackedSeq).toBeGreaterThan(0) // nobody left to acknowledge: the loss window is visible
    await b.close()
  })

  it('a graceful close releases the lease: the standby takes over at its next beat, not after T', async () => {
    const c = await cluster(['a', 'b'])
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const b = [...c.nodes.values()].find((n) => n !== a) as Understudy
    a.register('app', { n: 1 })
    await a.commit()
    const closedAt = c.clock.now()
    await a.close()
    const at = await c.run(10 * T, () => b.role === 'active')
    expect(at - closedAt).toBeLessThanOrEqual(I + 10)
    expect((b.root('app') as { n: number }).n).toBe(1)
    await b.close()
  })

  it('a hung active (no heartbeat, process alive) is replaced after T; when it wakes it is fenced and rejoins as standby', async () => {
    const c = await cluster(['a', 'b', 'c'])
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const others = [...c.nodes.values()].filter((n) => n !== a)
    const root = a.register('app', { n: 0 })
    await a.commit()
    // a hangs: its heartbeat stops and nobody hears from it.
    ;(a as unknown as { node: { elector: { frozen: boolean } } }).node.elector.frozen = true
    for (const o of others) c.network.partition(a.nodeId, o.nodeId)
    await c.run(3 * T, () => others.some((o) => o.role === 'active'))
    const next = others.find((o) => o.role === 'active') as Understudy
    expect(next.epoch).toBe(2)
    // a wakes, still believing it is active until its next beat is refused.
    ;(a as unknown as { node: { elector: { frozen: boolean } } }).node.elector.frozen = false
    await c.run(2 * I, () => a.role === 'standby')
    expect(a.role).toBe('standby')
    expect(() => (root.n = 666)).toThrow(NotActiveError)
    for (const o of others) c.network.heal(a.nodeId, o.nodeId)
    ;(next.root('app') as { n: number }).n = 7
    await c.run(5 * I, () => (a.root('app') as { n: number } | undefined)?.n === 7)
    expect((a.root('app') as { n: number }).n).toBe(7)
    expect(c.active()).toEqual([next])
    for (const n of c.nodes.values()) await n.close()
  })

  it('a restarted old active rejoins as standby and catches up; it never comes back as a second active', async () => {
    const c = await cluster(['a', 'b'])
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const b = [...c.nodes.values()].find((n) => n !== a) as Understudy
    const root = a.register('app', { list: [1, 2, 3] })
    await a.commit()
    await a.abort()
    await c.run(10 * T, () => b.role === 'active')
    ;(b.root('app') as { list: number[] }).list.push(4)
    const again = await c.start(a.nodeId)
    c.nodes.set(a.nodeId, again)
    await c.run(20 * T)
    expect(again.role).toBe('standby')
    expect(c.active()).toEqual([b])
    expectIsomorphic(b.root('app'), again.root('app'))
    void root
    for (const n of [b, again]) await n.close()
  })

  it('a node that holds no state lets a synced standby win the election', async () => {
    // c's beats come before b's, so without eligibility c would take the lease first.
    const c = await cluster(['a', 'c', 'b'])
    await c.run(2 * I, () => c.active().length === 1)
    const a = c.nodes.get('a') as Understudy
    expect(a.role).toBe('active')
    c.network.partition('a', 'c') // c never gets a's state
    a.register('app', { n: 42 })
    await a.commit()
    await c.run(2 * I)
    await a.abort()
    await c.run(10 * T, () => c.active().length === 1)
    expect(c.roles()).toMatchObject({ b: 'active', c: 'standby' })
    await c.run(5 * I, () => (c.nodes.get('c')?.root('app') as { n: number } | undefined)?.n === 42)
    expect((c.nodes.get('c')?.root('app') as { n: number }).n).toBe(42)
    for (const id of ['b', 'c']) await c.nodes.get(id)?.close()
  })

  it('crash at any point of a commit, with loss, delay and duplication during promotion: every sync-acked write survives (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 60 }), async (seed, crashAfter) => {
        const c = await cluster(['a', 'b', 'c'], { delivery: 'manual', reorder: true, duplicate: 0.1, loss: 0.05 }, seed)
        await c.run(20 * I, () => c.active().length === 1)
        const [a] = c.active() as [Understudy]
        const root = a.register('app', { acked: [] as number[] })
        let acked = 0
        let steps = 0
        for (let i = 0; i < 30 && steps < crashAfter; i++) {
          root.acked.push(i)
          let done = false
          const p = a.commit().then(() => (done = true), () => undefined)
          while (!done && steps < crashAfter) {
            c.clock.advance(5)
            await settle()
            if (!c.network.step()) c.network.deliverAll(50)
            await settle()
            steps++
          }
          if (done) acked = i + 1
          void p
        }
        await a.abort()
        const rest = [...c.nodes.values()].filter((n) => n !== a)
        await c.run(30 * T, () => rest.some((n) => n.role === 'active'))
        const next = rest.filter((n) => n.role === 'active')
        expect(next).toHaveLength(1)
        const got = ((next[0] as Understudy).root('app') as { acked: number[] } | undefined)?.acked ?? []
        expect(got.slice(0, acked)).toEqual([...Array(acked).keys()])
        for (const n of rest) await n.close()
      }),
      { seed: 31, numRuns: 25 },
    )
  })
})

describe('planned handover', () => {
  it('with a lease: the standby takes over with every write, writes during the handover are refused clearly, the old active follows', async () => {
    const c = await cluster(['a', 'b'])
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const b = [...c.nodes.values()].find((n) => n !== a) as Understudy
    const root = a.register('app', { log: [] as number[] })
    for (let i = 0; i < 5; i++) root.log.push(i)
    const roles: string[] = []
    a.on('role', (e) => roles.push(`${e.role}@${e.epoch}`))
    const done = a.handover()
    expect(a.role).toBe('quiescing')
    expect(() => root.log.push(99)).toThrow(/a handover is in progress/)
    await c.run(10 * I, () => b.role === 'active')
    const result = await done
    expect(result).toMatchObject({ to: b.nodeId, epoch: 2, seq: expect.any(Number) })
    expect(b.role).toBe('active')
    expect(a.role).toBe('standby')
    expect(roles).toEqual(['quiescing@1', 'standby@1'])
    const mirror = b.root('app') as { log: number[] }
    expect(mirror.log).toEqual([0, 1, 2, 3, 4])
    mirror.log.push(5)
    await c.run(5 * I, () => (a.root('app') as { log: number[] }).log.length === 6)
    expect((a.root('app') as { log: number[] }).log).toEqual([0, 1, 2, 3, 4, 5])
    expect(c.active()).toEqual([b])
    for (const n of c.nodes.values()) await n.close()
  })

  it('without a lease: the same switchover by epoch alone', async () => {
    const net = new MemoryNetwork()
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const b = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = a.register('app', { n: 1 })
    await a.commit()
    root.n = 2
    const result = await a.handover()
    expect(result).toMatchObject({ to: 'b', epoch: 2 })
    expect([a.role, b.role]).toEqual(['standby', 'active'])
    ;(b.root('app') as { n: number }).n = 3
    await b.commit()
    expect((a.root('app') as { n: number }).n).toBe(3)
    await Promise.all([a.close(), b.close()])
  })

  it('a target that cannot catch up: the handover is refused and the active carries on', async () => {
    const c = await cluster(['a', 'b'], { delivery: 'manual' })
    await c.run(2 * I, () => c.active().length === 1)
    const [a] = c.active() as [Understudy]
    const b = [...c.nodes.values()].find((n) => n !== a) as Understudy
    const root = a.register('app', { n: 1 })
    await c.run(2 * I)
    c.network.partition(a.nodeId, b.nodeId)
    root.n = 2
    const done = a.handover({ to: b.nodeId, timeoutMs: 300 }).catch((e: Error) => e)
    await c.run(400)
    const err = await done
    expect(err).toBeInstanceOf(NotActiveError)
    expect(String(err)).toMatch(/did not catch up within 300 ms; this node stays active/)
    expect(a.role).toBe('active')
    root.n = 3
    for (const n of c.nodes.values()) await n.close()
  })
})
