/**
 * `npm run bench:etcd`: the etcd lease store on a real etcd (started here, on
 * 127.0.0.1 and in network namespaces; needs etcd-server, and root for the
 * partition rows), I = 100 ms, T = 400 ms:
 * - renewal latency: one compare-and-set renewal, single member and 3 members;
 * - handover blackout: `handover()` between two nodes (one process, TCP on
 *   loopback), from the last write accepted on the old active to the first on
 *   the new one (`blackoutMs`);
 * - kill -9 of the active node process → the other process is active;
 * - a partition (namespaces, iptables DROP both ways) of the active → it stops
 *   accepting writes, and → the other is active.
 * Writes its table into docs/benchmarks.md between the `bench:etcd` markers
 * (`npm run bench` keeps that block when it rewrites the page).
 */
import { TEST_KEY } from '../test/support/group-key.js'
import { Etcd3 } from 'etcd3'
import { Understudy, type LeaseRow } from '../src/index.js'
import { etcdClientOptions, etcdLease } from '../adapters/etcd.js'
import { tcp } from '../adapters/tcp.js'
import { writeBenchBlock } from './report.js'
import { Cluster, sleep, Writer, type ClusterNode } from '../test/support/cluster.js'
import { freePorts, startEtcd } from '../test/support/etcd.js'
import { NetLab, netnsUnavailable } from '../test/support/netns.js'
import { partitionCluster, partitionEtcd, side } from '../test/support/partition.js'

const TRIALS = Number(process.env.TRIALS ?? 10)
const I = 100
const T = 400
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number
const rows: string[] = []
const row = (name: string, xs: number[], note: string) => {
  const line = xs.length ? `| ${name} | ${pct(xs, 0.5).toFixed(1)} | ${pct(xs, 0.99).toFixed(1)} | ${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} | ${xs.length} | ${note} |` : `| ${name} | — | — | — | 0 | ${note} |`
  rows.push(line)
  console.log(line)
}

async function renewals(members: 1 | 3): Promise<number[]> {
  const e = await startEtcd({ members })
  const client = new Etcd3(etcdClientOptions(e.endpoints))
  try {
    const s = etcdLease(client, { prefix: 'bench/renew/' })
    let r = (await s.updateHeartbeat('a', 'p', undefined, 10_000)) as LeaseRow
    const out: number[] = []
    for (let i = 0; i < 520; i++) {
      const t0 = performance.now()
      r = (await s.updateHeartbeat('a', 'p', r, 10_000)) as LeaseRow
      if (i >= 20) out.push(performance.now() - t0)
    }
    return out
  } finally {
    client.close()
    await e.stop()
  }
}

async function handovers(): Promise<number[]> {
  const e = await startEtcd({ members: 1 })
  const client = new Etcd3(etcdClientOptions(e.endpoints))
  const out: number[] = []
  try {
    for (let trial = 0; trial < TRIALS + 2; trial++) {
      const [port] = await freePorts(1)
      const prefix = `bench/handover/${trial}/`
      const start = (id: string, link: object) => Understudy.start({ group: 'h', nodeId: id, transport: tcp({ key: TEST_KEY, id, ...link }), lease: etcdLease(client, { prefix }), heartbeat: { intervalMs: I, timeoutMs: T } })
      const a = await start('a', { listen: { port } })
      const b = await start('b', { connect: { port }, backoff: { initialMs: 5, maxMs: 50 } })
      for (let i = 0; i < 400 && a.role !== 'active' && b.role !== 'active'; i++) await sleep(5)
      const [act, stb] = a.role === 'active' ? [a, b] : [b, a]
      const root = act.register('app', { n: 0 })
      stb.register('app', { n: 0 })
      root.n++
      await act.commit()
      for (let i = 0; i < 400 && stb.stats().seq < act.stats().seq; i++) await sleep(5)
      await sleep(3 * I)
      const r = await act.handover({ timeoutMs: 2000 })
      if (trial >= 2) out.push(r.blackoutMs)
      await a.close()
      await b.close()
    }
  } finally {
    client.close()
    await e.stop()
  }
  return out
}

