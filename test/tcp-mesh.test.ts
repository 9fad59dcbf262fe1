/**
 * A peer list over TCP: every node listens and dials every other node, so
 * each pair starts with two connections, one dialled by each side. The
 * transport must settle on one per pair without losing or reordering frames,
 * and without flapping, or sync commits stall.
 */
import { createServer, type Server } from 'node:net'
import { TEST_KEY } from './support/group-key.js'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLeaseStore, Understudy, realClock } from 'understudy-ha'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { Recorder } from 'understudy-ha/testing'
import { canonicalDump } from './support/dump.js'

const COMMITS = 1000
/** A sync commit that takes this long has stalled (five resync periods). */
const STALL_MS = 5000
/** Bound on the whole run of commits. */
const RUN_MS = 60_000

/** Free ports on 127.0.0.1, picked by the kernel (port 0) and released, so a peer list can name them before any node starts. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = []
  for (let i = 0; i < n; i++) {
    const s = createServer()
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => resolve())
    })
    servers.push(s)
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

const fast = { initialMs: 10, maxMs: 200 }

/** A transport that listens on `ports[i]` and dials every other port (or every port, itself included, with `all`). */
const meshEnd = (id: string, ports: number[], i: number, all = false) =>
  tcp({ key: TEST_KEY, id, listen: { port: ports[i] as number }, connect: ports.filter((_, k) => all || k !== i).map((port) => ({ port })), backoff: fast })

/** Transports for `ids`: each listens on its own port and dials every other one. */
async function meshTransports(ids: string[]): Promise<TcpTransport[]> {
  const ports = await freePorts(ids.length)
  return ids.map((id, i) => meshEnd(id, ports, i))
}

/** Polls (bounded in turns and time) until `cond()` holds. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  for (let turn = 0; turn < 100_000; turn++) {
    if (cond()) return
    if (Date.now() > end) break
    await new Promise((r) => setTimeout(r, 5))
  }
  if (!cond()) throw new Error(`timed out waiting for: ${what}`)
}

/** Runs `COMMITS` sync commits on `active`; fails with where it stopped if one stalls. */
async function commitMany(active: Understudy, root: { n: number; log: number[] }): Promise<{ done: number; ms: number }> {
  const started = Date.now()
  let done = 0
  for (let i = 0; i < COMMITS; i++) {
    if (Date.now() - started > RUN_MS) throw new Error(`${done} of ${COMMITS} sync commits done in ${RUN_MS} ms: too slow (stats ${JSON.stringify(active.stats())})`)
    root.n = i
    root.log.push(i)
    if (root.log.length > 20) root.log.shift()
    try {
      await active.commit({ mode: 'sync', timeoutMs: STALL_MS })
    } catch (err) {
      throw new Error(`the mesh stalled: sync commit ${i + 1} of ${COMMITS} did not complete in ${STALL_MS} ms after ${done} completed (stats ${JSON.stringify(active.stats())}): ${(err as Error).message}`)
    }
    done++
  }
  return { done, ms: Date.now() - started }
}

