/**
 * One node of a two-host group: TCP between the nodes, the election on etcd.
 * Run one on each host (or two on one machine, on different ports):
 *
 *   tsx examples/two-hosts/node.ts --id a --listen 10.0.0.1:7000 --etcd http://10.0.0.9:2379
 *   tsx examples/two-hosts/node.ts --id b --listen 10.0.0.2:7000 --peer 10.0.0.1:7000 --etcd http://10.0.0.9:2379
 *
 * `--etcd` takes a comma-separated list (all members of the etcd cluster);
 * `--prefix` (default `understudy/two-hosts/`) is where the lease lives;
 * `--every` the ms between counts. The active counts up once per interval
 * and commits each count (sync: the standby has it before the next one);
 * the standby keeps a live copy. Kill the active (or cut its network): the
 * other takes over within about T and counts on from where it stopped.
 *
 * Prints one JSON line per event: {"id","event":"role"|"count"|…}.
 */
import { Etcd3 } from 'etcd3'
import { Understudy } from 'understudy-ha'
import { etcdClientOptions, etcdLease } from 'understudy-ha/adapters/etcd'
import { tcp } from 'understudy-ha/adapters/tcp'

/** The group key every node of the group holds (the launcher sets it; see README). */
const key = process.env.UNDERSTUDY_KEY
if (!key) {
  console.error('set UNDERSTUDY_KEY to the group key (the same on every node); make one with: node -e "import(\'understudy-ha\').then(m => console.log(m.generateGroupKey()))"')
  process.exit(2)
}

const args = process.argv.slice(2)
const flag = (name: string, fallback?: string): string => {
  const i = args.indexOf(`--${name}`)
  const v = i >= 0 ? args[i + 1] : fallback
  if (v === undefined) {
    console.error(`two-hosts: --${name} is required (see the comment at the top of examples/two-hosts/node.ts)`)
    process.exit(2)
  }
  return v
}
const address = (s: string) => {
  const at = s.lastIndexOf(':')
  return { host: s.slice(0, at), port: Number(s.slice(at + 1)) }
}

const id = flag('id')
const listen = address(flag('listen'))
const peer = args.includes('--peer') ? address(flag('peer')) : undefined
const everyMs = Number(flag('every', '1000'))
const say = (event: string, fields: object = {}) => console.log(JSON.stringify({ id, event, at: Date.now(), ...fields }))

// No global retry and no circuit breaker: the lease store retries itself, where it can tell an applied write.
const client = new Etcd3(etcdClientOptions(flag('etcd').split(',')))
const ha = await Understudy.start({
  group: 'two-hosts',
  nodeId: id,
  transport: tcp({ key, id, listen, ...(peer ? { connect: peer } : {}) }),
  lease: etcdLease(client, { prefix: flag('prefix', 'understudy/two-hosts/') }),
  // T = 1.5 s rides out an etcd leader election (about 1 s on a default etcd) without a failover.
  heartbeat: { intervalMs: 250, timeoutMs: 1500 },
})
const state = ha.register('counter', { count: 0 })
ha.on('role', ({ role, epoch }) => say('role', { role, epoch, count: state.count }))
say('started', { role: ha.role })

const timer = setInterval(() => {
  if (ha.role !== 'active') return
  state.count++
  const count = state.count
  ha.commit().then(
    () => say('count', { count, epoch: ha.epoch }),
    (err: unknown) => say('not-committed', { count, error: String(err) }),
  )
}, everyMs)

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    clearInterval(timer)
    void ha.close().finally(() => {
      client.close()
      process.exit(0)
    })
  })
