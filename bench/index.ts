/**
 * `npm run bench`: benchmarks, never part of `npm test`.
 * `npm run bench -- core`, `-- transports`, `-- failover` or `-- checkpoints` runs one part.
 * Transport figures come from separate processes (ROUNDS of them per transport),
 * reported as medians with min–max, so JIT warm-up and run order do not leak
 * from one measurement into the next.
 */
import { execFileSync } from 'node:child_process'
import { runCheckpoints } from './checkpoints.js'
import { runCore } from './core.js'
import { runFailover } from './failover.js'
import { TRANSPORTS, type TransportFigures } from './transports.js'

const parts = process.argv.slice(2)
const want = (p: string) => parts.length === 0 || parts.includes(p)
const ROUNDS = Number(process.env.ROUNDS ?? 5)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const span = (xs: number[], f: (x: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`

console.log(`Node ${process.version}, ${process.platform}/${process.arch}`)
if (want('core')) await runCore(ROUNDS)
if (want('failover')) await runFailover()
if (want('checkpoints')) await runCheckpoints()
if (want('transports')) {
  console.log(`\nTransports: both ends in one process; ${ROUNDS} separate processes per transport; median (min–max).`)
  console.log('Commit = sync commit of one small change; raw = the same bytes out and an ack-sized reply back on the bare transport.')
  console.log('Sets = 10,000 property sets per sync commit; raw = the bare transport moving the same frames.\n')
  console.log('| transport | commit p50 µs | raw RTT p50 µs | encode µs | commit ÷ (2×raw + encode) | replicated sets/s | raw moves the same frames at (sets/s) |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const name of TRANSPORTS) {
    const runs: TransportFigures[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', new URL('./child.ts', import.meta.url).pathname, 'transport', name], { encoding: 'utf8' })
      runs.push(JSON.parse(out.trim().split('\n').at(-1) as string) as TransportFigures)
    }
    const us = (ms: number) => (ms * 1000).toFixed(1)
    const ratio = runs.map((r) => r.p50 / (2 * r.rawRtt + r.encodeUs / 1000))
    console.log(
      `| ${name} | ${span(runs.map((r) => r.p50), us)} | ${span(runs.map((r) => r.rawRtt), us)} | ${median(runs.map((r) => r.encodeUs)).toFixed(2)} | ${span(ratio, (x) => x.toFixed(2))} | ${span(runs.map((r) => r.setsPerSec), (x) => Math.round(x).toLocaleString())} | ${Math.round(median(runs.map((r) => r.rawSetsPerSec))).toLocaleString()} |`,
    )
  }
}
