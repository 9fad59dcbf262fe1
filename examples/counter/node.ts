/**
 * One counter node in its own process: TCP on 127.0.0.1, a file lease, and
 * checkpoints in its own directory.
 *
 *   tsx examples/counter/node.ts <id> <port> listen|connect <shared dir> [everyMs]
 *
 * Prints one JSON line per event: {"id","event":"role"|"count"|"takeover", …}.
 */
import { join } from 'node:path'
import { Understudy } from 'understudy-ha'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { tcp } from 'understudy-ha/adapters/tcp'
import { startCounter } from './counter.js'

const [id, port, mode, dir, everyMs] = process.argv.slice(2) as [string, string, 'listen' | 'connect', string, string | undefined]
/** The group key every node of the group holds (the launcher sets it; see README). */
const key = process.env.UNDERSTUDY_KEY
if (!key) {
  console.error('set UNDERSTUDY_KEY to the group key (the same on every node); make one with: node -e "import(\'understudy-ha\').then(m => console.log(m.generateGroupKey()))"')
  process.exit(2)
}
const say = (event: string, fields: object) => console.log(JSON.stringify({ id, event, at: Date.now(), ...fields }))

const ha = await Understudy.start({
  group: 'counter',
  transport: tcp({ key, id, ...(mode === 'listen' ? { listen: { port: Number(port) } } : { connect: { port: Number(port) } }) }),
  lease: fileLease(join(dir, 'lease.json')),
  heartbeat: { intervalMs: 100, timeoutMs: 400 },
  checkpoints: fsCheckpoints(join(dir, `checkpoints-${id}`)),
})
ha.on('role', ({ role, epoch }) => say('role', { role, epoch }))
say('started', { restoredSeq: ha.restored?.seq ?? -1 })
startCounter(ha, {
  everyMs: Number(everyMs ?? 1000),
  onCount: (count) => say('count', { count }),
  onTakeOver: (found) => say('takeover', { found }),
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void ha.close().then(() => process.exit(0)))
