/**
 * Decoding delta frames of workload (a)'s shape — 1,000 property sets per
 * batch, 60% `count` numbers and 40% short ASCII `name` strings — with the
 * frame reader and with cbor-x's `decode`, side by side in one process:
 *
 *   npx tsx bench/codec-decode.ts
 *
 * Prints the median time per change over interleaved rounds: first in a fresh
 * process, where cbor-x has seen nothing but these frames, then again after
 * both decoders have read other shapes (snapshot-like frames, nested arrays,
 * floats, bigints, long and non-ASCII strings).
 */
import { decode as cborxDecode } from 'cbor-x'
import { CborReader } from '../src/codec/reader.js'
import { readFrame, writeDelta, writeHello, writeSnapshot } from '../src/codec/frames.js'
import { CborWriter } from '../src/codec/writer.js'
import { seededRandom } from '../src/random.js'
import type { DeltaBody } from '../src/graph/wire.js'
import { makeOps } from './workload.js'

const ops = makeOps(10_000, 100, 1_000)
/** One delta per batch: each item's changed fields as `[id, [key, value, …]]`, item ids after the root's array's. */
const frames = ops.map((batch, b) => {
  const byItem = new Map<number, Map<string, unknown>>()
  for (const [i, f, v] of batch) {
    let fields = byItem.get(i)
    if (!fields) byItem.set(i, (fields = new Map()))
    fields.set(f, v)
  }
  const changes: unknown[] = []
  for (const [i, fields] of byItem) changes.push(i + 3, [...fields].flat())
  return writeDelta(1, b + 1, [[], [], changes, []] as DeltaBody)
})
const changes = ops.reduce((n, b) => n + b.length, 0)
const bytes = frames.reduce((n, f) => n + f.length, 0)

const reader = new CborReader()
const runs: Record<string, () => void> = {
  'CborReader.decode': () => {
    for (const f of frames) reader.decode(f)
  },
  'readFrame (decode + frame checks)': () => {
    for (const f of frames) readFrame(f)
  },
  'cbor-x decode': () => {
    for (const f of frames) cborxDecode(f)
  },
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number

function measure(title: string): void {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]))
  for (let round = 0; round < 25; round++)
    for (const [name, run] of Object.entries(round % 2 ? runs : Object.fromEntries(Object.entries(runs).reverse()))) {
      const t = performance.now()
      run()
      times[name]!.push(performance.now() - t)
    }
  console.log(`${title}: median of 25 interleaved rounds (first 5 dropped)`)
  const ours = median(times['CborReader.decode']!.slice(5))
  for (const [name, ts] of Object.entries(times)) {
    const m = median(ts.slice(5))
    console.log(`  ${name.padEnd(36)} ${((m * 1e6) / changes).toFixed(0).padStart(5)} ns/set  ${(m / ours).toFixed(2)}× CborReader's time`)
  }
}

/** Frames of other shapes, decoded by both between the two measurements. */
function otherShapes(): Uint8Array[] {
  const r = seededRandom(9)
  const writer = new CborWriter()
  const out: Uint8Array[] = []
  for (let i = 0; i < 2_000; i++) {
    const leaf = () => [r() * 1e9, Math.floor(r() * 2 ** 40), BigInt(Math.floor(r() * 1e6)) << 60n, `naïve ${i}`, 'x'.repeat(Math.floor(r() * 90)), null, true, new Uint8Array(5)][i % 8]
    out.push(writeSnapshot(1, i, [['r', 1], Array.from({ length: 20 }, (_, j) => [j, 1, [`k${j}`, leaf(), 'tags', [j]]])] as never))
    out.push(writeHello({ group: `g${i}`, node: `n${i}`, role: 'active', epoch: i, seq: i }))
    out.push(writer.encode([[leaf(), [leaf(), [leaf()]]], leaf()]))
  }
  return out
}

console.log(`${frames.length} delta frames, ${changes} sets, ${(bytes / frames.length).toFixed(0)} bytes per frame`)
measure('fresh')
for (const f of otherShapes()) {
  reader.decode(f)
  cborxDecode(f)
}
measure('after other shapes')
