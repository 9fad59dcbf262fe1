/**
 * One HA node in its own process: TCP transport, file lease, elected role.
 * argv: id, port, listen|connect, lease file, [main|worker: where the election runs], [I,T in ms: the heartbeat, default 50,200]. IPC: `{ cmd: 'write', from, count }`
 * appends and sync-commits one number at a time, reporting `{ acked }` after each;
 * `{ cmd: 'dump' }` → `{ dump, role, epoch }`; `{ cmd: 'handover' }` → `{ handover: { startedAt, epoch, blackoutMs } }`
 * or `{ handoverError }`. Role changes are reported as `{ role, epoch, at }`.
 */
import { Understudy } from 'understudy-ha'
import { TEST_KEY } from '../support/group-key.js'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { tcp } from 'understudy-ha/adapters/tcp'
import { workerElection } from 'understudy-ha/adapters/worker-election'

const [id, port, mode, leasePath, electIn, beat] = process.argv.slice(2) as [string, string, string, string, string | undefined, string | undefined]
const [intervalMs, timeoutMs] = (beat ?? '50,200').split(',').map(Number) as [number, number]
const transport =
  mode === 'listen' ? tcp({ key: TEST_KEY, id, listen: { port: Number(port) } }) : tcp({ key: TEST_KEY, id, connect: { port: Number(port) }, backoff: { initialMs: 10, maxMs: 100 } })
const ha = await Understudy.start({
  group: 'e2e',
  transport,
  ...(electIn === 'worker'
    ? { election: workerElection({ module: 'understudy-ha/adapters/file-lease', exportName: 'fileLease', args: [leasePath] }) }
    : { lease: fileLease(leasePath) }),
  heartbeat: { intervalMs, timeoutMs },
  // An acknowledged write is on the standby: the drills check that failover keeps every one.
  minStandbys: 1,
})
const send = (m: object) => process.send?.(m)
// The first election heartbeat after each role change is reported ({ beat }): a worker election's new worker is up.
let beaten = false
ha.on('role', (e) => {
  beaten = false
  send({ role: e.role, epoch: e.epoch, at: Date.now() })
})
ha.on('heartbeat', () => {
  if (!beaten) send({ beat: Date.now() })
  beaten = true
})
ha.on('error', (e) => send({ error: String(e.error) }))
const root = ha.register('app', { acked: [] as number[] })
process.on('message', async (m: { cmd: string; from: number; count: number }) => {
  if (m.cmd === 'write') {
    for (let i = m.from; i < m.from + m.count; i++) {
      try {
        root.acked.push(i)
        await ha.commit()
        send({ acked: i })
      } catch (err) {
        send({ writeError: String(err), index: i })
        break
      }
    }
  }
  if (m.cmd === 'handover') {
    const startedAt = Date.now()
    try {
      const r = await ha.handover()
      send({ handover: { startedAt, epoch: r.epoch, blackoutMs: r.blackoutMs } })
    } catch (err) {
      send({ handoverError: String(err) })
    }
  }
  if (m.cmd === 'dump') send({ dump: [...root.acked], role: ha.role, epoch: ha.epoch })
  if (m.cmd === 'hang') {
    // Busy-loop the main thread: the worker heartbeat must notice and step down.
    const until = Date.now() + m.count
    while (Date.now() < until) {
      /* hung */
    }
    send({ woke: true, role: ha.role })
    try {
      root.acked.push(-1)
      send({ wrote: true })
    } catch (err) {
      send({ refused: String(err) })
    }
  }
})
send({ ready: true, role: ha.role })
