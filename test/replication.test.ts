import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CommitTimeoutError, ConfigError, NotActiveError, StaleEpochError, Understudy, VirtualClock, readFrame } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { expectIsomorphic } from './support/isomorphic.js'
import { pump, settle, startPair } from './support/pair.js'

const isDelta = (e: { kind: string; data?: Uint8Array }) => e.kind === 'data' && readFrame(e.data as Uint8Array).type === 'delta'

describe('replication — gaps, resync, late joiners, ordering', () => {
  it('a gap triggers a resync that is served from the log (no snapshot)', async () => {
    const c = await startPair({ delivery: 'manual' })
    const root = c.active.register('r', { n: 0 })
    await pump(c.net)
    for (let i = 1; i <= 5; i++) {
      root.n = i
      await settle()
      if (i === 2 || i === 3) c.net.drop(isDelta)
      await pump(c.net)
    }
    expect(c.standby.root('r')).toEqual({ n: 5 })
    expect(c.standby.stats().snapshots).toBe(1)
    expect(c.errors).toEqual([])
    await c.close()
  })

  it('a gap older than the log is healed with a snapshot', async () => {
    const c = await startPair({ delivery: 'manual' }, { log: { maxFrames: 2 } })
    const root = c.active.register('r', { n: 0, list: [] as number[] })
    await pump(c.net)
    for (let i = 1; i <= 6; i++) {
      root.n = i
      root.list.push(i)
      await settle()
      if (i < 6) c.net.drop(isDelta)
    }
    await pump(c.net)
    expectIsomorphic(root, c.standby.root('r'))
    expect(c.standby.stats().snapshots).toBe(2)
    await c.close()
  })

  it('out-of-order frames are held and applied in order; duplicates are applied once', async () => {
    const c = await startPair({ delivery: 'manual', reorder: true, duplicate: 0.5 }, {}, 12)
    const root = c.active.register('r', { log: [] as number[] })
    await pump(c.net)
    for (let i = 0; i < 30; i++) {
      root.log.push(i)
      await settle()
    }
    while (c.net.step()) await settle(2)
    await pump(c.net)
    expect((c.standby.root('r') as { log: number[] }).log).toEqual([...Array(30).keys()])
    expect(c.errors).toEqual([])
    await c.close()
  })

  it('a lost last frame is retransmitted on the clock, so a sync commit still resolves', async () => {
    const c = await startPair({ delivery: 'manual' })
    const root = c.active.register('r', { n: 0 })
    await pump(c.net)
    root.n = 1
    let done = false
    const commit = c.active.commit().then(() => (done = true))
    await settle()
    expect(c.net.drop(isDelta)).toBe(1)
    await pump(c.net)
    expect(done).toBe(false)
    for (let i = 0; i < 4 && !done; i++) {
      c.clock.advance(50)
      await pump(c.net)
    }
    await commit
    expect(c.standby.root('r')).toEqual({ n: 1 })
    await c.close()
  })
})

describe('commit modes', () => {
  it("'async' resolves once sent, even with no standby; with minStandbys: 1, 'sync' waits for a standby to join and catch up", async () => {
    const clock = new VirtualClock()
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', clock, minStandbys: 1 })
    const root = active.register('r', { n: 1 })
    await expect(active.commit({ mode: 'async' })).resolves.toEqual({ epoch: 1, seq: 1, standbys: 0 })
    root.n = 2
    let synced = false
    const pending = active.commit().then((r) => ((synced = true), r))
    await settle()
    expect(synced).toBe(false)
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), clock })
    await expect(pending).resolves.toEqual({ epoch: 1, seq: 2, standbys: 1 })
    expect(standby.root('r')).toEqual({ n: 2 })
    await Promise.all([active.close(), standby.close()])
  })

  it('a sync commit waits for every connected standby', async () => {
    const net = new MemoryNetwork({ delivery: 'manual' })
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const s1 = await Understudy.start({ group: 'g', transport: net.join('s1') })
    const s2 = await Understudy.start({ group: 'g', transport: net.join('s2') })
    const root = active.register('r', { n: 0 })
    await pump(net)
    root.n = 1
    let done = false
    const commit = active.commit().then(() => (done = true))
    await settle()
    // s2 hears nothing: the commit must not resolve on s1's ack alone.
    net.drop((e) => e.to === 's2')
    await pump(net)
    expect(s1.root('r')).toEqual({ n: 1 })
    expect(done).toBe(false)
    net.partition('a', 's2')
    await pump(net)
    await commit
    expect(active.stats().standbys).toBe(1)
    await Promise.all([active.close(), s1.close(), s2.close()])
  })

  it('commitTimeoutMs rejects with CommitTimeoutError; the change is kept and replicates later', async () => {
    const clock = new VirtualClock()
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', clock, commitTimeoutMs: 500, minStandbys: 1 })
    const root = active.register('r', { n: 1 })
    const p = active.commit()
    clock.advance(499)
    await settle()
    clock.advance(1)
    await expect(p).rejects.toBeInstanceOf(CommitTimeoutError)
    await expect(p).rejects.toThrow(/not acknowledged within 500 ms \(0 standby connected\)/)
    root.n = 2
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), clock })
    await active.commit()
    expect(standby.root('r')).toEqual({ n: 2 })
    await Promise.all([active.close(), standby.close()])
  })

  it('commit on a standby throws NotActiveError; closing rejects pending sync commits', async () => {
    const c = await startPair({ delivery: 'manual' })
    await expect(c.standby.commit()).rejects.toBeInstanceOf(NotActiveError)
    const root = c.active.register('r', { n: 1 })
    await pump(c.net) // the active knows its standby: a sync commit waits for it
    root.n = 2
    const p = c.active.commit()
    await c.active.close()
    await expect(p).rejects.toBeInstanceOf(NotActiveError)
    await c.standby.close()
  })
})

