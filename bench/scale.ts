/**
 * Scale: the cost of one batch of 1,000 changes as the graph grows (it should
 * stay flat), the memory a tracked object costs, and the rate of tracked sets.
 * Run per size in a fresh process with --expose-gc.
 */
import { Understudy, seededRandom } from '../src/index.js'
import { MemoryNetwork } from '../adapters/memory.js'
import { BareTracker } from './bare.js'

export interface ScaleFigures {
  objects: number
  /** Median ms of one batch: 1,000 property sets, committed (sync) and applied by the standby; the objects' proxies already made. */
  batchMs: number
  /** The same batches the first time, when reading each object through its array makes its proxy. */
  coldBatchMs: number
  /** Heap the active's tracking adds per object, beyond the plain data (bytes). */
  activeBytesPerObject: number
  /** Heap a standby's copy takes per object, data included (bytes). */
  standbyBytesPerObject: number
  /** Property sets per second through the proxies (the batch closes after the loop). */
  setsPerSec: number
  /** The same loop through Proxies whose set trap only assigns: the ceiling for any Proxy-based tracker here. */
  proxyCeilingPerSec: number
  /** The bare tracker + cbor-x doing the same batch (mutate, encode, decode, apply) on the same number of objects: the floor's own growth. */
  bareBatchMs: number
  registerMs: number
}

const heap = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

export async function measureScale(n: number): Promise<ScaleFigures> {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'scale', transport: net.join('a'), role: 'active' })
  let items: { id: number; count: number }[] | undefined = Array.from({ length: n }, (_, id) => ({ id, count: 0 }))
  const h0 = heap()
  const t0 = performance.now()
  const root = active.register('r', { items })
  await active.commit({ mode: 'async' })
  const registerMs = performance.now() - t0
  items = undefined
  const h1 = heap()
  const standby = await Understudy.start({ group: 'scale', transport: net.join('b') })
  standby.register('r', {})
  await active.commit() // the standby joins and takes a snapshot
  await active.commit()
  const h2 = heap()
  const rnd = seededRandom(n)
  const proxied = root.items
  const batches = Array.from({ length: 30 }, () => Array.from({ length: 1000 }, () => Math.floor(rnd() * n)))
  const run = async (round: number): Promise<number[]> => {
    const times: number[] = []
    for (let b = 0; b < batches.length; b++) {
      const idx = batches[b] as number[]
      const t = performance.now()
      for (let i = 0; i < 1000; i++) (proxied[idx[i] as number] as { count: number }).count = round * 1e6 + b * 1000 + i
      await active.commit()
      times.push(performance.now() - t)
    }
    return times
  }
  // First touch: most objects a batch writes have never been read through a proxy (each read makes one);
  // at 1,000,000 objects nearly all have not. Then the same batches again, every proxy made (as the bare tracker's are).
  const cold = await run(1)
  const times = await run(2)
  // Tracked sets: the same held proxies written over and over (no commit inside the loop).
  const held = Array.from({ length: 1000 }, () => proxied[Math.floor(rnd() * n)] as { count: number })
  const SETS = 2_000_000
  const t1 = performance.now()
  for (let i = 0; i < SETS; i++) (held[i % 1000] as { count: number }).count = i
  const setsPerSec = SETS / ((performance.now() - t1) / 1000)
  await active.commit()
  await active.close()
  await standby.close()
  const ceiling = Array.from({ length: 1000 }, (_, i) => new Proxy({ id: i, count: 0 }, { set: (t, k, v) => ((t as Record<string | symbol, unknown>)[k] = v, true) }))
  const t2 = performance.now()
  for (let i = 0; i < SETS; i++) (ceiling[i % 1000] as { count: number }).count = i
  const proxyCeilingPerSec = SETS / ((performance.now() - t2) / 1000)
  const sorted = times.slice(5).sort((a, b) => a - b)
  const coldSorted = cold.slice(5).sort((a, b) => a - b)
  return {
    objects: n,
    batchMs: sorted[Math.floor(sorted.length / 2)] as number,
    coldBatchMs: coldSorted[Math.floor(coldSorted.length / 2)] as number,
    activeBytesPerObject: (h1 - h0) / n,
    standbyBytesPerObject: (h2 - h1) / n,
    setsPerSec,
    proxyCeilingPerSec,
    bareBatchMs: bareBatch(n, batches),
    registerMs,
  }
}

/** Median ms of the bare tracker's batch over `n` objects, on the same batches (the peers' floor, bench/bare.ts). */
function bareBatch(n: number, batches: number[][]): number {
  const source = Array.from({ length: n }, (_, id) => ({ id, count: 0 }))
  const tracker = new BareTracker(source, source.map((x) => ({ ...x })))
  const proxies = tracker.proxies
  const times: number[] = []
  for (let b = 0; b < batches.length; b++) {
    const idx = batches[b] as number[]
    const t = performance.now()
    for (let i = 0; i < idx.length; i++) (proxies[idx[i] as number] as { count: number }).count = b * 1000 + i
    tracker.flush()
    times.push(performance.now() - t)
  }
  const sorted = times.slice(5).sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}
