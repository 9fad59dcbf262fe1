/**
 * The contract every LeaseStore passes (the heartbeat table's rules), run with
 * one call per store: `runLeaseStoreContract('name', (clock) => store)`. Two
 * stores made by the factory with the same clock must share one table.
 */
import { describe, expect, it } from 'vitest'
import { VirtualClock, type LeaseRow, type LeaseStore } from '../src/index.js'

const T = 250

/**
 * Registers (with vitest) the contract every `LeaseStore` passes: the
 * heartbeat table's optimistic-concurrency rules, expiry by the store's clock,
 * epochs that never go backwards, released rows and in-sync sets. `make(clock)`
 * is called more than once per test with the same clock: stores made with the
 * same clock must share one table.
 */
export function runLeaseStoreContract(name: string, make: (clock: VirtualClock) => LeaseStore | Promise<LeaseStore>): void {
  describe(`lease store contract: ${name}`, () => {
    it('concurrent heartbeats with the same last-seen: exactly one wins (also through two handles on one table)', async () => {
      const clock = new VirtualClock(1000)
      const s1 = await make(clock)
      const s2 = await make(clock)
      const first = await Promise.all([s1.updateHeartbeat('a', 'p', undefined, T), s2.updateHeartbeat('b', 'p', undefined, T), s1.updateHeartbeat('c', 'p', undefined, T)])
      expect(first.filter(Boolean)).toHaveLength(1)
      const row = (await s2.read('p')) as LeaseRow
      clock.advance(T + 1)
      const takeovers = await Promise.all([s1.updateHeartbeat('x', 'p', row, T), s2.updateHeartbeat('y', 'p', row, T)])
      expect(takeovers.filter(Boolean)).toHaveLength(1)
      expect((await s1.read('p'))?.epoch).toBe(row.epoch + 1)
    })

    it('a stale last-seen is rejected, even from the holder; a fresh row is not another node’s to take', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const first = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      clock.advance(10)
      const second = (await s.updateHeartbeat('a', 'p', first, T)) as LeaseRow
      expect(second.lastSeen - first.lastSeen).toBe(10)
      expect(await s.updateHeartbeat('a', 'p', first, T)).toBeUndefined()
      expect(await s.updateHeartbeat('b', 'p', second, T)).toBeUndefined()
    })

    it('an expired row is taken over with the next epoch; a renewal keeps the epoch; getPrimary judges freshness by the store clock', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      clock.advance(T)
      expect(await s.getPrimary('p', T)).toBe('a')
      clock.advance(1)
      expect(await s.getPrimary('p', T)).toBeUndefined()
      const b = (await s.updateHeartbeat('b', 'p', a, T)) as LeaseRow
      expect(b).toMatchObject({ holder: 'b', epoch: a.epoch + 1 })
      clock.advance(5)
      expect(await s.updateHeartbeat('b', 'p', b, T)).toMatchObject({ holder: 'b', epoch: b.epoch })
    })

    it('release frees the role at once, keeping the row (epoch, in-sync set) for the next holder, who takes a higher epoch; only the holder can release', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const a = (await s.updateHeartbeat('a', 'p', undefined, T, ['b@1'])) as LeaseRow
      await s.release('b', 'p')
      expect(await s.getPrimary('p', T)).toBe('a')
      await s.release('a', 'p')
      expect(await s.getPrimary('p', T)).toBeUndefined()
      const given = (await s.read('p')) as LeaseRow
      expect(given).toMatchObject({ holder: 'a', epoch: a.epoch, isr: ['b@1'], released: true })
      expect(await s.updateHeartbeat('b', 'p', undefined, T)).toBeUndefined()
      expect(await s.updateHeartbeat('a', 'p', given, T)).toMatchObject({ holder: 'a', epoch: a.epoch + 1 })
    })

    it('clear removes every row: the holder’s next renewal is refused', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      await s.clear()
      expect(await s.updateHeartbeat('a', 'p', a, T)).toBeUndefined()
    })

    it('epochs never go backwards through a clear', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      await s.clear()
      expect(await s.updateHeartbeat('b', 'p', undefined, T)).toMatchObject({ holder: 'b', epoch: a.epoch + 1 })
    })

    it('the in-sync set given with a heartbeat is stored with the row and read back', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      const a = (await s.updateHeartbeat('a@1', 'p', undefined, T, [])) as LeaseRow
      expect(a.isr).toEqual([])
      const b = (await s.updateHeartbeat('a@1', 'p', a, T, ['n2', 'n3'])) as LeaseRow
      expect(b).toMatchObject({ holder: 'a@1', epoch: a.epoch, isr: ['n2', 'n3'] })
      expect((await s.read('p'))?.isr).toEqual(['n2', 'n3'])
    })

    it('roles are independent rows', async () => {
      const clock = new VirtualClock()
      const s = await make(clock)
      await s.updateHeartbeat('a', 'one', undefined, T)
      expect(await s.updateHeartbeat('b', 'two', undefined, T)).toMatchObject({ holder: 'b', epoch: 1 })
      expect(await s.getPrimary('one', T)).toBe('a')
    })
  })
}
