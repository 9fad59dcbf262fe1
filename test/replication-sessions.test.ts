/**
 * The replication sessions on their own: frames in, frames out, through a
 * Link — no transport, no roles, no timers but an injected virtual clock.
 */
import { describe, expect, it } from 'vitest'
import { VirtualClock } from '../src/clock.js'
import { readFrame, writeHello, type Frame } from '../src/codec/frames.js'
import { Graph } from '../src/graph/graph.js'
import { ActiveSession } from '../src/replication/active.js'
import type { Link } from '../src/replication/link.js'
import { DEFAULT_HEALTH, DEFAULT_LOG } from '../src/replication/primary.js'
import { StandbySession } from '../src/replication/standby.js'

function link(): Link & { out: { frame: Frame; to?: string }[] } {
  const out: { frame: Frame; to?: string }[] = []
  return { out, send: (bytes, to) => void out.push({ frame: readFrame(bytes), to }), hello: () => writeHello({ group: 'g', node: 'A', role: 'active', epoch: 1, seq: 0 }), error: (e) => { throw e } }
}

function pair() {
  const clock = new VirtualClock()
  const g1 = new Graph(() => undefined)
  const toStandby = link()
  const active = new ActiveSession(g1, toStandby, undefined, { epoch: 1, seq: 0, clock, log: DEFAULT_LOG, retryMs: 1000, nodeOf: (p) => p, health: DEFAULT_HEALTH, degraded: () => undefined })
  g1.promote()
  const g2 = new Graph(() => undefined)
  const toActive = link()
  const applied: number[] = []
  const standby = new StandbySession(g2, toActive, undefined, { clock, retryMs: 1000, leader: () => 'A', applied: (_e, seq) => applied.push(seq) })
  return { clock, g1, g2, active, standby, toStandby, toActive, applied }
}

describe('replication sessions (frames in, frames out)', () => {
  it('a standby holds back a frame that arrives early, asks for the gap, then applies both in order and acks once', () => {
    const { g1, g2, active, standby, toStandby, toActive, applied } = pair()
    active.standbyHello('B')
    const root = g1.registerRoot('app', { n: 0 }) as { n: number }
    active.flush() // seq 1: the root
    root.n = 1
    active.flush() // seq 2
    root.n = 2
    active.flush() // seq 3
    const deltas = toStandby.out.map((o) => o.frame).filter((f): f is Extract<Frame, { type: 'delta' }> => f.type === 'delta')
    expect(deltas.map((d) => d.seq)).toEqual([1, 2, 3])
    // A snapshot of nothing puts the standby at (1, 0); then seq 3 arrives before seq 2.
    standby.onSnapshot('A', 1, 0, [[], []])
    standby.onDelta('A', 1, 1, deltas[0]!.body)
    toActive.out.length = 0
    standby.onDelta('A', 1, 3, deltas[2]!.body)
    expect(toActive.out.map((o) => o.frame.type)).toEqual(['resync'])
    expect(applied).toEqual([0, 1])
    standby.onDelta('A', 1, 2, deltas[1]!.body)
    expect(applied).toEqual([0, 1, 2, 3])
    expect((g2.roots.get('app')?.target as { n: number }).n).toBe(2)
    const acks = toActive.out.filter((o) => o.frame.type === 'ack').map((o) => o.frame as Extract<Frame, { type: 'ack' }>)
    expect(acks.map((a) => [a.epoch, a.seq, toActive.out.find((o) => o.frame === a)?.to])).toEqual([[1, 3, 'A']])
  })

  it('the active serves a standby from its log while it can, and its sync commit resolves on the ack', async () => {
    const { g1, active, toStandby } = pair()
    active.standbyHello('B')
    const root = g1.registerRoot('app', { n: 0 }) as { n: number }
    root.n = 5
    let done = false
    const commit = active.commit('sync', undefined).then(() => (done = true))
    await Promise.resolve()
    expect(done).toBe(false)
    toStandby.out.length = 0
    active.serve('B', 1, 0)
    expect(toStandby.out.map((o) => [o.frame.type, o.to])).toEqual([['hello', 'B'], ['delta', 'B']])
    active.ack('B', 1, 1)
    await commit
    expect(done).toBe(true)
  })
})
