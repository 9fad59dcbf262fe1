/**
 * A graceful close() (or a handover) releases the lease by deleting its row,
 * and with it the in-sync set. A standby that is cut off from its peers — and
 * so was dropped from the set, and missed writes acknowledged meanwhile — sees
 * no row, knows of no standby ahead of it (it hears nobody), and takes the
 * lease at its next beat. When the network heals, the standby that held the
 * acknowledged writes follows it and resyncs down to its older state.
 */
import { describe, expect, it } from 'vitest'
import type { Understudy } from 'understudy-ha'
import { I, T, lab } from './lab.js'

async function drill(closeDelayMs: number) {
  const { network, start, run } = lab(1)
  const a = await start('a')
  await run(4 * I, () => a.role === 'active')
  const b = await start('b')
  await run(37)
  const c = await start('c')
  await run(4 * I)
  expect([a.role, b.role, c.role]).toEqual(['active', 'standby', 'standby'])
  const root = a.register('app', { acked: [] as number[] })
  b.register('app', { acked: [] as number[] })
  c.register('app', { acked: [] as number[] })
  let acked = -1
  const write = async (i: number) => {
    root.acked.push(i)
    const p = a.commit().then(() => (acked = i))
    await run(50, () => acked === i)
    await p
  }
  for (let i = 0; i < 5; i++) await write(i)
  // The one failure: c is cut off from its peers (the lease store stays reachable).
  network.partition('c', 'a')
  network.partition('c', 'b')
  // a drops c from the in-sync set after a couple of renewals and goes on committing with b.
  await run(4 * I)
  for (let i = 5; i < 10; i++) await write(i)
  expect(acked).toBe(9)
  // A planned restart of a: a graceful close, the lease released.
  await run(closeDelayMs)
  await a.close()
  await run(3 * T)
  network.heal('c', 'a')
  network.heal('c', 'b')
  await run(3 * T)
  const active = [b, c].filter((n) => n.role === 'active')
  expect(active).toHaveLength(1)
  const winner = active[0] as Understudy
  const got = (winner.root('app') as { acked: number[] }).acked
  const detail = `close +${closeDelayMs} ms: active ${winner.nodeId} epoch ${winner.epoch}`
  await b.close()
  await c.close()
  return { got, detail }
}

describe('regression: release() deletes the in-sync set, so a cut-off standby takes the lease', () => {
  it('after a graceful close of the active, the new active holds every acknowledged write, whatever the beat phase', async () => {
    const failures: string[] = []
    for (let ms = 0; ms < I; ms += 10) {
      const { got, detail } = await drill(ms)
      if (JSON.stringify(got.slice(0, 10)) !== JSON.stringify([...Array(10).keys()])) failures.push(`${detail}: has ${JSON.stringify(got)}`)
    }
    expect(failures).toEqual([])
  })
})
