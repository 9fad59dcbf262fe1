/**
 * A standby in the stored in-sync set disconnects (the transport reports it
 * down). Until a row without it is stored, the row still names it, so it may
 * take the lease over: sync commits must keep waiting for it (it stays a
 * ghost). The active must not acknowledge a write that this member lacks
 * while the stored row names it.
 */
import { describe, expect, it } from 'vitest'
import type { Transport, TransportHandler } from '../../src/transport.js'
import { lab } from './lab.js'

/** A transport that, once `cut`, drops every frame from `peer` (both ways are cut by wrapping both ends). */
function cuttable(inner: Transport, peer: string) {
  const gate = { cut: false, handler: undefined as TransportHandler | undefined }
  const t: Transport = {
    id: inner.id,
    open: (h) => {
      gate.handler = h
      return inner.open({ ...h, message: (from, data) => (gate.cut && from === peer ? undefined : h.message(from, data)) })
    },
    send: (data, to) => inner.send(data, to),
    close: () => inner.close(),
  }
  return { t, gate }
}

describe('a member that disconnects stays waited for until a row drops it', () => {
  it('no commit is acknowledged past a named member that lacks it', async () => {
    const { network, lease, start, run } = lab(11)
    const ca = cuttable(network.join('a'), 'b')
    const a = await start('a', {}, ca.t)
    await run(2000, () => a.role === 'active')
    const cb = cuttable(network.join('b'), 'a')
    const b = await start('b', {}, cb.t)
    const c = await start('c')
    const s = a.register('s', { n: 0 })
    s.n = 1
    await a.commit()
    await run(2000, () => {
      const isr = (lease as any).rows.get('g')?.isr ?? []
      return isr.includes(b.incarnation) && isr.includes(c.incarnation)
    })
    expect((lease as any).rows.get('g').isr).toContain(b.incarnation)
    // b is cut off from a; a's transport reports it down.
    ca.gate.cut = true
    cb.gate.cut = true
    ca.gate.handler!.peerDown('b', 'lost')
    s.n = 2
    let acked = false
    void a.commit().then(() => (acked = true), () => undefined)
    await run(1000, () => acked || !((lease as any).rows.get('g')?.isr ?? []).includes(b.incarnation))
    const rowNamesB = ((lease as any).rows.get('g')?.isr ?? []).includes(b.incarnation)
    const bHas = b.root<{ n: number }>('s')?.n
    // Acknowledged while the stored row still names b, which does not hold it: b may take over and lose it.
    expect({ acked, rowNamesB, bHas }).not.toEqual({ acked: true, rowNamesB: true, bHas: 1 })
    for (const n of [a, b, c]) await n.abort()
  })
})
