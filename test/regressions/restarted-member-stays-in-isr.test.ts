/**
 * Was: in-sync sets named nodes, not incarnations. A standby that crashes and comes
 * back (from a checkpoint that lags, or from nothing) under the same node id
 * is still "in sync" for the active: `inSync()` keeps every connected member
 * of the stored set, whatever the new incarnation has acknowledged (-1). The
 * lease row goes on naming it while it holds less than was acknowledged; if the
 * active then crashes before the newcomer caught up, the newcomer is the only
 * node the row admits, and it takes over with its older state.
 */
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore, type LeaseRow } from 'understudy-ha'
import type { Transport, TransportHandler } from '../../src/transport.js'
import { I, T, lab, pairWithWrites } from './lab.js'

/** A transport whose incoming frames are held (not delivered) while `held` is set: a slow or busy link. */
function gated(inner: Transport) {
  const gate = { held: true, buffered: [] as [string, Uint8Array][] }
  let handler: TransportHandler | undefined
  const t: Transport = {
    id: inner.id,
    open: (h) => {
      handler = h
      return inner.open({
        ...h,
        message: (from, data) => (gate.held ? gate.buffered.push([from, data]) : h.message(from, data)),
      })
    },
    send: (data, to) => inner.send(data, to),
    close: () => inner.close(),
  }
  ;(t as Transport & { abort: () => void }).abort = () => (inner as Transport & { abort: () => void }).abort()
  return { t, gate, deliver: () => handler }
}

async function drill(restartAfterMs: number) {
  const { network, lease, start: startNode, run } = lab(3 + restartAfterMs)
  const disks = { a: new MemoryCheckpointStore(), b: new MemoryCheckpointStore() }
  const start = (id: 'a' | 'b', transport: Transport = network.join(id)) =>
    // b's checkpoint lags what it acknowledged: batches wait in memory.
    startNode(id, { checkpoints: disks[id], ...(id === 'b' ? { checkpointPolicy: { commits: 1000 } } : {}) }, transport)
  const { a, b, acked } = await pairWithWrites(start, run, 10)
  expect(acked).toBe(9)
  // Failure 1: b crashes and restarts quickly, from its lagging disk.
  await b.abort()
  await run(restartAfterMs)
  const g = gated(network.join('b'))
  const b2 = await start('b', g.t)
  // b2's HELLO reaches a (a tracks it again), but a's frames to b2 are still on the wire.
  await run(2 * I)
  const row = (await lease.read('g')) as LeaseRow
  // Failure 2, once b is back up: a crashes; what it had sent b2 is lost with it.
  await a.abort()
  g.gate.buffered.length = 0
  g.gate.held = false
  // a comes back too, as a supervisor brings it back, from its disk (which holds every batch).
  await run(T)
  const a2 = await start('a', network.join('a'))
  await run(6 * T)
  const winner = [a2, b2].find((n) => n.role === 'active')
  const got = winner ? ((winner.root('app') as { acked: number[] } | undefined)?.acked ?? []) : undefined
  const detail = `restart +${restartAfterMs} ms; row at a's crash: isr ${JSON.stringify(row.isr)}; b2 restored seq ${b2.restored?.seq}; active: ${winner === a2 ? 'a2' : winner === b2 ? 'b2' : 'none'} epoch ${winner?.epoch}`
  await a2.close()
  await b2.close()
  return { got, detail, row, b2: b2.incarnation, b1: b.incarnation }
}

describe('regression: a restarted standby stays in the in-sync set by name while it holds less than was acknowledged', () => {
  it("a restarted standby is in no in-sync set until it has caught up, and its previous run's place never admits it", async () => {
    const failures: string[] = []
    for (const ms of [0, 30, 60, 90]) {
      const { got, detail, row, b2, b1 } = await drill(ms)
      // The row at a's crash may name b's previous run (until a renewal drops it) or nobody — never b2, which holds nothing yet.
      if (row.isr?.includes(b2)) failures.push(`${detail}: the row named ${b2} before it caught up`)
      // When it still names the previous run, b2 must not take over with less (a's restart, from its disk, may).
      if (row.isr?.includes(b1) && JSON.stringify(got?.slice(0, 10)) !== JSON.stringify([...Array(10).keys()])) failures.push(`${detail}: active with ${JSON.stringify(got)}`)
    }
    expect(failures).toEqual([])
  })
})
