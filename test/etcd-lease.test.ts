/**
 * The etcd lease store against a real etcd: the shared lease-store contract on
 * a single member and on a 3-member cluster, plus what is particular to etcd
 * (freshness on the observer's clock, writes whose reply was lost, fencing by
 * epoch). See test/support/etcd.ts for where etcd comes from.
 */
import { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VirtualClock, type LeaseRow } from 'understudy-ha'
import { etcdClientOptions, etcdKv, EtcdLeaseStore, etcdLease, fencedPut, type LeaseKv } from '../adapters/etcd.js'
import { runLeaseStoreContract } from 'understudy-ha/testing'
import { etcdFor, etcdUnavailable } from './support/etcd.js'

const missing = etcdUnavailable()
if (missing && process.env.CI) throw new Error(`CI is set, so the etcd tests must run: ${missing}`)
const T = 250

for (const members of [1, 3] as const) {
  describe.skipIf(!!missing)(`etcd lease store, ${members === 1 ? 'single member' : '3-member cluster'}${missing ? ` (skipped: ${missing})` : ''}`, () => {
    let client: Etcd3
    let stop = async () => {}
    let endpoints: string[] = []
    const prefixes = new WeakMap<VirtualClock, string>()
    let n = 0
    const run = `t${process.pid}-${Date.now().toString(36)}-${members}`

    beforeAll(async () => {
      const e = await etcdFor(members === 1 ? 'UNDERSTUDY_ETCD' : 'UNDERSTUDY_ETCD_CLUSTER', members)
      endpoints = e.endpoints
      stop = e.stop
      client = new Etcd3(etcdClientOptions(endpoints))
    }, 30_000)

    afterAll(async () => {
      await client?.delete().prefix(`understudy-test/${run}/`).exec().catch(() => undefined)
      client?.close()
      await stop()
    })

    // Handles made with the same clock share one table (a prefix of its own).
    const table = (clock: VirtualClock) => {
      let p = prefixes.get(clock)
      if (!p) prefixes.set(clock, (p = `understudy-test/${run}/${++n}/`))
      return p
    }
    runLeaseStoreContract(`etcd (${members} member${members > 1 ? 's' : ''})`, (clock) => etcdLease(client, { prefix: table(clock), clock, deadlineMs: 3000 }))

    it('freshness is judged on the observer’s clock: a new observer waits a full T from when it first sees a revision, whatever the writer’s clock says', async () => {
      const writerClock = new VirtualClock(1_000_000)
      const observerClock = new VirtualClock(5)
      const prefix = `understudy-test/${run}/obs/`
      const writer = etcdLease(client, { prefix, clock: writerClock, deadlineMs: 3000 })
      const observer = etcdLease(client, { prefix, clock: observerClock, deadlineMs: 3000 })
      const a = (await writer.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      writerClock.advance(10 * T)
      observerClock.advance(T * 3)
      const seen = (await observer.read('p')) as LeaseRow
      expect(seen.lastSeen).toBe(observerClock.now())
      expect(await observer.getPrimary('p', T)).toBe('a')
      expect(await observer.updateHeartbeat('b', 'p', seen, T)).toBeUndefined()
      observerClock.advance(T + 1)
      expect(await observer.getPrimary('p', T)).toBeUndefined()
      const b = (await observer.updateHeartbeat('b', 'p', seen, T)) as LeaseRow
      expect(b).toMatchObject({ holder: 'b', epoch: a.epoch + 1 })
      // The old holder's renewal is refused: the row moved on.
      expect(await writer.updateHeartbeat('a', 'p', a, T)).toBeUndefined()
    })

    it('a renewal applied by etcd whose reply was lost is recognised as this holder’s own, not refused (no spurious demotion)', async () => {
      const clock = new VirtualClock()
      const real = etcdKv(client)
      let loseNextReply = false
      const lossy: LeaseKv = {
        async txn(compare, then, otherwise, deadlineMs) {
          const r = await real.txn(compare, then, otherwise, deadlineMs)
          if (loseNextReply && then.some((o) => 'put' in o)) {
            loseNextReply = false
            throw new Error('connection reset (simulated after the transaction was applied)')
          }
          return r
        },
        deletePrefix: (p, d) => real.deletePrefix(p, d),
      }
      const s = new EtcdLeaseStore(lossy, { prefix: `understudy-test/${run}/lost/`, clock, deadlineMs: 3000 })
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      clock.advance(10)
      loseNextReply = true
      const renewed = (await s.updateHeartbeat('a', 'p', a, T, ['b'])) as LeaseRow
      expect(renewed).toMatchObject({ holder: 'a', epoch: a.epoch, isr: ['b'] })
      expect(renewed.version).not.toBe(a.version)
      clock.advance(10)
      expect(await s.updateHeartbeat('a', 'p', renewed, T)).toMatchObject({ holder: 'a', epoch: a.epoch })
    })

    it('a renewal that got no answer at all (an error) but was applied: the next renewal, refused on the old revision, finds it and goes on from it', async () => {
      const clock = new VirtualClock()
      const real = etcdKv(client)
      let failWrites = false
      const dead: LeaseKv = {
        async txn(compare, then, otherwise, deadlineMs) {
          const r = await real.txn(compare, then, otherwise, deadlineMs)
          if (failWrites && then.some((o) => 'put' in o)) throw new Error('deadline exceeded (simulated after the transaction was applied)')
          return r
        },
        deletePrefix: (p, d) => real.deletePrefix(p, d),
      }
      const s = new EtcdLeaseStore(dead, { prefix: `understudy-test/${run}/unanswered/`, clock, deadlineMs: 3000 })
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      failWrites = true
      await expect(s.updateHeartbeat('a', 'p', a, T)).rejects.toMatchObject({ code: 'LEASE_STORE_UNAVAILABLE' })
      failWrites = false
      clock.advance(5)
      const next = (await s.updateHeartbeat('a', 'p', a, T)) as LeaseRow
      expect(next).toMatchObject({ holder: 'a', epoch: a.epoch })
      // Another holder's stale row is still refused.
      expect(await s.updateHeartbeat('b', 'p', a, T)).toBeUndefined()
    })

    it('fencing beyond the group: a write conditional on the epoch lands while it is current and is refused once another node took over', async () => {
      const clock = new VirtualClock()
      const prefix = `understudy-test/${run}/fence/`
      const s = etcdLease(client, { prefix, clock, deadlineMs: 3000 })
      const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      expect(await fencedPut(client, prefix, 'p', a.epoch, `${prefix}data`, 'from a')).toBe(true)
      clock.advance(T + 1)
      const b = (await s.updateHeartbeat('b', 'p', (await s.read('p')) as LeaseRow, T)) as LeaseRow
      expect(b.epoch).toBe(a.epoch + 1)
      // The deposed holder does not know yet; its late write is refused all the same.
      expect(await fencedPut(client, prefix, 'p', a.epoch, `${prefix}data`, 'late write from a')).toBe(false)
      expect(await client.get(`${prefix}data`).string()).toBe('from a')
    })

    it('renewal latency (printed)', async () => {
      const s = etcdLease(client, { prefix: `understudy-test/${run}/latency/`, deadlineMs: 3000 })
      let row = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
      const times: number[] = []
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now()
        row = (await s.updateHeartbeat('a', 'p', row, 10_000, ['b'])) as LeaseRow
        times.push(performance.now() - t0)
        expect(row?.holder).toBe('a')
      }
      times.sort((x, y) => x - y)
      const q = (p: number) => (times[Math.min(times.length - 1, Math.floor(p * times.length))] as number).toFixed(2)
      console.log(`etcd lease (${members} member${members > 1 ? 's' : ''}): renewal p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms over ${times.length}`)
    })
  })
}
