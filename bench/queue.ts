/**
 * `npm run bench -- queue`: the active's memory with a stopped standby (SIGSTOP)
 * while it makes 1,000,000 changes, each in its own batch, commits not awaited —
 * with the default bound (`maxQueueBytes` 16 MiB, catch-up log 32 MiB) and,
 * side by side in the same run, with the bound set past everything written
 * (what an unbounded queue costs).
 */
import { children, freePort, spawn } from '../test/support/queue-drill.js'

const MiB = 2 ** 20

async function drill(maxQueueBytes: number, changes: number, bytes: number) {
  const port = await freePort()
  const base = { port, maxQueueBytes, standbyTimeoutMs: 400, logBytes: 32 * MiB, changes, bytes }
  const active = spawn({ ...base, role: 'active' })
  const standby = spawn({ ...base, role: 'standby' })
  try {
    await standby.next((m) => m.ready === true, 30_000)
    await active.next((m) => m.ready === true, 30_000)
    standby.child.kill('SIGSTOP')
    active.child.send({ cmd: 'go' })
    const done = await active.next((m) => m.phase === 'done', 600_000)
    return { before: done.beforeMB as number, peak: done.peakMB as number, heap: done.heapMB as number, ms: done.ms as number, queued: (done.queuedBytes as number) / MiB }
  } finally {
    for (const c of children.splice(0)) c.kill('SIGKILL')
  }
}

export async function runQueue(): Promise<void> {
  const changes = 1_000_000
  const bytes = 100
  console.log(`\n## A stopped standby\n`)
  console.log(`The active makes ${changes.toLocaleString()} changes of ${bytes} B, each in its own batch, commits not awaited, while its only standby is stopped (SIGSTOP); RSS of the active's process. The unbounded row sets \`maxQueueBytes\` past everything written.\n`)
  console.log('| bound | RSS before, MiB | RSS peak, MiB | growth, MiB | JS heap after GC, MiB | queued to the standby, MiB | time, ms |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const [name, max] of [['maxQueueBytes 16 MiB (default)', 16 * MiB], ['unbounded', 2 ** 40]] as const) {
    const r = await drill(max, changes, bytes)
    console.log(`| ${name} | ${r.before.toFixed(0)} | ${r.peak.toFixed(0)} | ${(r.peak - r.before).toFixed(0)} | ${r.heap.toFixed(0)} | ${r.queued.toFixed(1)} | ${r.ms.toFixed(0)} |`)
  }
}
