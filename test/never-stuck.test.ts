/**
 * Never stuck: each failure of issue "never stuck" pinned by a test named
 * after it — a lone active, a standby that stops reading, a hung active that
 * wakes — on a virtual clock and a seeded memory network.
 */
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore, MemoryLeaseStore, NotActiveError, Understudy, VirtualClock, seededRandom, type Sequence } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { settle } from './support/pair.js'

const I = 100
const T = 400

function bench(seed = 1) {
  const clock = new VirtualClock()
  const net = new MemoryNetwork({ delivery: 'manual', random: seededRandom(seed) })
  /** Peers whose frames are dropped both ways: a standby that stopped reading (SIGSTOP), still connected. */
  const stopped = new Set<string>()
  const pump = async () => {
    for (let i = 0; i < 50; i++) {
      net.drop((e) => stopped.has(e.to) || stopped.has(e.from))
      if (!net.deliverAll()) break
      await settle()
    }
    await settle()
  }
  /** Moves virtual time on in 10 ms steps, delivering frames between them. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10)
      await pump()
    }
  }
  return { clock, net, stopped, pump, run }
}

describe('never stuck', () => {
  it('a lone active completes its commits: at once without checkpoints, once durable locally with them, and runSequence finishes', async () => {
    const { clock, net, pump } = bench()
    const lone = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', clock })
    const degraded: boolean[] = []
    lone.on('degraded', (e) => degraded.push(e.degraded))
    const root = lone.register('app', { n: 0 })
    root.n = 1
    await expect(lone.commit()).resolves.toEqual({ epoch: 1, seq: 1, standbys: 0 })
    expect(lone.stats()).toMatchObject({ degraded: true, inSync: 0 })
    const steps: Sequence<null> = { name: 'two steps', steps: [{ name: 'one', run: () => ({ ok: true }) }, { name: 'two', run: () => ({ ok: true }) }] }
    await expect(lone.runSequence('s1', steps, null)).resolves.toMatchObject({ status: 'completed' })
    // A standby joins: no longer degraded; commits wait for it again.
    const b = await Understudy.start({ group: 'g', transport: net.join('b'), clock })
    await pump()
    expect(lone.stats()).toMatchObject({ degraded: false, inSync: 1 })
    root.n = 2
    const p = lone.commit()
    await pump()
    await expect(p).resolves.toMatchObject({ standbys: 1 })
    expect(b.root('app')).toEqual({ n: 2 })
    expect(degraded).toEqual([false])
    await Promise.all([lone.close(), b.close()])

    // With checkpoints, the acknowledgement waits for this node's own store.
    const store = new MemoryCheckpointStore()
    const withDisk = await Understudy.start({ group: 'h', transport: net.join('c'), role: 'active', clock, checkpoints: store })
    const r = withDisk.register('app', { n: 0 })
    r.n = 5
    const at = await withDisk.commit()
    expect(at.standbys).toBe(0)
    expect((await store.loadRange(['h'])).length).toBeGreaterThan(0)
    await withDisk.close()
  })

  it('a standby that stops reading no longer stalls the active: after standbyTimeoutMs commits resolve without it, in sync and async mode', async () => {
    const { net, stopped, pump, run, clock } = bench(2)
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', clock, standbyTimeoutMs: T })
    const b = await Understudy.start({ group: 'g', transport: net.join('b'), clock })
    const root = a.register('app', { n: 0 })
    await pump()
    expect(a.stats().inSync).toBe(1)
    stopped.add('b') // SIGSTOP: connected, silent, reads nothing
    root.n = 1
    let done: { standbys: number } | undefined
    void a.commit().then((r) => (done = r))
    await run(T - 20)
    expect(done).toBeUndefined() // still within standbyTimeoutMs: waited for
    await run(40)
    expect(done).toEqual({ epoch: 1, seq: 2, standbys: 0 })
    expect(a.stats()).toMatchObject({ degraded: true, inSync: 0, standbys: 1 })
    for (let i = 0; i < 100; i++) {
      root.n = i
      await expect(a.commit({ mode: i % 2 ? 'async' : 'sync' })).resolves.toMatchObject({ standbys: 0 })
    }
    // SIGCONT: it catches up and rejoins the in-sync set.
    stopped.delete('b')
    await run(2000)
    expect(b.root('app')).toEqual({ n: 99 })
    expect(a.stats()).toMatchObject({ degraded: false, inSync: 1 })
    root.n = 100
    const p = a.commit()
    await pump()
    await expect(p).resolves.toMatchObject({ standbys: 1 })
    await Promise.all([a.close(), b.close()])
  })

  it('with a lease, a stopped standby leaves the in-sync set only once a row without it is stored; then commits resolve, and the row no longer names it', async () => {
    const { net, stopped, run, clock } = bench(3)
    const lease = new MemoryLeaseStore(clock)
    const opts = { group: 'g', lease, clock, heartbeat: { intervalMs: I, timeoutMs: T }, random: seededRandom(9) }
    const a = await Understudy.start({ ...opts, nodeId: 'a', transport: net.join('a') })
    await run(3 * I)
    const b = await Understudy.start({ ...opts, nodeId: 'b', transport: net.join('b') })
    await run(3 * I)
    expect([a.role, b.role]).toEqual(['active', 'standby'])
    const root = a.register('app', { n: 0 })
    await run(3 * I)
    expect((await lease.read('g'))?.isr).toEqual([b.incarnation])
    stopped.add('b')
    root.n = 1
    let done = false
    void a.commit().then(() => (done = true))
    await run(T + 3 * I)
    expect(done).toBe(true)
    expect((await lease.read('g'))?.isr).toEqual([])
    await Promise.all([a.close(), b.close()])
  })

  it('a hung active that wakes refuses a write it would lose: no write is accepted once its lease was last confirmed more than T − I ago', async () => {
    const { net, run, clock } = bench(4)
    const lease = new MemoryLeaseStore(clock)
    const a = await Understudy.start({ group: 'g', nodeId: 'a', transport: net.join('a'), lease, clock, heartbeat: { intervalMs: I, timeoutMs: T } })
    await run(3 * I)
    expect(a.role).toBe('active')
    const root = a.register('app', { n: 0 })
    root.n = 1 // fine: the lease was just renewed
    clock.stall(3000) // a 3 s busy loop: no timer ran, the role still reads 'active'
    expect(a.role).toBe('active')
    expect(() => (root.n = 2)).toThrow(NotActiveError)
    expect(() => (root.n = 2)).toThrow(/lease was not confirmed within T − I/)
    expect(root.n).toBe(1) // nothing accepted locally that fencing would undo
    await run(3 * I) // timers run: it renews (nobody took over here) and writes again
    expect(a.role).toBe('active')
    root.n = 3
    expect(root.n).toBe(3)
    await a.close()
  })
})
