import { describe, expect, it } from 'vitest'
import { ConfigError, VirtualClock } from 'understudy-ha'
import { decideHeartbeat, MemoryLeaseStore, type LeaseRow } from '../src/roles/lease.js'
import { Elector, checkHeartbeat } from '../src/roles/elector.js'
import { settle } from './support/pair.js'

const I = 100
const T = 250

describe('heartbeat table — UpdateHeartbeat with optimistic concurrency', () => {
  it('T must exceed 2·I: anything else is a ConfigError that says why', () => {
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 200 })).toThrow(ConfigError)
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 200 })).toThrow(/must exceed 2 × intervalMs/)
    expect(() => checkHeartbeat({ intervalMs: 0, timeoutMs: 200 })).toThrow(ConfigError)
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 201 })).not.toThrow()
  })

  it('concurrent heartbeats with the same last-seen: exactly one wins', async () => {
    const clock = new VirtualClock(1000)
    const store = new MemoryLeaseStore(clock)
    // Both saw no row.
    const results = await Promise.all(['a', 'b', 'c'].map((id) => store.updateHeartbeat(id, 'primary', undefined, T)))
    expect(results.filter(Boolean)).toHaveLength(1)
    // Both saw the same expired row.
    const row = (await store.read('primary')) as LeaseRow
    clock.advance(T + 1)
    const takeovers = await Promise.all(['b', 'c'].map((id) => store.updateHeartbeat(id, 'primary', row, T)))
    expect(takeovers.filter(Boolean)).toHaveLength(1)
    expect((await store.read('primary'))?.epoch).toBe(row.epoch + 1)
  })

  it('a stale last-seen is rejected, even from the holder', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const first = (await store.updateHeartbeat('a', 'primary', undefined, T)) as LeaseRow
    clock.advance(10)
    const second = (await store.updateHeartbeat('a', 'primary', first, T)) as LeaseRow
    expect(second.lastSeen).toBe(10)
    expect(await store.updateHeartbeat('a', 'primary', first, T)).toBeUndefined()
    expect(await store.updateHeartbeat('b', 'primary', second, T)).toBeUndefined() // fresh row: not b's to take
  })

  it('an expired row is taken over with the next epoch; a renewal keeps the epoch', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = (await store.updateHeartbeat('a', 'primary', undefined, T)) as LeaseRow
    clock.advance(T)
    expect(await store.getPrimary('primary', T)).toBe('a') // exactly T old is still fresh
    clock.advance(1)
    expect(await store.getPrimary('primary', T)).toBeUndefined()
    const b = (await store.updateHeartbeat('b', 'primary', a, T)) as LeaseRow
    expect(b).toEqual({ holder: 'b', epoch: 2, lastSeen: T + 1 })
    clock.advance(5)
    expect(await store.updateHeartbeat('b', 'primary', b, T)).toEqual({ holder: 'b', epoch: 2, lastSeen: T + 6 })
  })

  it('the rules are one pure function every store shares', () => {
    const row = { holder: 'a', epoch: 3, lastSeen: 100 }
    expect(decideHeartbeat(undefined, 'x', undefined, 0, T)).toEqual({ holder: 'x', epoch: 1, lastSeen: 0 })
    expect(decideHeartbeat(undefined, 'x', row, 0, T)).toBeUndefined()
    expect(decideHeartbeat(row, 'a', row, 150, T)).toEqual({ holder: 'a', epoch: 3, lastSeen: 150 })
    expect(decideHeartbeat(row, 'b', row, 150, T)).toBeUndefined()
    expect(decideHeartbeat(row, 'b', row, 100 + T + 1, T)).toEqual({ holder: 'b', epoch: 4, lastSeen: 100 + T + 1 })
    expect(decideHeartbeat(row, 'b', { ...row, lastSeen: 99 }, 100 + T + 1, T)).toBeUndefined()
  })
})

describe('Elector', () => {
  function node(id: string, store: MemoryLeaseStore, clock: VirtualClock) {
    const log: string[] = []
    const e = new Elector(id, 'primary', store, clock, { intervalMs: I, timeoutMs: T }, {
      elected: (epoch) => log.push(`elected ${epoch}`),
      demoted: (why) => log.push(`demoted: ${why}`),
    })
    return { e, log }
  }

  async function run(clock: VirtualClock, ms: number, step = 10): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step)
      await settle()
    }
  }

  it('renewal keeps leadership for as long as the holder beats', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    const b = node('b', store, clock)
    a.e.start()
    await settle()
    b.e.start()
    await run(clock, 10 * T)
    expect(a.log).toEqual(['elected 1'])
    expect(b.log).toEqual([])
    expect(await store.getPrimary('primary', T)).toBe('a')
  })

  it('a store reply delayed by 0.9·I keeps leadership', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    a.e.start()
    await settle()
    store.replyDelayMs = 0.9 * I
    const b = node('b', store, clock)
    b.e.start()
    await run(clock, 20 * T)
    expect(a.log).toEqual(['elected 1'])
    expect(a.e.isLeader).toBe(true)
    expect(b.log).toEqual([])
  })

  it('wiping the store demotes the holder at its next heartbeat', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    a.e.start()
    await settle()
    await store.clear()
    await run(clock, I + 10)
    expect(a.log[1]).toMatch(/demoted: the lease was refused/)
  })

  it('a holder that cannot confirm within T − I demotes itself before anyone can take over at T', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    a.e.start()
    await settle()
    store.replyDelayMs = 10 * T // the store stops answering in time
    const b = node('b', store, clock)
    b.e.start()
    let demotedAt = -1
    let bElectedAt = -1
    for (let t = 0; t < 10 * T && bElectedAt < 0; t += 10) {
      clock.advance(10)
      await settle()
      if (demotedAt < 0 && a.log.length > 1) demotedAt = clock.now()
      if (bElectedAt < 0 && b.log.length) bElectedAt = clock.now()
    }
    expect(a.log[1]).toMatch(/demoted: could not confirm the lease within T − I|answered too late/)
    expect(demotedAt).toBeGreaterThan(0)
    expect(demotedAt).toBeLessThanOrEqual(T)
    if (bElectedAt >= 0) expect(demotedAt).toBeLessThan(bElectedAt)
  })

  it('both peers starting at once elect exactly one, whatever the order of replies (seeded)', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const clock = new VirtualClock()
      const store = new MemoryLeaseStore(clock)
      const nodes = ['a', 'b', 'c'].map((id) => node(id, store, clock))
      const order = [...nodes].sort((x, y) => ((x.e as unknown as { uuid: string }).uuid.charCodeAt(0) * (seed + 7)) % 5 - ((y.e as unknown as { uuid: string }).uuid.charCodeAt(0) * (seed + 7)) % 5)
      for (const n of order) n.e.start()
      await run(clock, 5 * T)
      expect(nodes.filter((n) => n.e.isLeader)).toHaveLength(1)
      expect(nodes.flatMap((n) => n.log).filter((l) => l.startsWith('elected'))).toEqual(['elected 1'])
    }
  })

  it('a frozen holder loses the lease after T; when it wakes, its renewal is refused and it demotes', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    const b = node('b', store, clock)
    a.e.start()
    await settle()
    b.e.start()
    await run(clock, 2 * I)
    a.e.frozen = true
    await run(clock, T + 2 * I)
    expect(b.log).toEqual(['elected 2'])
    a.e.frozen = false
    await run(clock, 2 * I)
    expect(a.log).toEqual(['elected 1', expect.stringMatching(/^demoted/)])
    expect(a.e.isLeader).toBe(false)
    expect(b.e.isLeader).toBe(true)
  })
})
