/**
 * Regression: "crash + quick restart loses acknowledged writes". A killed
 * active restarted within T, from a checkpoint that lagged what its standby
 * had acknowledged, took its own lease row back at the same epoch (the row
 * named the stable node id, so the store saw a renewal) before it had heard
 * from the standby; the standby then resynced down to it.
 */
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore, MemoryLeaseStore, Understudy, VirtualClock, seededRandom, type Role } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { settle } from '../support/pair.js'

const I = 100
const T = 400

async function drill(restartAfterMs: number) {
  const clock = new VirtualClock()
  const network = new MemoryNetwork({ random: seededRandom(restartAfterMs + 1) })
  const lease = new MemoryLeaseStore(clock)
  const disks = { a: new MemoryCheckpointStore(), b: new MemoryCheckpointStore() }
  const random = seededRandom(7 + restartAfterMs)
  const start = (id: 'a' | 'b') =>
    Understudy.start({
      group: 'g',
      nodeId: id,
      transport: network.join(id),
      lease,
      heartbeat: { intervalMs: I, timeoutMs: T },
      clock,
      random,
      resyncRetryMs: 50,
      checkpoints: disks[id],
      // The active's checkpoint lags what its standby acknowledged: batches wait in memory.
      checkpointPolicy: { commits: 1000 },
    })
  const run = async (ms: number, until?: () => boolean) => {
    for (let t = 0; t < ms; t += 5) {
      clock.advance(5)
      await settle()
      if (until?.()) return
    }
  }
  const a = await start('a')
  await run(4 * I, () => a.role === 'active')
  const b = await start('b')
  await run(4 * I)
  expect([a.role, b.role]).toEqual(['active', 'standby'])
  const root = a.register('app', { acked: [] as number[] })
  b.register('app', { acked: [] as number[] })
  let acked = -1
  for (let i = 0; i < 20; i++) {
    root.acked.push(i)
    const p = a.commit().then(() => (acked = i))
    await run(20, () => acked === i)
    await p
  }
  // The crash: no goodbye, batches that waited for the policy are gone with the memory.
  await a.abort()
  // The restarted process cannot reach its peer at first (its dialler is still backing off).
  network.partition('a', 'b')
  clock.advance(restartAfterMs)
  await settle()
  const a2 = await start('a')
  const roles: [string, Role, number][] = []
  for (const [name, n] of [['a', a2], ['b', b]] as const) n.on('role', (e) => roles.push([name, e.role, e.epoch]))
  await run(3 * T)
  network.heal('a', 'b')
  await run(3 * T)
  const active = [a2, b].filter((n) => n.role === 'active')
  expect(active, JSON.stringify(roles)).toHaveLength(1)
  const winner = active[0] as Understudy
  expect(winner.epoch, 'a takeover always moves the epoch on').toBeGreaterThan(1)
  const got = (winner.root('app') as { acked: number[] }).acked
  expect(got.slice(0, acked + 1), `acknowledged up to ${acked}; roles ${JSON.stringify(roles)}`).toEqual([...Array(acked + 1).keys()])
  await a2.close()
  await b.close()
}

describe('regression: crash + quick restart loses acknowledged writes', () => {
  it('a restarted node never takes its old lease back at the same epoch, nor wins over the standby that holds more (restart 0–300 ms after the kill)', async () => {
    // Every third ms: the restarted node's beats land at every phase against the standby's.
    for (let ms = 0; ms <= 300; ms += 3) await drill(ms)
  })
})
