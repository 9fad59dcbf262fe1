import { describe, expect, it } from 'vitest'
import { ConfigError, VirtualClock } from 'understudy-ha'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { decideHeartbeat, MemoryLeaseStore } from '../src/roles/lease.js'
import { runLeaseStoreContract } from 'understudy-ha/testing'
import { Elector, checkHeartbeat } from '../src/roles/elector.js'
import { settle } from './support/pair.js'

const I = 100
const T = 250

runLeaseStoreContract('memory', (clock) => sharedMemory(clock))
runLeaseStoreContract('file', async (clock) => fileLease(await tableFile(clock), { clock }))

/** One table per clock: two handles made with the same clock share it. */
const memoryTables = new WeakMap<VirtualClock, MemoryLeaseStore>()
function sharedMemory(clock: VirtualClock): MemoryLeaseStore {
  let s = memoryTables.get(clock)
  if (!s) memoryTables.set(clock, (s = new MemoryLeaseStore(clock)))
  return s
}
const files = new WeakMap<VirtualClock, string>()
async function tableFile(clock: VirtualClock): Promise<string> {
  let f = files.get(clock)
  if (!f) files.set(clock, (f = join(await mkdtemp(join(tmpdir(), 'lease-')), 'lease.json')))
  return f
}

describe('heartbeat table — UpdateHeartbeat with optimistic concurrency', () => {
  it('T must exceed 2·I: anything else is a ConfigError that says why', () => {
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 200 })).toThrow(ConfigError)
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 200 })).toThrow(/must exceed 2 × intervalMs/)
    expect(() => checkHeartbeat({ intervalMs: 0, timeoutMs: 200 })).toThrow(ConfigError)
    expect(() => checkHeartbeat({ intervalMs: 100, timeoutMs: 201 })).not.toThrow()
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

  /** Two electors on one store: `a` starts first (and is elected), then `b`. */
  async function holderAndFollower() {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    const b = node('b', store, clock)
    a.e.start()
    await settle()
    b.e.start()
    return { clock, store, a, b }
  }

  async function run(clock: VirtualClock, ms: number, step = 10): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step)
      await settle()
    }
  }

  it('a takeover the store applied but confirmed too late is renewed at the next beat, not left to expire first', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const b = node('b', store, clock)
    // Every reply takes T − I + 10: the read answers at 160, the takeover written then answers at 320 — applied, but too late to trust.
    store.replyDelayMs = T - I + 10
    b.e.start()
    await run(clock, 2 * (T - I + 10) + 10)
    expect(b.log).toEqual([])
    store.replyDelayMs = 0
    expect((await store.read('primary'))?.holder).toBe('b')
    const answeredAt = 2 * (T - I + 10)
    let electedAt: number | undefined
    for (let i = 0; i < 100 && electedAt === undefined; i++) {
      await run(clock, 10)
      if (b.log.length) electedAt = clock.now()
    }
    expect(b.log).toEqual(['elected 1'])
    // The next beat renews its own row (before: it waited for the row to expire, a beat or, on etcd, a whole T later).
    expect((electedAt as number) - answeredAt).toBeLessThanOrEqual(I)
  })

  it('renewal keeps leadership for as long as the holder beats', async () => {
    const { clock, store, a, b } = await holderAndFollower()
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

  it('verify() while a renewal is in flight waits for it, then renews again: two renewals never race (the second would be refused and demote the holder)', async () => {
    const clock = new VirtualClock()
    const store = new MemoryLeaseStore(clock)
    const a = node('a', store, clock)
    a.e.start()
    await settle()
    expect(a.e.isLeader).toBe(true)
    store.replyDelayMs = 30
    await run(clock, I) // the next renewal is now in flight (sent at I, answered 30 ms later)
    const writes: number[] = []
    const update = store.updateHeartbeat.bind(store)
    store.updateHeartbeat = (...args) => (writes.push(clock.now()), update(...args))
    let row: Awaited<ReturnType<Elector['verify']>>
    const checks = [a.e.verify(), a.e.verify()] // calls made while one waits share it
    void Promise.all(checks).then(([r]) => (row = r))
    await run(clock, 80, 5)
    expect(a.log).toEqual(['elected 1'])
    expect(a.e.isLeader).toBe(true)
    expect(writes.length).toBe(1) // one renewal for both calls, sent once the one in flight was answered
    expect(writes[0]).toBeGreaterThanOrEqual(I + 30)
    expect(row!).toMatchObject({ holder: 'a', epoch: 1, lastSeen: writes[0] })
    expect(a.e.row).toEqual(row!)
  })

  it('verify() on a follower reads the row now; a call made before start() waits for it', async () => {
    const { clock, store, a, b } = await holderAndFollower()
    const c = node('c', store, clock)
    const early = c.e.verify()
    let seen: unknown = 'pending'
    void early.then((r) => (seen = r))
    await run(clock, I)
    expect(seen).toBe('pending')
    c.e.start()
    await settle()
    expect(seen).toMatchObject({ holder: 'a', epoch: 1 })
    expect(await b.e.verify()).toMatchObject({ holder: 'a', epoch: 1 })
    expect(a.log).toEqual(['elected 1'])
    c.e.stop()
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
    const { clock, store, a, b } = await holderAndFollower()
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
