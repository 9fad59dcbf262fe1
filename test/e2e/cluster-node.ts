/**
 * One node of a real-process cluster (test/support/cluster.ts), in its own
 * process: TCP on 127.0.0.1, a file lease (I = 100 ms, T = 400 ms),
 * filesystem checkpoints, sync commits.
 *
 *   tsx test/e2e/cluster-node.ts '<json NodeConfig>'
 *
 * Topology: node i listens on ports[i] and dials only the nodes before it
 * (j < i), so every pair of nodes has exactly one connection, dialled by the
 * higher index and redialled after either end restarts on its port.
 *
 * The process loads its modules first and reports `{ loaded }`; the node
 * starts only on `{ cmd: 'start' }`, so a test can keep a warm process ready
 * and restart a killed node within milliseconds, as a supervisor restarting
 * an already-installed program would (compiling the TypeScript sources at
 * start-up takes 1–2 s, longer than the failover being tested).
 *
 * IPC out: `{ ready, restored }` once started; `{ role, epoch, at }` on every
 * role change; `{ acked: k, epoch, seq, at }` once the commit holding k
 * resolved; `{ failed: k, error }`, `{ refused: k, role }`; `{ dump, role,
 * epoch, seq }` on request; `{ error }` for the node's error events.
 * IPC in: `{ cmd: 'write', k }` (push k onto `app.items`, commit), `{ cmd: 'dump' }`.
 *
 * Across machines (the etcd tests): `etcd` replaces the file lease with the
 * etcd store, `hosts` gives each node's address (it listens on its own and
 * dials the others'), and `heartbeat` overrides I and T.
 */
import { join } from 'node:path'
import { TEST_KEY } from '../support/group-key.js'
import { Understudy } from '../../src/index.js'
import { Etcd3 } from 'etcd3'
import { etcdClientOptions, etcdLease } from '../../adapters/etcd.js'
import { fileLease } from '../../adapters/file-lease.js'
import { fsCheckpoints } from '../../adapters/fs.js'
import { tcp } from '../../adapters/tcp.js'

export interface NodeConfig {
  id: string
  index: number
  ports: number[]
  group: string
  leasePath: string
  dir: string
  /** Elect on etcd (these client URLs, this key prefix) rather than on the lease file. */
  etcd?: { hosts: string[]; prefix: string }
  /** Each node's address (default 127.0.0.1 for all). */
  hosts?: string[]
  heartbeat?: { intervalMs: number; timeoutMs: number }
}

const config = JSON.parse(process.argv[2] as string) as NodeConfig
const send = (m: object) => process.send?.(m)

async function run(): Promise<void> {
  const host = (i: number) => config.hosts?.[i] ?? '127.0.0.1'
  const transport = tcp({ key: TEST_KEY,
    id: config.id,
    listen: { port: config.ports[config.index] as number, host: host(config.index) },
    ...(config.index > 0 ? { connect: config.ports.slice(0, config.index).map((port, i) => ({ port, host: host(i) })) } : {}),
    backoff: { initialMs: 10, maxMs: 100 },
  })
  const ha = await Understudy.start({
    group: config.group,
    transport,
    lease: config.etcd ? etcdLease(new Etcd3(etcdClientOptions(config.etcd.hosts)), { prefix: config.etcd.prefix }) : fileLease(config.leasePath),
    heartbeat: config.heartbeat ?? { intervalMs: 100, timeoutMs: 400 },
    checkpoints: fsCheckpoints(join(config.dir, `checkpoints-${config.id}`)),
    commitMode: 'sync',
  })
  ha.on('role', (e) => send({ role: e.role, epoch: e.epoch, at: Date.now() }))
  ha.on('error', (e) => send({ error: String(e.error), at: Date.now() }))
  const root = ha.register('app', { items: [] as number[] })

  process.on('message', (m: { cmd: string; k?: number }) => {
    if (m.cmd === 'write') {
      const k = m.k as number
      if (ha.role !== 'active') return send({ refused: k, role: ha.role, at: Date.now() })
      try {
        root.items.push(k)
      } catch (err) {
        return send({ refused: k, role: ha.role, error: String(err), at: Date.now() })
      }
      ha.commit().then(
        (r) => send({ acked: k, epoch: r.epoch, seq: r.seq, at: Date.now() }),
        (err: unknown) => send({ failed: k, error: String(err), at: Date.now() }),
      )
    } else if (m.cmd === 'dump') {
      const items = ha.root<{ items: number[] }>('app')?.items ?? root.items
      send({ dump: [...items], role: ha.role, epoch: ha.epoch, seq: ha.stats().seq, at: Date.now() })
    }
  })
  send({ ready: true, role: ha.role, epoch: ha.epoch, restored: ha.restored ? { epoch: ha.restored.epoch, seq: ha.restored.seq } : null, at: Date.now() })
}

process.on('message', function begin(m: { cmd: string }) {
  if (m.cmd !== 'start') return
  process.off('message', begin)
  run().catch((err: unknown) => {
    send({ error: `start-up failed: ${String(err)}` })
    process.exit(1)
  })
})
send({ loaded: true })
