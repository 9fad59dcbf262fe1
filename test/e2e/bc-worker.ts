/**
 * One node in a worker thread, over Node's global BroadcastChannel.
 * workerData: { role, channel, seed, ops }. The active applies a seeded random
 * mutation sequence with sync commits and posts its dump; the standby posts its
 * dump when asked.
 */
import fc from 'fast-check'
import { parentPort, workerData } from 'node:worker_threads'
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { canonicalDump } from '../support/dump.js'
import { applyOp, initialGraph, opArb, Point } from '../support/ops.js'

const { role, channel, seed, ops } = workerData as { role: 'active' | 'standby'; channel: string; seed: number; ops: number }
const ha = await Understudy.start({ group: 'e2e', transport: broadcastChannel(channel, { id: role }), role, classes: { Point }, minStandbys: role === 'active' ? 1 : 0 })
ha.on('error', (e) => parentPort?.postMessage({ error: String(e.error) }))
if (role === 'active') {
  const root = ha.register('app', initialGraph())
  const [list] = fc.sample(fc.array(opArb, { minLength: ops, maxLength: ops }), { seed, numRuns: 1 })
  for (const op of list as Parameters<typeof applyOp>[1][]) if (applyOp(root, op)) await ha.commit()
  const { seq } = await ha.commit()
  parentPort?.postMessage({ done: true, seq, dump: canonicalDump(root) })
} else {
  ha.register('app', {})
  parentPort?.postMessage({ ready: true })
}
parentPort?.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'dump') parentPort?.postMessage({ dump: canonicalDump(ha.root('app')), stats: ha.stats() })
  if (m.cmd === 'exit') void ha.close().then(() => parentPort?.postMessage({ closed: true }))
})
