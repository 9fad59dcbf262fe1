/**
 * Found by the network-partition test on etcd (test/etcd-partition.test.ts):
 * a holder cut off from its lease store kept the role for seconds after
 * another node had taken over, because every renewal that failed (rather
 * than hung) re-armed the watchdog from its own send time. The holder must
 * step down by the last confirmed renewal's send + T, however its later
 * renewals fail.
 */
import { describe, expect, it } from 'vitest'
import { Elector, MemoryLeaseStore, VirtualClock, type LeaseRow, type LeaseStore } from 'understudy-ha'

const I = 100
const T = 400

/** A memory store that, once `broken`, answers every call with an error after `failMs`. */
function breakable(clock: VirtualClock, failMs: number): { store: LeaseStore; broken: { on: boolean } } {
  const inner = new MemoryLeaseStore(clock)
  const broken = { on: false }
  const fail = () => new Promise<never>((_, reject) => clock.setTimeout(() => reject(new Error('lease store unreachable')), failMs))
  const store: LeaseStore = {
    now: () => inner.now(),
    read: (role) => (broken.on ? fail() : inner.read(role)),
    updateHeartbeat: (uuid, role, seen, timeoutMs, isr) => (broken.on ? fail() : inner.updateHeartbeat(uuid, role, seen, timeoutMs, isr)),
    getPrimary: (role, timeoutMs) => inner.getPrimary(role, timeoutMs),
    release: (uuid, role, isr) => inner.release(uuid, role, isr),
    clear: () => inner.clear(),
  }
  return { store, broken }
}

describe('a holder whose renewals keep failing', () => {
  for (const failMs of [0, 10, 150]) {
    it(`steps down by the last confirmed renewal + T (renewals fail after ${failMs} ms)`, async () => {
      const clock = new VirtualClock()
      const { store, broken } = breakable(clock, failMs)
      let demotedAt: number | undefined
      const confirmedAt: number[] = []
      const e = new Elector('a@1', 'p', store, clock, { intervalMs: I, timeoutMs: T }, {
        elected: () => {},
        demoted: () => (demotedAt = clock.now()),
        confirmed: (row: LeaseRow) => confirmedAt.push(row.lastSeen),
      })
      e.start()
      for (let t = 0; t < 250; t += 5) await step(clock, 5)
      expect(e.isLeader).toBe(true)
      const lastConfirmed = confirmedAt.at(-1) as number
      broken.on = true
      for (let t = 0; t < 3000 && demotedAt === undefined; t += 5) await step(clock, 5)
      e.stop()
      expect(demotedAt, 'never stepped down').toBeDefined()
      expect(demotedAt as number).toBeLessThanOrEqual(lastConfirmed + T)
    })
  }
})

async function step(clock: VirtualClock, ms: number): Promise<void> {
  clock.advance(ms)
  for (let i = 0; i < 10; i++) await Promise.resolve()
}