describe('invariant 2 — no acknowledged write is lost', () => {
  it('whenever the active dies, the promoted standby holds every write whose sync commit resolved', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 5 }), async (killAfter, perCommit) => {
        const c = await startPair()
        const root = c.active.register('r', { acked: [] as number[] })
        let acked = 0
        for (let i = 0; i < killAfter; i++) {
          for (let k = 0; k < perCommit; k++) root.acked.push(i * perCommit + k)
          await c.active.commit()
          acked = root.acked.length
        }
        // More writes that are never acknowledged, then the active is killed without a goodbye.
        root.acked.push(-1)
        c.net.kill('active')
        await settle()
        c.standby.promote()
        const mirror = c.standby.root('r') as { acked: number[] }
        expect(mirror.acked.slice(0, acked)).toEqual([...Array(acked).keys()])
        mirror.acked.push(acked)
        await c.standby.close()
      }),
      { seed: 2, numRuns: 40 },
    )
  })
})

describe('invariant 3 — at most one active per epoch; older epochs are fenced', () => {
  it('an active that hears a higher epoch demotes itself at once and stops accepting writes', async () => {
    const c = await startPair()
    const root = c.active.register('r', { n: 1 })
    await c.active.commit()
    const roles: string[] = []
    c.active.on('role', (e) => roles.push(`${e.role}@${e.epoch}`))
    c.standby.promote()
    await settle()
    expect(roles).toEqual(['standby@2'])
    expect(() => (root.n = 5)).toThrow(NotActiveError)
    const promoted = c.standby.root('r') as { n: number }
    promoted.n = 2
    await c.standby.commit()
    expect(root.n).toBe(2)
    await c.close()
  })

  it('frames from an older epoch are refused with StaleEpochError and never applied', async () => {
    const net = new MemoryNetwork({ delivery: 'manual' })
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const b = await Understudy.start({ group: 'g', transport: net.join('b') })
    const c = await Understudy.start({ group: 'g', transport: net.join('c') })
    const errors: Error[] = []
    c.on('error', (e) => errors.push(e.error))
    const root = a.register('r', { n: 1 })
    await pump(net)
    // a is cut off from b; b is promoted (epoch 2) and c follows it.
    net.partition('a', 'b')
    await pump(net)
    b.promote()
    await pump(net)
    expect(c.epoch).toBe(2)
    // a has not heard of epoch 2 yet (its link to c is slow): its frame reaches c and is refused.
    root.n = 666
    await settle()
    net.drop((e) => e.kind === 'data' && e.from === 'c')
    net.deliverAll()
    await settle()
    expect(errors.some((e) => e instanceof StaleEpochError)).toBe(true)
    expect((c.root('r') as { n: number }).n).toBe(1)
    await Promise.all([a.close(), b.close(), c.close()])
  })
})

describe('groups and configuration', () => {
  it('nodes of another group on the same network are ignored', async () => {
    const net = new MemoryNetwork()
    const a = await Understudy.start({ group: 'one', transport: net.join('a'), role: 'active' })
    const other = await Understudy.start({ group: 'two', transport: net.join('b') })
    a.register('r', { n: 1 })
    await a.commit({ mode: 'async' })
    await settle()
    expect(other.root('r')).toBeUndefined()
    expect(a.stats().standbys).toBe(0)
    await Promise.all([a.close(), other.close()])
  })

  it('invalid options are a ConfigError that says what is wrong', async () => {
    const t = new MemoryNetwork().join('x')
    await expect(Understudy.start({ group: '', transport: t })).rejects.toThrow(ConfigError)
    await expect(Understudy.start({ group: 'g', transport: {} as never })).rejects.toThrow(/"transport" must be a Transport/)
    await expect(Understudy.start({ group: 'g', transport: t, commitMode: 'fast' as never })).rejects.toThrow(/"commitMode" must be "sync", "async" or "persisted"/)
    await expect(Understudy.start({ group: 'g', transport: t, commitTimeoutMs: -1 })).rejects.toThrow(/commitTimeoutMs/)
    const ha = await Understudy.start({ group: 'g', transport: t, role: 'active' })
    expect(() => ha.register('x', 5 as never)).toThrow(/initial value must be an object/)
    class A {}
    const B = class A {}
    ha.register('y', {}, { classes: { A } })
    expect(() => ha.register('z', {}, { classes: { A: B } })).toThrow(/"A" is already bound to another class/)
    await ha.close()
  })
})
