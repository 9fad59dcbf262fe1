/**
 * A standby that stops reading (SIGSTOP, real processes, TCP on 127.0.0.1):
 * the active's commits keep resolving once it leaves the in-sync set, and the
 * active's memory stays bounded by `maxQueueBytes` (plus its catch-up log)
 * while it writes far more than that; after SIGCONT the standby catches up.
 */
import { afterAll, expect, it } from 'vitest'
import { children, freePort, spawn } from './support/queue-drill.js'

afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

it('a standby that stops reading never stalls the active nor grows its memory: commits resolve, RSS stays bounded, and it catches up after SIGCONT', async () => {
  const port = await freePort()
  const MiB = 2 ** 20
  const base = { port, maxQueueBytes: 4 * MiB, standbyTimeoutMs: 400, logBytes: 4 * MiB, changes: 200_000, bytes: 1000 }
  const active = spawn({ ...base, role: 'active' })
  const standby = spawn({ ...base, role: 'standby' })
  await standby.next((m) => m.ready === true, 30_000)
  await active.next((m) => m.ready === true, 30_000)
  standby.child.kill('SIGSTOP')
  active.child.send({ cmd: 'go' })
  const done = await active.next((m) => m.phase === 'done', 120_000)
  const latencies = done.latencies as number[]
  const produced = (base.changes * base.bytes) / MiB
  const grew = (done.peakMB as number) - (done.beforeMB as number)
  console.log(
    `stopped standby: 20 sync commits resolved (first ${latencies[0]?.toFixed(0)} ms: the standby leaves the in-sync set after standbyTimeoutMs ${base.standbyTimeoutMs} ms; then max ${Math.max(...latencies.slice(1)).toFixed(1)} ms); ` +
      `${base.changes.toLocaleString()} unawaited changes (${produced.toFixed(0)} MiB of values) in ${(done.ms as number).toFixed(0)} ms: RSS ${(done.beforeMB as number).toFixed(0)} → peak ${(done.peakMB as number).toFixed(0)} MiB (+${grew.toFixed(0)}), queued to the standby ${((done.queuedBytes as number) / MiB).toFixed(1)} MiB (bound ${base.maxQueueBytes / MiB} MiB)`,
  )
  expect(latencies).toHaveLength(20)
  expect(Math.max(...latencies.slice(1))).toBeLessThan(200)
  expect(done.degraded).toBe(true)
  expect(done.queuedBytes as number).toBeLessThanOrEqual(base.maxQueueBytes)
  // Without the bound the active held every frame (~200 MiB here); with it, the queue, the log and noise.
  expect(grew).toBeLessThan(96)
  standby.child.kill('SIGCONT')
  active.child.send({ cmd: 'wait' })
  const back = await active.next((m) => m.phase === 'caught-up', 60_000)
  console.log(`after SIGCONT the standby caught up and rejoined the in-sync set in ${(back.ms as number).toFixed(0)} ms (seq ${String(back.seq)})`)
}, 180_000)
