/**
 * Scale: the cost of one batch of 1,000 changes as the graph grows (it should
 * stay flat), the memory a tracked object costs, and the rate of tracked sets.
 * Run per size in a fresh process with --expose-gc.
 */
import { Understudy, seededRandom } from '../src/index.js'
import { MemoryNetwork } from '../adapters/memory.js'

export interface ScaleFigures {
  objects: number
  /** Median ms of one batch: 1,000 property sets, committed (sync) and applied by the standby. */
  batchMs: number
  /** Heap the active's tracking adds per object, beyond the plain data (bytes). */
  activeBytesPerObject: number
  /** Heap a standby's copy takes per object, data included (bytes). */
  standbyBytesPerObject: number
  /** Property sets per second through the proxies (the batch closes after the loop). */
  setsPerSec: number
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
  const times: number[] = []
  for (let b = 0; b < 30; b++) {
    const idx = Array.from({ length: 1000 }, () => Math.floor(rnd() * n))
    const t = performance.now()
    for (let i = 0; i < 1000; i++) (proxied[idx[i] as number] as { count: number }).count = b * 1000 + i
    await active.commit()
    times.push(performance.now() - t)
  }
  // Tracked sets: the same held proxies written over and over (no commit inside the loop).
  const held = Array.from({ length: 1000 }, () => proxied[Math.floor(rnd() * n)] as { count: number })
  const SETS = 2_000_000
  const t1 = performance.now()
  for (let i = 0; i < SETS; i++) (held[i % 1000] as { count: number }).count = i
  const setsPerSec = SETS / ((performance.now() - t1) / 1000)
  await active.commit()
  await active.close()
  await standby.close()
  const sorted = times.slice(5).sort((a, b) => a - b)
  return {
    objects: n,
    batchMs: sorted[Math.floor(sorted.length / 2)] as number,
    activeBytesPerObject: (h1 - h0) / n,
    standbyBytesPerObject: (h2 - h1) / n,
    setsPerSec,
    registerMs,
  }
}
