/**
 * `npm run bench -- auth`: what group authentication costs. The same transport
 * without a key, with a key (HMAC-SHA-256 per frame) and with encryption
 * (AES-256-GCM), measured in interleaved rounds in one run (each measurement
 * its own process), so the machine's noise falls on all alike. Reports sync
 * commit p50 (one small change) and replicated sets/s (batches of 10,000),
 * and each variant's difference from the unauthenticated transport.
 */
import { execFileSync } from 'node:child_process'
import { nodeCrypto } from '../adapters/node-crypto.js'
import { writeDelta } from '../src/codec/frames.js'
import { GroupKeys, Handshake, type Session } from '../src/index.js'
import { median, writeBenchBlock } from './report.js'
import { TRANSPORTS, type TransportFigures } from './transports.js'


/** Families measured: the unauthenticated variant first. */
const FAMILIES = [['tcp (insecure)', 'tcp', 'tcp (aes-gcm)'], ['websocket (insecure)', 'websocket', 'websocket (aes-gcm)']].map((f) => f.filter((n) => TRANSPORTS.includes(n))).filter((f) => f.length > 1)

/** A connected pair of sessions (node:crypto), as two members' handshake makes them. */
async function sessions(encrypt: boolean): Promise<[Session, Session]> {
  const keys = await GroupKeys.create({ key: 'bench-group-key-0123456789abcdef', encrypt, crypto: nodeCrypto }, 'bench')
  const a = new Handshake(keys, { id: 'a', incarnation: 'a@1' }, true)
  const b = new Handshake(keys, { id: 'b', incarnation: 'b@1' })
  const pa = await a.receiveHello(b.hello)
  const pb = await b.receiveHello(a.hello)
  return [await a.receiveProof(pb), await b.receiveProof(pa)]
}

/** µs to seal on one end and open on the other, per message of `frame`'s size (median of 5 runs of `n`). */
async function sealOpenMicros(encrypt: boolean, frame: Uint8Array, n: number): Promise<number> {
  const [a, b] = await sessions(encrypt)
  const runs: number[] = []
  for (let r = 0; r < 6; r++) {
    const t = performance.now()
    for (let i = 0; i < n; i++) {
      const parts = a.seal(1, frame) as Uint8Array[]
      b.open(1, parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts))
    }
    if (r > 0) runs.push(((performance.now() - t) * 1000) / n)
  }
  return median(runs)
}

/**
 * The cost of the per-frame work alone, in this process: steadier than the
 * end-to-end figures on a shared machine. A sync commit of one change moves a
 * delta one way and an ack back; a batch of 10,000 sets moves one large delta.
 */
async function directCost(): Promise<string[]> {
  const delta = writeDelta(7, 123456, [[], [], [12, ['count', 123456]], []])
  const ack = new Uint8Array(8)
  const changes: unknown[] = []
  for (let i = 0; i < 10_000; i++) changes.push(i, i % 5 < 3 ? ['count', 1_000_000 + i] : ['name', `n7-${i}`])
  const batch = writeDelta(7, 123456, [[], [], changes, []] as never)
  const rows: string[] = []
  for (const encrypt of [false, true]) {
    const commit = (await sealOpenMicros(encrypt, delta, 20_000)) + (await sealOpenMicros(encrypt, ack, 20_000))
    const perBatch = await sealOpenMicros(encrypt, batch, 200)
    rows.push(`| ${encrypt ? 'AES-256-GCM' : 'HMAC-SHA-256'} | ${commit.toFixed(1)} | ${(perBatch / 1000).toFixed(2)} ms (${Math.round(batch.length / 1024)} KiB) | ${(perBatch / 10_000).toFixed(3)} |`)
  }
  return rows
}

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
  say('')
  say('The per-frame work alone (seal on one end, open on the other, node:crypto, in one process — steadier than the end-to-end figures above on a shared machine):\n')
  say('| frames | added per one-change sync commit (delta + ack), µs | added per 10,000-set batch | added per set, µs |')
  say('| --- | --- | --- | --- |')
  for (const row of await directCost()) say(row)
  say('')
  writeBenchBlock('auth', lines)
  progress('wrote the auth block of docs/benchmarks.md')
  return lines
}
