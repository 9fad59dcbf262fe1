/**
 * One node of the stopped-standby drill (test/queue-bound.test.ts and the
 * `queue` benchmark), in its own process: TCP on 127.0.0.1, no lease.
 *
 *   tsx test/e2e/queue-node.ts '<json QueueNodeConfig>'
 *
 * The active waits for its standby, reports `{ ready }`, and on `{ cmd: 'go' }`
 * (sent once the test has SIGSTOPped the standby) runs two phases: `sync`
 * commits of one change each (their latencies), then `changes` writes of a
 * `bytes`-long string, each in its own batch, commits not awaited — sampling
 * its RSS as it goes. On `{ cmd: 'wait' }` it reports once the standby
 * (SIGCONTed) holds everything again. The standby reports `{ ready }` once synced.
 */
import { Understudy } from '../../src/index.js'
import { TEST_KEY } from '../support/group-key.js'
import { tcp } from '../../adapters/tcp.js'

export interface QueueNodeConfig {
  role: 'active' | 'standby'
  port: number
  maxQueueBytes: number
  standbyTimeoutMs: number
  logBytes: number
  changes: number
  bytes: number
}

const config = JSON.parse(process.argv[2] as string) as QueueNodeConfig
const send = (m: object) => process.send?.(m)
const mb = () => process.memoryUsage().rss / 2 ** 20
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(5)
  }
}

async function run(): Promise<void> {
  const transport = tcp({ key: TEST_KEY, id: config.role, ...(config.role === 'active' ? { listen: { port: config.port } } : { connect: { port: config.port } }), backoff: { initialMs: 10, maxMs: 100 } })
  const ha = await Understudy.start({
    group: 'queue',
    transport,
    ...(config.role === 'active' ? { role: 'active' as const } : {}),
    maxQueueBytes: config.maxQueueBytes,
    standbyTimeoutMs: config.standbyTimeoutMs,
    log: { maxBytes: config.logBytes },
  })
  const root = ha.register('app', { v: {} as Record<string, string> })
  if (config.role === 'standby') {
    await until(() => ha.stats().seq >= 1, 10_000, 'the first sync')
    send({ ready: true })
    return
  }
  await until(() => ha.stats().inSync === 1 && ha.stats().acked === ha.stats().seq, 10_000, 'the standby')
  send({ ready: true, rssMB: mb() })
  process.on('message', async (m: { cmd: string }) => {
    try {
      if (m.cmd === 'go') {
        const latencies: number[] = []
        const degraded: number[] = []
        for (let i = 0; i < 20; i++) {
          root.v.k = `sync ${i}`
          const t = performance.now()
          const at = await ha.commit()
          latencies.push(performance.now() - t)
          degraded.push(at.standbys)
        }
        globalThis.gc?.()
        const before = mb()
        const samples: number[] = []
        const filler = 'x'.repeat(config.bytes)
        const started = performance.now()
        for (let i = 0; i < config.changes; i++) {
          root.v[`k${i % 256}`] = `${i}${filler}`
          void ha.commit({ mode: 'async' }).catch(() => undefined)
          await null // its own batch
          if (i % 20_000 === 0) {
            await new Promise((r) => setImmediate(r)) // let the sockets move
            samples.push(mb())
          }
        }
        const ms = performance.now() - started
        await sleep(200)
        globalThis.gc?.()
        const s = ha.stats()
        send({ phase: 'done', latencies, standbys: degraded, beforeMB: before, peakMB: Math.max(...samples, mb()), afterMB: mb(), heapMB: process.memoryUsage().heapUsed / 2 ** 20, externalMB: process.memoryUsage().external / 2 ** 20, ms, queuedBytes: s.queuedBytes, seq: s.seq, acked: s.acked, replicas: s.standbys, inSync: s.inSync, degraded: s.degraded })
      }
      if (m.cmd === 'wait') {
        const t = performance.now()
        await until(() => ha.stats().inSync === 1 && ha.stats().acked === ha.stats().seq, 60_000, 'the standby to catch up')
        send({ phase: 'caught-up', ms: performance.now() - t, seq: ha.stats().seq })
      }
    } catch (error) {
      send({ error: (error as Error).message })
    }
  })
}

run().catch((error: Error) => {
  send({ error: error.stack ?? error.message })
  process.exit(1)
})
