/**
 * The side-by-side part of `npm run bench`: every peer on every workload, each
 * measurement in a fresh process (median of ROUNDS with min–max), the scale
 * figures, and the targets — returned as Markdown and as data.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { PEERS, WORKLOADS, type Measured, type WorkloadName } from './peers.js'
import type { ScaleFigures } from './scale.js'

const CHILD = new URL('./child.ts', import.meta.url).pathname
/** A single run longer than this is stopped and reported as such. */
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_MS ?? 120_000)
/** After this much time on one peer and workload, fewer than ROUNDS runs are reported (at least one). No limit unless set: every peer that finishes a run gets ROUNDS of them. */
const BUDGET_MS = Number(process.env.BENCH_BUDGET_MS ?? Number.POSITIVE_INFINITY)

type RunResult = Measured | { na: string } | { timeout: number } | { error: string }

function child(args: string[], extra: string[] = []): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', '--max-old-space-size=4096', ...extra, '--import', 'tsx', CHILD, ...args], { timeout: RUN_TIMEOUT_MS, maxBuffer: 1 << 24 }, (err, stdout) => {
      if (err && (err as { killed?: boolean }).killed) return resolve({ timeout: RUN_TIMEOUT_MS })
      if (err) return resolve({ error: String(err.message).split('\n').slice(0, 3).join(' ') })
      resolve(JSON.parse(stdout.trim().split('\n').at(-1) as string) as RunResult)
    })
  })
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1))

export interface PeerRow {
  peer: string
  workload: WorkloadName
  /** Each run, with the round it ran in (see {@link runPeers}). */
  runs: (Measured & { round?: number })[]
  note?: string
}

export interface Report {
  markdown: string[]
  rows: PeerRow[]
  scale: ScaleFigures[]
  targets: { target: string; measured: string; met: boolean }[]
}

export function environment(): string[] {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version
    } catch {
      return '?'
    }
  }
  const cpu = cpus()
  return [
    `- Machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${process.platform}/${process.arch}`,
    `- Node ${process.version}; understudy-ha ${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}`,
    `- Peers: ${['yjs', '@automerge/automerge', 'valtio', 'immer', 'cbor-x'].map((p) => `${p} ${pkg(p)}`).join(', ')}`,
  ]
}

/**
 * Runs every peer on each workload, a fresh process per run. Rounds are
 * interleaved — round r runs every peer once, starting at a different peer
 * each round — so a slow spell on this shared machine lands on all peers
 * alike, and each run records its round, so ratios can be taken between runs
 * made side by side.
 */
export async function runPeers(rounds: number, only?: WorkloadName[], log: (line: string) => void = () => undefined): Promise<PeerRow[]> {
  const rows: PeerRow[] = []
  const peers = Object.keys(PEERS)
  for (const w of only ?? (Object.keys(WORKLOADS) as WorkloadName[])) {
    const here: (PeerRow & { spent: number })[] = peers.map((peer) => ({ peer, workload: w, runs: [], spent: 0 }))
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < here.length; k++) {
        const row = here[(k + r) % here.length] as PeerRow & { spent: number }
        if (row.note || (row.runs.length && row.spent > BUDGET_MS)) continue
        const t = Date.now()
        const res = await child(['peer', row.peer, w])
        row.spent += Date.now() - t
        if ('na' in res) row.note = `n/a: ${res.na}`
        else if ('timeout' in res) row.note = `stopped: one run took over ${res.timeout / 1000} s`
        else if ('error' in res) row.note = `error: ${res.error}`
        else row.runs.push({ ...res, round: r })
      }
    }
    for (const { spent: _, ...row } of here) {
      log(`  ${w} ${row.peer}: ${row.runs.length ? `${fmt(median(row.runs.map((x) => x.ms)))} ms × ${row.runs.length}` : row.note}`)
      rows.push(row)
    }
  }
  return rows
}

/** Median over the rounds both peers ran of (a's time ÷ b's time): each ratio from two runs made side by side. */
export function pairedRatio(rows: PeerRow[], a: string, b: string, w: WorkloadName): number | undefined {
  const ra = rows.find((x) => x.peer === a && x.workload === w)
  const rb = rows.find((x) => x.peer === b && x.workload === w)
  if (!ra || !rb) return undefined
  const ratios: number[] = []
  for (const x of ra.runs) {
    const y = rb.runs.find((z) => z.round === x.round)
    if (y) ratios.push(x.ms / y.ms)
  }
  return ratios.length ? median(ratios) : undefined
}