async function kills(): Promise<number[]> {
  const e = await startEtcd({ members: 1 })
  const c = await Cluster.create({ size: 2, group: 'bench-kill', etcd: { hosts: e.endpoints, prefix: `bench/kill/${process.pid}/` }, heartbeat: { intervalMs: I, timeoutMs: T } })
  const out: number[] = []
  try {
    await c.start(0)
    await c.start(1)
    const writer = new Writer(c, 250, 1_000_000, 10 * 60_000)
    writer.start()
    for (let trial = 0; trial < TRIALS; trial++) {
      const act = await c.waitForActive(0, 10_000)
      if (!act) throw new Error(`no active\n${c.timeline()}`)
      await c.warm(act.index)
      await c.waitForAcks(Date.now(), 50, 10_000)
      await sleep(2 * T)
      const at = Date.now()
      await c.kill(act.index)
      const next = await c.waitForActive(at, 10_000)
      if (!next) throw new Error(`no takeover\n${c.timeline()}`)
      out.push((c.roles.findLast((r) => r.who === next.who && r.role === 'active')?.at ?? Infinity) - at)
      await c.start(act.index)
    }
    await writer.stop()
  } finally {
    await c.close()
    await e.stop()
  }
  return out
}

async function partitions(): Promise<{ stop: number[]; takeover: number[] }> {
  const lab = NetLab.create()
  const stop: number[] = []
  const takeover: number[] = []
  let e: Awaited<ReturnType<typeof startEtcd>> | undefined
  let c: Cluster | undefined
  try {
    e = await partitionEtcd(lab)
    c = await partitionCluster(lab, 'bench-partition', `bench/partition/${process.pid}/`, { intervalMs: I, timeoutMs: T })
    const cl = c
    await cl.start(0)
    await cl.start(1)
    const writer = new Writer(cl, 250, 1_000_000, 10 * 60_000)
    writer.start()
    for (let trial = 0; trial < TRIALS; trial++) {
      const act = (await cl.waitForActive(0, 10_000)) as ClusterNode
      if (!act) throw new Error(`no active\n${cl.timeline()}`)
      await cl.waitForAcks(Date.now(), 50, 15_000)
      await sleep(2 * T)
      const who = act.who
      const at = Date.now()
      lab.cut(side(act.index))
      await cl.until(() => cl.roles.some((r) => r.who === who && r.at >= at && r.role !== 'active'), 5000)
      const next = await cl.waitForActive(at, 10_000)
      stop.push((cl.roles.find((r) => r.who === who && r.at >= at && r.role !== 'active')?.at ?? Infinity) - at)
      takeover.push((next ? (cl.roles.findLast((r) => r.who === next.who && r.role === 'active')?.at ?? Infinity) : Infinity) - at)
      await sleep(500)
      lab.heal(side(act.index))
    }
    await writer.stop()
  } finally {
    await c?.close()
    await e?.stop()
    lab.destroy()
  }
  return { stop, takeover }
}

console.log(`etcd lease store (etcd ${process.env.ETCD_VERSION ?? 'from the PATH'}), I = ${I} ms, T = ${T} ms, ${TRIALS} trials each; ms\n`)
console.log('| measure | p50 | p99 | min–max | n | what |')
console.log('| --- | --- | --- | --- | --- | --- |')
row('renewal (compare-and-set), 1 member', await renewals(1), 'one etcd transaction on 127.0.0.1')
row('renewal (compare-and-set), 3 members', await renewals(3), 'raft commit across 3 members on 127.0.0.1')
row('handover blackout', await handovers(), 'last write on the old active → first on the new (`blackoutMs`)')
row('kill -9 of the active → other active', await kills(), `bound: T + 2·I = ${T + 2 * I} ms (the standby sees the last renewal at its next read, then waits T, then beats)`)
const why = netnsUnavailable()
if (why) {
  console.log(`partition rows skipped: ${why}`)
  rows.push(`| partition | — | — | — | 0 | skipped: ${why} |`)
} else {
  const p = await partitions()
  row('partition: cut-off active stops accepting writes', p.stop, `bound: T = ${T} ms after its last confirmed renewal; timed from the start of the cut (two iptables calls, a few ms)`)
  row('partition: cut → other active (next epoch)', p.takeover, 'two namespaces for the nodes, one for etcd')
}

writeBenchBlock('etcd', [
  '## Failover on etcd',
  '',
  `\`npm run bench:etcd\` (${new Date().toISOString().slice(0, 10)}): the etcd lease store (\`understudy-ha/adapters/etcd\`) on a real etcd on this machine, I = ${I} ms, T = ${T} ms; ms.`,
  '',
  '| measure | p50 | p99 | min–max | n | what |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows,
])
console.log('\nwrote the etcd block of docs/benchmarks.md')
process.exit(0)
