/**
 * Workload (a): 10,000 items, 100 batches × 1,000 property sets, replicated to a
 * standby. Understudy is measured beside two peers in the same process and run,
 * interleaved, median of several rounds:
 * - a bare Proxy dirty tracker + cbor-x (the floor for this approach), and
 * - a full JSON snapshot per batch (what "just send the state" costs).
 * Each run checks that the replica equals the source.
 */
import { Encoder } from 'cbor-x'
import { isDeepStrictEqual } from 'node:util'
import { Understudy } from '../src/index.js'
import { MemoryNetwork } from '../adapters/memory.js'
import { makeItems, makeOps, type Item, type SetOp } from './workload.js'

export interface Result {
  name: string
  ms: number
  bytes: number
}

const ITEMS = 10_000
const BATCHES = 100
const PER_BATCH = 1_000

function plain(items: Item[]): Item[] {
  return items.map((i) => ({ id: i.id, name: i.name, count: i.count, tags: [...i.tags] }))
}

async function understudy(ops: SetOp[][]): Promise<Result> {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'bench', transport: net.join('a'), role: 'active' })
  const standby = await Understudy.start({ group: 'bench', transport: net.join('b') })
  const root = active.register('r', { items: makeItems(ITEMS) })
  await active.commit()
  const bytes0 = net.bytes
  const t0 = performance.now()
  const items = root.items
  for (const batch of ops) {
    for (const [i, f, v] of batch) (items[i] as unknown as Record<string, unknown>)[f] = v
    await active.commit()
  }
  const ms = performance.now() - t0
  const bytes = net.bytes - bytes0
  const replica = (standby.root('r') as { items: Item[] }).items
  if (!isDeepStrictEqual(plain(replica), plain(root.items))) throw new Error('understudy: replica differs')
  await active.close()
  await standby.close()
  return { name: 'understudy (sync commit, memory transport)', ms, bytes }
}

/** The floor: a Proxy that records (id, key) pairs; flush encodes values with cbor-x; the replica applies by id. */
function bareTracker(ops: SetOp[][]): Result {
  const enc = new Encoder({ useRecords: false })
  const source = makeItems(ITEMS)
  const replica = plain(source)
  const dirty: [number, string][] = []
  const proxies = source.map((item, id) => new Proxy(item, {
    set(t, k, v) {
      ;(t as unknown as Record<string, unknown>)[k as string] = v
      dirty.push([id, k as string])
      return true
    },
  }))
  let bytes = 0
  const t0 = performance.now()
  for (const batch of ops) {
    for (const [i, f, v] of batch) (proxies[i] as unknown as Record<string, unknown>)[f] = v
    const out: unknown[] = []
    for (const [id, k] of dirty) out.push(id, k, (source[id] as unknown as Record<string, unknown>)[k])
    dirty.length = 0
    const frame = enc.encode(out)
    bytes += frame.length
    const got = enc.decode(frame) as unknown[]
    for (let j = 0; j < got.length; j += 3) (replica[got[j] as number] as unknown as Record<string, unknown>)[got[j + 1] as string] = got[j + 2]
  }
  const ms = performance.now() - t0
  if (!isDeepStrictEqual(replica, plain(source))) throw new Error('bare tracker: replica differs')
  return { name: 'bare Proxy tracker + cbor-x (floor)', ms, bytes }
}

function jsonSnapshot(ops: SetOp[][]): Result {
  const source = makeItems(ITEMS)
  let replica: Item[] = []
  let bytes = 0
  const t0 = performance.now()
  for (const batch of ops) {
    for (const [i, f, v] of batch) (source[i] as unknown as Record<string, unknown>)[f] = v
    const s = JSON.stringify(source)
    bytes += Buffer.byteLength(s)
    replica = JSON.parse(s) as Item[]
  }
  const ms = performance.now() - t0
  if (!isDeepStrictEqual(replica, source)) throw new Error('json: replica differs')
  return { name: 'full JSON snapshot per batch', ms, bytes }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

export async function runCore(rounds = 5): Promise<void> {
  const ops = makeOps(ITEMS, BATCHES, PER_BATCH)
  const runs = new Map<string, Result[]>()
  for (let r = 0; r < rounds; r++) {
    for (const res of [await understudy(ops), bareTracker(ops), jsonSnapshot(ops)]) {
      runs.set(res.name, [...(runs.get(res.name) ?? []), res])
    }
  }
  const ours = median((runs.get('understudy (sync commit, memory transport)') as Result[]).map((r) => r.ms))
  console.log(`\nWorkload (a): ${ITEMS.toLocaleString()} items, ${BATCHES} batches × ${PER_BATCH.toLocaleString()} property sets (60% numbers, 40% strings); median of ${rounds} rounds, min–max\n`)
  console.log('| implementation | total ms (min–max) | sets/s | payload bytes | bytes/set | time vs understudy |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const [name, rs] of runs) {
    const ms = median(rs.map((r) => r.ms))
    const bytes = (rs[0] as Result).bytes
    const sets = BATCHES * PER_BATCH
    console.log(
      `| ${name} | ${ms.toFixed(1)} (${Math.min(...rs.map((r) => r.ms)).toFixed(1)}–${Math.max(...rs.map((r) => r.ms)).toFixed(1)}) | ${Math.round((sets / ms) * 1000).toLocaleString()} | ${bytes.toLocaleString()} | ${(bytes / sets).toFixed(1)} | ${(ms / ours).toFixed(2)}× |`,
    )
  }
}
