/**
 * Regression: "crash + quick restart loses acknowledged writes". A killed
 * active restarted within T, from a checkpoint that lagged what its standby
 * had acknowledged, took its own lease row back at the same epoch (the row
 * named the stable node id, so the store saw a renewal) before it had heard
 * from the standby; the standby then resynced down to it.
 */
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore, type Role, type Understudy } from 'understudy-ha'
import { settle } from '../support/pair.js'
import { T, lab, pairWithWrites } from './lab.js'

async function drill(restartAfterMs: number) {
  const { clock, network, start: startNode, run } = lab(restartAfterMs + 1)
  const disks = { a: new MemoryCheckpointStore(), b: new MemoryCheckpointStore() }
  // The active's checkpoint lags what its standby acknowledged: batches wait in memory.
  const start = (id: 'a' | 'b') => startNode(id, { checkpoints: disks[id], checkpointPolicy: { commits: 1000 } })
  const { a, b, acked } = await pairWithWrites(start, run, 20)
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
