/**
 * Issue 15, item 5: "a second handover leaves no active". With the election
 * in a worker, the node that handed over ended its worker and then asked the
 * dead one to stand again; the second handover then found nobody to take the
 * lease, and both nodes stayed standbys. Here every election kind that runs
 * in Node hands over ten times in a row, back and forth: after each handover
 * an active exists within 2·T, and every batch committed before it is on it.
 * (The browser kinds — Web Locks on the main thread, `webWorkerElection` —
 * are in browser.test.ts and demo-web.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Understudy } from 'understudy-ha'
import { I, T, lab } from './regressions/lab.js'
import { freePort, haNode } from './support/ha-process.js'

const HANDOVERS = 10

describe('ten handovers in a row, each election kind: an active within 2·T after each, every committed batch on it', () => {
  it('memory lease (in-process nodes, virtual clock)', async () => {
    const { clock, start, run } = lab(15)
    const a = await start('a')
    await run(4 * I, () => a.role === 'active')
    const b = await start('b')
    await run(4 * I, () => a.stats().standbys === 1)
    let active: Understudy = a
    let other: Understudy = b
    const root = a.register('app', { acked: [] as number[] })
    b.register('app', { acked: [] as number[] })
    const acked: number[] = []
    const took: number[] = []
    for (let h = 0; h < HANDOVERS; h++) {
      const state = active.root<{ acked: number[] }>('app') ?? root
      for (let i = 0; i < 3; i++) {
        const n = h * 3 + i
        state.acked.push(n)
        const p = active.commit().then(() => acked.push(n))
        await run(10 * I, () => acked.includes(n))
        await p
      }
      const startedAt = clock.now()
      const done = active.handover({ timeoutMs: 2 * T })
      const outcome = done.then(
        () => 'ok',
        (e: Error) => e.message,
      )
      await run(2 * T, () => other.role === 'active')
      took.push(clock.now() - startedAt)
      expect({ handover: h, role: other.role }).toEqual({ handover: h, role: 'active' })
      await run(2 * T, () => active.role === 'standby')
      expect(await outcome).toBe('ok')
      expect(other.root<{ acked: number[] }>('app')?.acked).toEqual(acked)
      ;[active, other] = [other, active]
    }
    console.log(`handovers, memory lease (virtual clock): an active after ${took.join(', ')} ms`)
    expect(Math.max(...took)).toBeLessThanOrEqual(2 * T)
    await a.close()
    await b.close()
  })

  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  // Real processes: TCP between them, the lease in a file; the election on the main thread or in a worker thread.
  for (const [kind, electIn] of [
    ['file lease (real processes)', 'main'],
    ['Node workerElection over the file lease (real processes)', 'worker'],
  ] as const) {
    it(kind, async () => {
      const processT = 400 // I = 100 ms, T = 400 ms (a loaded machine's main thread can stall for 200 ms)
      const dir = await mkdtemp(join(tmpdir(), 'understudy-handovers-'))
      cleanup.push(() => rm(dir, { recursive: true, force: true }))
      const lease = join(dir, 'lease')
      const port = await freePort()
      const a = haNode(['a', String(port), 'listen', lease, electIn, `${processT / 4},${processT}`])
      cleanup.push(() => a.child.kill('SIGKILL'))
      await a.until((m) => m.role === 'active', 'a to be elected')
      const b = haNode(['b', String(port), 'connect', lease, electIn, `${processT / 4},${processT}`])
      cleanup.push(() => b.child.kill('SIGKILL'))
      await b.until((m) => !!m.ready, 'b to start')
      let [active, other] = [a, b]
      let acked = -1
      const took: number[] = []
      const blackouts: number[] = []
      for (let h = 0; h < HANDOVERS; h++) {
        // A node that handed over stands again once its new election worker has booted (a Node worker that
        // compiles TypeScript, as here, takes about a second): the next handover goes to it once it beats again.
        const lastRole = other.seen.findLastIndex((m) => m.role !== undefined)
        await other.until((m, i) => i > lastRole && m.beat !== undefined, `handover ${h}: the target's election beats`)
        active.child.send({ cmd: 'write', from: acked + 1, count: 3 })
        const last = acked + 3
        const w = await active.until((m) => m.acked === last || m.writeError !== undefined, `write ${last} acknowledged`)
        expect({ handover: h, writeError: w.writeError }).toEqual({ handover: h, writeError: undefined })
        acked = last
        const roles = other.seen.length
        active.child.send({ cmd: 'handover' })
        const r = await active.until((m) => !m.counted && (m.handover !== undefined || m.handoverError !== undefined), `handover ${h}`)
        r.counted = true
        expect({ handover: h, error: r.handoverError }).toEqual({ handover: h, error: undefined })
        const promoted = await other.until((m, i) => i >= roles && m.role === 'active', `handover ${h}: the target active`)
        took.push((promoted.at as number) - (r.handover?.startedAt as number))
        blackouts.push(r.handover?.blackoutMs as number)
        other.child.send({ cmd: 'dump' })
        const state = await other.until((m) => !m.counted && m.dump !== undefined, `handover ${h}: the new active's state`)
        state.counted = true
        expect(state.role).toBe('active')
        expect(state.dump).toEqual([...Array(acked + 1).keys()])
        ;[active, other] = [other, active]
      }
      console.log(`handovers, ${kind}: an active after ${took.join(', ')} ms; blackouts ${blackouts.map((b) => b.toFixed(1)).join(', ')} ms`)
      expect(Math.max(...took)).toBeLessThanOrEqual(2 * processT)
      expect([...a.seen, ...b.seen].filter((m) => m.error)).toEqual([])
    }, 60_000)
  }
})
