/**
 * `npm run sim -- [--seeds N] [--from S] [--seed S] [--nodes K] [--workers W] [--lease cas|locked|etcd] [--verbose]`
 *
 * Runs the deterministic cluster simulation on N seeds from S (default 1,000
 * from 1), in W worker processes (default 2), and prints every violation with
 * its replay command and timeline. Exits 1 if any seed failed. `--seed S`
 * replays one seed and prints its whole timeline.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { report, runSeed, type RunOptions, type RunResult } from './run.js'

const args = process.argv.slice(2)
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const num = (name: string, fallback: number) => {
  const v = flag(name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`sim: --${name} takes a whole number, not ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}
const options: RunOptions = {}
if (flag('nodes') !== undefined) options.nodes = num('nodes', 2)
if (flag('lease') !== undefined) {
  const lease = flag('lease')
  if (lease !== 'cas' && lease !== 'locked' && lease !== 'etcd') {
    console.error(`sim: --lease is cas, locked or etcd, not ${JSON.stringify(lease)}`)
    process.exit(2)
  }
  options.lease = lease
}
if (options.nodes !== undefined && (options.nodes < 1 || options.nodes > 5)) {
  console.error('sim: --nodes is 1 to 5')
  process.exit(2)
}

async function worker(from: number, count: number): Promise<void> {
  for (let s = from; s < from + count; s++) {
    const r = await runSeed(s, options)
    process.send?.({ seed: s, failed: r.violations.length > 0, report: r.violations.length ? report(r) : undefined, acked: r.acked, steps: r.steps, activeAfterMs: r.activeAfterMs } satisfies Message)
  }
}

interface Message {
  seed: number
  failed: boolean
  report: string | undefined
  acked: number
  steps: number
  activeAfterMs: number | undefined
}

async function main(): Promise<void> {
  if (args.includes('--worker')) return worker(num('from', 1), num('seeds', 1))
  if (flag('seed') !== undefined) {
    const r: RunResult = await runSeed(num('seed', 1), { ...options, verbose: args.includes('--verbose') })
    console.log(report(r, args.includes('--verbose') ? Infinity : 120))
    process.exit(r.violations.length ? 1 : 0)
  }
  const seeds = num('seeds', 1000)
  const from = num('from', 1)
  const workers = Math.max(1, Math.min(num('workers', 2), seeds))
  const started = Date.now()
  let done = 0
  let acked = 0
  const failed: Message[] = []
  const activeAfter: number[] = []
  const per = Math.ceil(seeds / workers)
  const self = fileURLToPath(import.meta.url)
  await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const start = from + w * per
      const count = Math.min(per, from + seeds - start)
      if (count <= 0) return Promise.resolve()
      const passOn = ['--worker', '--from', String(start), '--seeds', String(count), ...(options.nodes ? ['--nodes', String(options.nodes)] : []), ...(options.lease ? ['--lease', options.lease] : [])]
      const child = fork(self, passOn, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      child.on('message', (m: Message) => {
        done++
        acked += m.acked
        if (m.activeAfterMs !== undefined) activeAfter.push(m.activeAfterMs)
        if (m.failed) {
          failed.push(m)
          console.log(m.report)
        }
        if (done % 500 === 0) console.log(`… ${done}/${seeds} seeds, ${failed.length} failed, ${((Date.now() - started) / 1000).toFixed(0)} s`)
      })
      return new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a sim worker exited with ${code}`)))))
    }),
  )
  const secs = (Date.now() - started) / 1000
  console.log(`sim: ${done} seeds (${from}–${from + seeds - 1}), ${acked} acknowledged writes checked, ${failed.length} with violations, ${secs.toFixed(1)} s`)
  if (activeAfter.length) {
    activeAfter.sort((a, b) => a - b)
    const q = (p: number) => activeAfter[Math.min(activeAfter.length - 1, Math.floor(p * activeAfter.length))]
    console.log(`liveness: after the last failure (the settled active crashes), an active in ${q(0.5)} ms (p50), ${q(0.99)} ms (p99), ${activeAfter.at(-1)} ms (max); every commit issued once the group settled resolved (checked per seed)`)
  }
  if (failed.length) console.log(`failed seeds: ${failed.map((f) => f.seed).join(' ')}`)
  process.exit(failed.length ? 1 : 0)
}

await main()