export async function runScale(sizes: number[], log: (line: string) => void = () => undefined): Promise<ScaleFigures[]> {
  const out: ScaleFigures[] = []
  for (const n of sizes) {
    const runs: ScaleFigures[] = []
    for (let r = 0; r < 3; r++) {
      const res = (await child(['scale', String(n)])) as unknown as ScaleFigures
      if (typeof res.batchMs === 'number') runs.push(res)
    }
    if (!runs.length) continue
    const pick = (f: (s: ScaleFigures) => number) => median(runs.map(f))
    out.push({
      objects: n,
      batchMs: pick((s) => s.batchMs),
      coldBatchMs: pick((s) => s.coldBatchMs),
      activeBytesPerObject: pick((s) => s.activeBytesPerObject),
      standbyBytesPerObject: pick((s) => s.standbyBytesPerObject),
      setsPerSec: pick((s) => s.setsPerSec),
      proxyCeilingPerSec: pick((s) => s.proxyCeilingPerSec),
      bareBatchMs: pick((s) => s.bareBatchMs),
      registerMs: pick((s) => s.registerMs),
    })
    log(`  scale ${n.toLocaleString()}: batch ${pick((s) => s.batchMs).toFixed(2)} ms`)
  }
  return out
}

export function peerTables(rows: PeerRow[]): string[] {
  const md: string[] = []
  for (const w of Object.keys(WORKLOADS) as WorkloadName[]) {
    const here = rows.filter((r) => r.workload === w)
    if (!here.length) continue
    const ours = here.find((r) => r.peer === 'understudy')
    const oursMs = ours?.runs.length ? median(ours.runs.map((r) => r.ms)) : undefined
    const oursBytes = ours?.runs[0]?.bytes
    md.push(`### ${WORKLOADS[w]}`, '')
    md.push('| peer | total ms, median (min–max) [runs] | time ÷ understudy | payload bytes | payload ÷ understudy | heap per object, B, median (min–max) |', '| --- | --- | --- | --- | --- | --- |')
    for (const r of here) {
      if (!r.runs.length) {
        md.push(`| ${r.peer} | ${r.note ?? 'no run'} | | | | |`)
        continue
      }
      const ms = r.runs.map((x) => x.ms)
      const m = median(ms)
      const bytes = r.runs[0]?.bytes as number
      md.push(
        `| ${r.peer} | ${fmt(m)} (${fmt(Math.min(...ms))}–${fmt(Math.max(...ms))}) [${r.runs.length}] | ${oursMs ? (m / oursMs).toFixed(2) : '–'} | ${bytes.toLocaleString()} | ${oursBytes ? (bytes / oursBytes).toFixed(2) : '–'} | ${heapSpan(r.runs.map((x) => x.heapPerObject))} |`,
      )
    }
    md.push('')
  }
  return md
}

function heapSpan(xs: number[]): string {
  const r = (x: number) => Math.round(x).toLocaleString()
  return `${r(median(xs))} (${r(Math.min(...xs))}–${r(Math.max(...xs))})`
}

export function scaleTable(scale: ScaleFigures[]): string[] {
  if (!scale.length) return []
  return [
    '| objects | one batch of 1,000 sets, ms (median) | the same batches on first touch, ms | bare tracker, same batch, ms | active: tracking bytes per object | standby: bytes per object (data included) | tracked sets/s | empty-trap Proxy sets/s | register ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...scale.map(
      (s) =>
        `| ${s.objects.toLocaleString()} | ${s.batchMs.toFixed(2)} | ${s.coldBatchMs.toFixed(2)} | ${s.bareBatchMs.toFixed(2)} | ${Math.round(s.activeBytesPerObject)} | ${Math.round(s.standbyBytesPerObject)} | ${Math.round(s.setsPerSec).toLocaleString()} | ${Math.round(s.proxyCeilingPerSec).toLocaleString()} | ${Math.round(s.registerMs)} |`,
    ),
    '',
  ]
}

