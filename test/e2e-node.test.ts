import { fork, type ChildProcess } from 'node:child_process'
import { TEST_KEY } from './support/group-key.js'
import { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { Understudy, type Transport } from 'understudy-ha'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { webSocketServer, type WebSocketServerTransport } from 'understudy-ha/adapters/websocket/server'
import { canonicalDump } from './support/dump.js'
import { applyOp, initialGraph, opArb, Point, type Op } from './support/ops.js'

const ROOT = new URL('../', import.meta.url)
const OPS = 300

/** Waits (bounded) for the first message from a child or worker that satisfies `pred`. */
function next<T>(on: (fn: (m: T) => void) => void, off: (fn: (m: T) => void) => void, pred: (m: T) => boolean, what: string, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
    const fn = (m: T) => {
      if (!pred(m)) return
      clearTimeout(timer)
      off(fn)
      resolve(m)
    }
    on(fn)
  })
}

type Msg = { ready?: boolean; dump?: string; error?: string; done?: boolean; closed?: boolean; seq?: number; stats?: { snapshots: number; seq: number } }

describe('end to end over real transports', () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  for (const kind of ['tcp', 'websocket'] as const) {
    it(`two Node processes over ${kind} on 127.0.0.1: the standby in the other process converges (invariant 1)`, async () => {
      const transport: Transport = kind === 'tcp' ? tcp({ key: TEST_KEY, id: 'active', listen: { port: 0 } }) : webSocketServer({ key: TEST_KEY, id: 'active', port: 0 })
      // minStandbys: 1 — an acknowledged commit is on the standby (a lone active would acknowledge on its own word).
      const active = await Understudy.start({ group: 'e2e', transport, role: 'active', classes: { Point }, minStandbys: 1 })
      cleanup.push(() => active.close())
      const port = (transport as TcpTransport | WebSocketServerTransport).port as number
      const child: ChildProcess = fork(new URL('test/e2e/peer.ts', ROOT), [kind, kind === 'tcp' ? String(port) : `ws://127.0.0.1:${port}`], {
        execArgv: ['--import', 'tsx'],
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      cleanup.push(() => child.kill())
      const errors: string[] = []
      child.on('message', (m: Msg) => m.error && errors.push(m.error))
      const on = (fn: (m: Msg) => void) => child.on('message', fn)
      const off = (fn: (m: Msg) => void) => child.off('message', fn)
      await next(on, off, (m) => !!m.ready, 'the standby process to start')
      const root = active.register('app', initialGraph())
      const [ops] = fc.sample(fc.array(opArb, { minLength: OPS, maxLength: OPS }), { seed: 77, numRuns: 1 }) as Op[][]
      for (const op of ops as Op[]) if (applyOp(root, op)) await active.commit()
      const { seq } = await active.commit()
      child.send({ cmd: 'dump' })
      const reply = await next(on, off, (m) => m.dump !== undefined, 'the standby dump')
      expect(reply.stats?.seq).toBe(seq)
      expect(reply.dump).toBe(canonicalDump(root))
      expect(errors).toEqual([])
      child.send({ cmd: 'exit' })
      await new Promise((r) => child.once('exit', r))
    })
  }

  it('BroadcastChannel between Node worker_threads: the standby worker converges (invariant 1)', async () => {
    const channel = `e2e-${process.pid}-${Math.random().toString(36).slice(2)}`
    const spawn = (role: string) => {
      const entry = new URL('test/e2e/bc-worker.ts', ROOT).href
      const w = new Worker(new URL('test/e2e/ts-worker.mjs', ROOT), { workerData: { entry, role, channel, seed: 5, ops: OPS } })
      cleanup.push(() => w.terminate())
      return w
    }
    const standby = spawn('standby')
    const errors: string[] = []
    const onS = (fn: (m: Msg) => void) => standby.on('message', fn)
    const offS = (fn: (m: Msg) => void) => standby.off('message', fn)
    standby.on('message', (m: Msg) => m.error && errors.push(m.error))
    await next(onS, offS, (m) => !!m.ready, 'the standby worker')
    const active = spawn('active')
    active.on('message', (m: Msg) => m.error && errors.push(m.error))
    const done = await next<Msg>((fn) => active.on('message', fn), (fn) => active.off('message', fn), (m) => !!m.done, 'the active worker to finish')
    standby.postMessage({ cmd: 'dump' })
    const reply = await next(onS, offS, (m) => m.dump !== undefined, 'the standby dump')
    expect(reply.stats?.seq).toBe(done.seq)
    expect(reply.dump).toBe(done.dump)
    expect(errors).toEqual([])
  })
})
