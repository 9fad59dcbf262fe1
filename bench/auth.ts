/**
 * `npm run bench -- auth`: what group authentication costs. The same transport
 * without a key, with a key (HMAC-SHA-256 per frame) and with encryption
 * (AES-256-GCM), measured in interleaved rounds in one run (each measurement
 * its own process), so the machine's noise falls on all alike. Reports sync
 * commit p50 (one small change) and replicated sets/s (batches of 10,000),
 * and each variant's difference from the unauthenticated transport.
 */
import { execFileSync } from 'node:child_process'
import { writeBenchBlock } from './report.js'
import { TRANSPORTS, type TransportFigures } from './transports.js'

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** Families measured: the unauthenticated variant first. */
const FAMILIES = [['tcp (insecure)', 'tcp', 'tcp (aes-gcm)'], ['websocket (insecure)', 'websocket', 'websocket (aes-gcm)']].map((f) => f.filter((n) => TRANSPORTS.includes(n))).filter((f) => f.length > 1)

export async function runAuth(rounds: number, print: (line?: string) => void, progress: (line: string) => void): Promise<string[]> {
  const runs = new Map<string, TransportFigures[]>()
  for (let r = 0; r < rounds; r++)
    for (const family of FAMILIES)
      for (const name of family) {
        progress(`auth: round ${r + 1}/${rounds}, ${name}`)
        const o = execFileSync(process.execPath, ['--import', 'tsx', new URL('./child.ts', import.meta.url).pathname, 'transport', name], { encoding: 'utf8' })
        runs.set(name, [...(runs.get(name) ?? []), JSON.parse(o.trim().split('\n').at(-1) as string) as TransportFigures])
      }
  const lines: string[] = []
  const say = (line = '') => {
    lines.push(line)
    print(line)
  }
  say('## Cost of group authentication\n')
  say(`\`npm run bench -- auth\` (${new Date().toISOString().slice(0, 10)}).\n`)
  say(`Each transport without a key (\`insecure: true\`), with a key (every frame tagged: HMAC-SHA-256, \`node:crypto\`) and with \`encrypt: true\` (AES-256-GCM); ${rounds} interleaved rounds, each measurement its own process, median. Commit = sync commit of one small change (both ends in one process, so both ends' sealing and opening are in it); sets = 10,000 property sets per sync commit. Targets: ≤ 20 µs added per commit, ≤ 15% fewer sets/s.\n`)
  say('| transport | commit p50 µs | added µs | replicated sets/s | vs no key |')
  say('| --- | --- | --- | --- | --- |')
  for (const family of FAMILIES) {
    const base = runs.get(family[0] as string) as TransportFigures[]
    const p50 = median(base.map((x) => x.p50)) * 1000
    const sets = median(base.map((x) => x.setsPerSec))
    for (const name of family) {
      const xs = runs.get(name) as TransportFigures[]
      const mine = median(xs.map((x) => x.p50)) * 1000
      const rate = median(xs.map((x) => x.setsPerSec))
      const first = name === family[0]
      say(`| ${name} | ${mine.toFixed(1)} | ${first ? '—' : `${mine - p50 >= 0 ? '+' : ''}${(mine - p50).toFixed(1)}`} | ${Math.round(rate).toLocaleString('en-US')} | ${first ? '—' : `${(((rate - sets) / sets) * 100).toFixed(1)}%`} |`)
    }
  }
  writeBenchBlock('auth', lines)
  progress('wrote the auth block of docs/benchmarks.md')
  return lines
}