export function targets(rows: PeerRow[], scale: ScaleFigures[]): Report['targets'] {
  const bytes = (peer: string, w: WorkloadName) => rows.find((x) => x.peer === peer && x.workload === w)?.runs[0]?.bytes
  const out: Report['targets'] = []
  const BARE = 'bare tracker + cbor-x'
  const paired = (a: string, b: string) => pairedRatio(rows, a, b, 'a')
  const medianMs = (peer: string) => {
    const r = rows.find((x) => x.peer === peer && x.workload === 'a')
    return r?.runs.length ? median(r.runs.map((x) => x.ms)) : undefined
  }
  // The paired ratio decides; the ratio of the medians is shown beside it (this machine's spells make them differ).
  const both = (a: string, b: string, r: number) => {
    const ma = medianMs(a)
    const mb = medianMs(b)
    return `${r.toFixed(2)}× paired${ma && mb ? ` (${(ma / mb).toFixed(2)}× of the medians)` : ''}`
  }
  const vsBare = paired('understudy', BARE)
  if (vsBare) out.push({ target: 'workload (a) ≤ 1.5× the bare tracker’s time', measured: `${both('understudy', BARE, vsBare)}, through \`root.items[i]\``, met: vsBare <= 1.5 })
  const HELD = 'understudy, held item proxies'
  const heldVsBare = paired(HELD, BARE)
  if (heldVsBare)
    out.push({ target: 'the same, with the bare tracker’s access pattern (item proxies held)', measured: both(HELD, BARE, heldVsBare), met: heldVsBare <= 1.5 })
  for (const [peer, k] of [['valtio', 4.5], ['yjs', 9]] as const) {
    const ratio = paired(peer, 'understudy')
    if (ratio) out.push({ target: `workload (a) ≥ ${k}× faster than ${peer}`, measured: both(peer, 'understudy', ratio), met: ratio >= k })
  }
  const ob = bytes('understudy', 'a')
  const bb = bytes('bare tracker + cbor-x', 'a')
  if (ob && bb) out.push({ target: 'payload (a) ≤ the bare tracker’s + 10%', measured: `+${((ob / bb - 1) * 100).toFixed(1)}%`, met: ob <= bb * 1.1 })
  const big = scale.at(-1)
  const small = scale[0]
  const best = Math.max(...scale.map((s) => s.setsPerSec))
  const ceiling = Math.max(...scale.map((s) => s.proxyCeilingPerSec))
  if (big)
    out.push({
      target: 'tracked sets ≥ 40 M/s',
      measured: `${(big.setsPerSec / 1e6).toFixed(1)} M/s at ${big.objects.toLocaleString()} objects (${(best / 1e6).toFixed(1)} at best); a Proxy whose trap only assigns: ${(ceiling / 1e6).toFixed(1)} M/s`,
      met: big.setsPerSec >= 40e6,
    })
  if (big && small && big !== small)
    out.push({
      target: `delta cost growth ${small.objects.toLocaleString()} → ${big.objects.toLocaleString()} objects ≤ 2×`,
      measured: `${(big.batchMs / small.batchMs).toFixed(2)}× (the bare tracker: ${(big.bareBatchMs / small.bareBatchMs).toFixed(2)}×; on first touch, when each write also makes the object's proxy: ${(big.coldBatchMs / small.coldBatchMs).toFixed(2)}×)`,
      met: big.batchMs / small.batchMs <= 2,
    })
  const sized = scale.filter((s) => s.objects >= 10_000)
  const worst = sized.length ? Math.max(...sized.map((s) => s.activeBytesPerObject)) : undefined
  if (worst !== undefined)
    out.push({
      target: '≤ 120 B per tracked object',
      measured: `${sized.map((s) => `${Math.round(s.activeBytesPerObject)} B at ${s.objects.toLocaleString()}`).join(', ')} on the active (tracking only; fixed costs dominate below 10,000)`,
      met: worst <= 120,
    })
  return out
}

/**
 * Writes `lines` into docs/benchmarks.md between `<!-- bench:name -->` markers,
 * in place (or appended): a part run on its own updates its block and keeps
 * the rest of the page.
 */
export function writeBenchBlock(name: string, lines: string[]): void {
  const begin = `<!-- bench:${name} -->`
  const end = `<!-- /bench:${name} -->`
  const block = [begin, ...lines, end].join('\n')
  const page = new URL('../docs/benchmarks.md', import.meta.url)
  const text = existsSync(page) ? readFileSync(page, 'utf8') : ''
  const at = text.indexOf(begin)
  writeFileSync(page, at >= 0 ? `${text.slice(0, at)}${block}${text.slice(text.indexOf(end) + end.length)}` : `${text.trimEnd()}\n\n${block}\n`)
}
