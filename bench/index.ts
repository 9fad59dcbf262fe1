/**
 * `npm run bench`: benchmarks, never part of `npm test`.
 *
 * With no arguments every part runs and the report is written to
 * docs/benchmarks.md and docs/benchmarks.json. Parts: `peers` (every peer on
 * workloads a–e; `peers a c` for some), `scale`, `transports`,
 * `failover`, `checkpoints`, `queue`, `auth`; e.g. `npm run bench -- peers a`.
 * Each peer and transport measurement runs in its own process (ROUNDS of
 * them, default 5), reported as the median with min–max, so JIT warm-up and
 * run order do not leak from one measurement into the next.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { runAuth } from './auth.js'
import { runCheckpoints } from './checkpoints.js'
import { runFailover } from './failover.js'
import { runQueue } from './queue.js'
import { TRANSPORTS, type TransportFigures } from './transports.js'
import { environment, median, peerTables, runPeers, runScale, scaleTable, targets, type PeerRow } from './report.js'
import type { ScaleFigures } from './scale.js'
import type { WorkloadName } from './peers.js'

const args = process.argv.slice(2)
const parts = args.filter((a) => !/^[a-e]$/.test(a))
const workloads = args.filter((a) => /^[a-e]$/.test(a)) as WorkloadName[]
const all = parts.length === 0
const want = (p: string) => all || parts.includes(p)
const ROUNDS = Number(process.env.ROUNDS ?? 5)

const span = (xs: number[], f: (x: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`

// Everything printed is also collected for the report.
const out: string[] = []
const print = (line = '') => {
  out.push(line)
  process.stdout.write(`${line}\n`)
}
const progress = (line: string) => process.stderr.write(`${line}\n`)
console.log = (...xs: unknown[]) => print(xs.map(String).join(' '))

print(`# Benchmarks\n\nWritten by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.\n`)
for (const line of environment()) print(line)
print('')

let rows: PeerRow[] = []
let scale: ScaleFigures[] = []
if (want('peers')) {
  progress(`peers: ${ROUNDS} rounds, each running every peer on the workload in its own process`)
  rows = await runPeers(ROUNDS, workloads.length ? workloads : undefined, progress)
  print('## Side by side\n')
  print('Each peer is driven through its idiomatic API on the same seeded operations; every run checks that the replica equals the source. Time covers mutating, producing the payload and applying it on the replica. Heap per object: the heap the setup (source and replica) took, after GC, per object of the source.\n')
  for (const line of peerTables(rows)) print(line)
}
if (want('scale')) {
  progress('scale: 1k, 10k, 100k, 1M objects (3 processes each)')
  scale = await runScale([1_000, 10_000, 100_000, 1_000_000], progress)
  print('## Scale\n')
  print('One batch of 1,000 property sets through `root.items[i]` (committed, applied by the standby) as the graph grows, 30 batches, median: first with the objects\' proxies already made (the bare tracker makes all of its proxies up front), then the same batches on first touch, when reading an object through its array also makes its proxy. Beside them the bare tracker + cbor-x on the same number of objects. Memory per object: the heap registering took on the active (tracking only; the data existed before), and a standby\'s whole copy. Sets/s: 1,000 held proxies written over and over, beside Proxies whose trap only assigns.\n')
  for (const line of scaleTable(scale)) print(line)
}
const goals = targets(rows, scale)
if (goals.length) {
  print('## Targets\n')
  print('| target | measured | met |', )
  print('| --- | --- | --- |')
  for (const g of goals) print(`| ${g.target} | ${g.measured} | ${g.met ? 'yes' : '**no**'} |`)
  print('')
}
if (want('failover')) await runFailover()
if (want('checkpoints')) await runCheckpoints()
if (want('queue')) await runQueue()
if (want('transports')) {
  console.log(`\nTransports: both ends in one process; ${ROUNDS} separate processes per transport; median (min–max).`)
  console.log('Commit = sync commit of one small change; raw = the same bytes out and an ack-sized reply back on the bare transport.')
  console.log('Sets = 10,000 property sets per sync commit; raw = the bare transport moving the same frames.\n')
  console.log('| transport | commit p50 µs | raw RTT p50 µs | encode µs | commit ÷ (2×raw + encode) | replicated sets/s | raw moves the same frames at (sets/s) |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const name of TRANSPORTS) {
    const runs: TransportFigures[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const o = execFileSync(process.execPath, ['--import', 'tsx', new URL('./child.ts', import.meta.url).pathname, 'transport', name], { encoding: 'utf8' })
      runs.push(JSON.parse(o.trim().split('\n').at(-1) as string) as TransportFigures)
    }
    const us = (ms: number) => (ms * 1000).toFixed(1)
    const ratio = runs.map((r) => r.p50 / (2 * r.rawRtt + r.encodeUs / 1000))
    console.log(
      `| ${name} | ${span(runs.map((r) => r.p50), us)} | ${span(runs.map((r) => r.rawRtt), us)} | ${median(runs.map((r) => r.encodeUs)).toFixed(2)} | ${span(ratio, (x) => x.toFixed(2))} | ${span(runs.map((r) => r.setsPerSec), (x) => Math.round(x).toLocaleString())} | ${Math.round(median(runs.map((r) => r.rawSetsPerSec))).toLocaleString()} |`,
    )
  }
}
if (all || process.env.BENCH_WRITE) {
  const docs = new URL('../docs/', import.meta.url)
  // Blocks written by parts that update the page in place (`npm run bench:etcd`, `auth`) are kept as they are.
  const before = existsSync(new URL('benchmarks.md', docs)) ? readFileSync(new URL('benchmarks.md', docs), 'utf8') : ''
  const blocks = before.match(/<!-- bench:(\w+) -->[\s\S]*?<!-- \/bench:\1 -->/g) ?? []
  writeFileSync(new URL('benchmarks.md', docs), `${out.join('\n')}\n${blocks.map((b) => `\n${b}\n`).join('')}`)
  writeFileSync(new URL('benchmarks.json', docs), `${JSON.stringify({ date: new Date().toISOString(), environment: environment(), peers: rows, scale, targets: goals }, null, 1)}\n`)
  progress('wrote docs/benchmarks.md and docs/benchmarks.json')
}
// Writes its own block into docs/benchmarks.md (in place), after the page above.
if (want('auth')) await runAuth(ROUNDS, (line = '') => process.stdout.write(`${line}\n`), progress)
