import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, haNode } from './support/ha-process.js'

const node = haNode

describe('failover between real Node processes', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  it('kill -9 of the active process: the standby process becomes active with every sync-acked write (invariant 2)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-e2e-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const lease = join(dir, 'lease.json')
    const port = await freePort()
    const a = node(['a', String(port), 'listen', lease])
    cleanup.push(() => a.child.kill('SIGKILL'))
    await a.until((m) => m.role === 'active', 'a to be elected')
    const b = node(['b', String(port), 'connect', lease])
    cleanup.push(() => b.child.kill('SIGKILL'))
    await b.until((m) => !!m.ready, 'b to start')
    a.child.send({ cmd: 'write', from: 0, count: 200 })
    await a.until((m) => (m.acked ?? -1) >= 30, 'thirty acknowledged commits')
    a.child.kill('SIGKILL')
    const killedAt = Date.now()
    const acked = Math.max(...a.seen.map((m) => m.acked ?? -1))
    const promoted = await b.until((m) => m.role === 'active', 'b to take over')
    b.child.send({ cmd: 'dump' })
    const state = await b.until((m) => m.dump !== undefined, 'b’s state')
    expect(state.role).toBe('active')
    expect(state.epoch).toBe(2)
    expect(state.dump?.slice(0, acked + 1)).toEqual([...Array(acked + 1).keys()])
    // T = 200 ms, I = 50 ms: the lease expires at most T after the last renewal, and b beats every I.
    expect((promoted.at as number) - killedAt).toBeLessThan(2_000)
    expect(b.seen.filter((m) => m.error)).toEqual([])
  })

  it('a hung main thread: the worker heartbeat stops renewing, the standby takes over, the woken node is fenced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-e2e-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const lease = join(dir, 'lease.json')
    const port = await freePort()
    const a = node(['a', String(port), 'listen', lease, 'worker'])
    cleanup.push(() => a.child.kill('SIGKILL'))
    await a.until((m) => m.role === 'active', 'a to be elected (heartbeat in its worker)')
    const b = node(['b', String(port), 'connect', lease])
    cleanup.push(() => b.child.kill('SIGKILL'))
    await b.until((m) => !!m.ready, 'b to start')
    a.child.send({ cmd: 'write', from: 0, count: 10 })
    await a.until((m) => m.acked === 9, 'ten acknowledged commits')
    // a's main thread hangs for 3 s; its worker is fine, but must not keep the lease alive.
    const hungAt = Date.now()
    a.child.send({ cmd: 'hang', count: 3000 })
    const promoted = await b.until((m) => m.role === 'active', 'b to take over while a hangs')
    expect((promoted.at as number) - hungAt).toBeLessThan(2500)
    const woke = await a.until((m) => !!m.woke, 'a to wake')
    void woke
    await a.until((m) => m.role === 'standby', 'a to learn it lost the lease')
    b.child.send({ cmd: 'dump' })
    const state = await b.until((m) => m.dump !== undefined, 'b’s state')
    expect(state.dump?.slice(0, 10)).toEqual([...Array(10).keys()])
    expect(state.dump).not.toContain(-1)
  })
})