describe('tcp mesh: nodes that both listen and dial', () => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined)
  })

  for (const n of [2, 3]) {
    it(`${n} nodes that both listen and dial each other keep committing: a mesh never stalls`, async () => {
      const ids = Array.from({ length: n }, (_, i) => `node-${i}`)
      const transports = await meshTransports(ids)
      const errors: string[] = []
      const nodes: Understudy[] = []
      for (const [i, transport] of transports.entries()) {
        const ha = await Understudy.start({ group: 'mesh', transport, role: i === 0 ? 'active' : 'standby' })
        ha.on('error', (e) => errors.push(`${ids[i]}: ${e.error.message}`))
        cleanup.push(() => ha.close())
        nodes.push(ha)
      }
      const [active, ...standbys] = nodes as [Understudy, ...Understudy[]]
      const root = active.register('app', { n: -1, log: [] as number[] })
      const mirrors = standbys.map((s) => s.register('app', { n: -1, log: [] as number[] }))
      await until(() => active.stats().standbys === n - 1, `the active sees ${n - 1} standby(s)`)
      const { done, ms } = await commitMany(active, root)
      expect(done).toBe(COMMITS)
      expect(ms).toBeLessThan(RUN_MS)
      const last = active.stats().seq
      for (const s of standbys) expect(s.stats().seq).toBe(last)
      for (const m of mirrors) expect(canonicalDump(m)).toBe(canonicalDump(root))
      expect(active.stats().standbys).toBe(n - 1)
      expect(errors).toEqual([])
    })
  }

  it('three nodes that elect their active through a lease and all dial each other keep committing', async () => {
    const ids = ['node-0', 'node-1', 'node-2']
    const transports = await meshTransports(ids)
    const lease = new MemoryLeaseStore(realClock)
    const errors: string[] = []
    const nodes: Understudy[] = []
    for (const [i, transport] of transports.entries()) {
      const ha = await Understudy.start({ group: 'mesh', transport, lease, heartbeat: { intervalMs: 100, timeoutMs: 400 } })
      ha.on('error', (e) => errors.push(`${ids[i]}: ${e.error.message}`))
      cleanup.push(() => ha.close())
      nodes.push(ha)
    }
    const roots = nodes.map((ha) => ha.register('app', { n: -1, log: [] as number[] }))
    await until(() => nodes.filter((ha) => ha.role === 'active').length === 1 && nodes.filter((ha) => ha.role === 'standby').length === 2, 'one active and two standbys')
    const a = nodes.findIndex((ha) => ha.role === 'active')
    const active = nodes[a] as Understudy
    await until(() => active.stats().standbys === 2, 'the active sees both standbys')
    const { done } = await commitMany(active, roots[a] as { n: number; log: number[] })
    expect(done).toBe(COMMITS)
    for (const [i, ha] of nodes.entries()) {
      if (i === a) continue
      expect(ha.stats().seq).toBe(active.stats().seq)
      expect(canonicalDump(roots[i])).toBe(canonicalDump(roots[a]))
    }
    expect(nodes.filter((ha) => ha.role === 'active')).toEqual([active])
    expect(errors).toEqual([])
  })

  it('at the transport level, both ends dialling settle on one connection per pair: each side sees the other up once and frames keep their order', async () => {
    const transports = await meshTransports(['a', 'b'])
    const recs = transports.map(() => new Recorder())
    for (const [i, t] of transports.entries()) {
      await t.open(recs[i] as Recorder)
      cleanup.push(() => t.close())
    }
    const [ta, tb] = transports as [TcpTransport, TcpTransport]
    const [ra, rb] = recs as [Recorder, Recorder]
    await ra.until(() => ra.ups.includes('b'), 'a sees b')
    await rb.until(() => rb.ups.includes('a'), 'b sees a')
    // Send at once, while the duplicate connection may still be settling.
    const N = 5000
    for (let i = 0; i < N; i++) {
      void ta.send(new TextEncoder().encode(`a${i}`), 'b')
      void tb.send(new TextEncoder().encode(`b${i}`))
    }
    await rb.until(() => rb.messages.length >= N, `b receives ${N} frames`, 15_000)
    await ra.until(() => ra.messages.length >= N, `a receives ${N} frames`, 15_000)
    const text = (r: Recorder) => r.messages.map((m) => new TextDecoder().decode(m.data))
    expect(text(rb)).toEqual(Array.from({ length: N }, (_, i) => `a${i}`))
    expect(text(ra)).toEqual(Array.from({ length: N }, (_, i) => `b${i}`))
    // Let any redial or flap show itself, then check nothing went down or came up again.
    await new Promise((r) => setTimeout(r, 500))
    expect(ra.ups).toEqual(['b'])
    expect(rb.ups).toEqual(['a'])
    expect(ra.downs).toEqual([])
    expect(rb.downs).toEqual([])
    expect(ta.peers).toEqual(['b'])
    expect(ra.errors).toEqual([])
    expect(rb.errors).toEqual([])
  })

  for (const which of ['a', 'b'] as const) {
    it(`an end of a mesh that crashes and restarts on the same port (${which}, the ${which === 'a' ? 'lower' : 'higher'} id) comes back once, and frames flow again`, async () => {
      const ports = await freePorts(2)
      const ids = ['a', 'b']
      const ends = ids.map((id, i) => meshEnd(id, ports, i))
      const recs = ends.map(() => new Recorder())
      for (const [i, t] of ends.entries()) {
        await t.open(recs[i] as Recorder)
        cleanup.push(() => t.close())
      }
      await until(() => recs.every((r, i) => r.ups.length === 1 && r.ups[0] === ids[1 - i]), 'both up')
      const k = ids.indexOf(which)
      const other = 1 - k
      const ro = recs[other] as Recorder
      await (ends[k] as TcpTransport).abort()
      await ro.until(() => ro.downs.length === 1, `${ids[other]} sees ${which} lost`)
      const again = meshEnd(which, ports, k)
      const rAgain = new Recorder()
      await again.open(rAgain)
      cleanup.push(() => again.close())
      await ro.until(() => ro.ups.length === 2, `${ids[other]} sees ${which} back`)
      await rAgain.until(() => rAgain.ups.includes(ids[other] as string), `${which} sees ${ids[other]} again`)
      void again.send(new TextEncoder().encode('after restart'))
      void (ends[other] as TcpTransport).send(new TextEncoder().encode('welcome back'))
      await ro.until(() => ro.messages.length === 1, 'a frame from the restarted end')
      await rAgain.until(() => rAgain.messages.length === 1, 'a frame to the restarted end')
      await new Promise((r) => setTimeout(r, 300))
      expect(ro.ups).toEqual([which, which])
      expect(ro.downs).toEqual([[which, 'lost']])
      expect(rAgain.ups).toEqual([ids[other]])
      expect(rAgain.downs).toEqual([])
      expect([...ro.errors, ...rAgain.errors]).toEqual([])
    })
  }

  it('a peer list that names the node itself: the node never becomes its own peer, and the others are up once', async () => {
    const ports = await freePorts(3)
    const ids = ['a', 'b', 'c']
    const ends = ids.map((id, i) => meshEnd(id, ports, i, true))
    const recs = ends.map(() => new Recorder())
    for (const [i, t] of ends.entries()) {
      await t.open(recs[i] as Recorder)
      cleanup.push(() => t.close())
    }
    await until(() => recs.every((r) => r.ups.length === 2), 'each end sees the two others')
    await new Promise((r) => setTimeout(r, 300))
    for (const [i, r] of recs.entries()) {
      expect([...r.ups].sort()).toEqual(ids.filter((_, k) => k !== i))
      expect(r.downs).toEqual([])
      expect(r.errors).toEqual([])
      expect([...(ends[i] as TcpTransport).peers].sort()).toEqual(ids.filter((_, k) => k !== i))
    }
  })
})
