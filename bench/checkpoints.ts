/**
 * Checkpoint writes on Node, beside a raw write of the same bytes (temp file,
 * fsync, rename, fsync the directory), and the cost of an incremental
 * checkpoint (one commit's delta appended) as the graph grows.
 */
import { mkdtemp, open, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Checkpointer, Understudy } from '../src/index.js'
import { writeDelta } from '../src/codec/frames.js'
import { fsCheckpoints } from '../adapters/fs.js'
import { MemoryNetwork } from '../adapters/memory.js'
import { interleaved } from './interleave.js'

const N = Number(process.env.CKPT_WRITES ?? 100)
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number

async function rawWrite(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.tmp`)
  const h = await open(tmp, 'w')
  await h.writeFile(bytes)
  await h.sync()
  await h.close()
  await rename(tmp, join(dir, name))
  const d = await open(dir, 'r')
  await d.sync()
  await d.close()
}

async function writeTimes(sizeChanges: number): Promise<{ ours: number[]; raw: number[]; bytes: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'understudy-bench-ckpt-'))
  const body: Parameters<typeof writeDelta>[2] = [[], [], Array.from({ length: sizeChanges }, (_, i) => [i + 1, ['count', i]]).flat(), []]
  const frame = writeDelta(1, 1, body)
  const c = new Checkpointer(fsCheckpoints(join(dir, 'store')), 'g')
  const { ours, raw } = await interleaved(N, (i) => c.appendDelta(1, i + 1, frame), (i) => rawWrite(dir, `raw-${i}`, frame))
  await rm(dir, { recursive: true, force: true })
  return { ours, raw, bytes: frame.length }
}

async function incremental(objects: number): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'understudy-bench-ckpt-'))
  const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', checkpoints: fsCheckpoints(dir) })
  const root = ha.register('app', { items: Array.from({ length: objects }, (_, i) => ({ id: i, n: 0 })) })
  await ha.checkpointed()
  const held = Array.from({ length: 100 }, (_, i) => root.items[(i * 7919) % objects] as { n: number })
  const times: number[] = []
  for (let r = 0; r < 30; r++) {
    for (const it of held) it.n++
    const t = performance.now()
    await ha.checkpointed() // flushes the batch and waits until its delta is durable
    times.push(performance.now() - t)
  }
  await ha.close()
  await rm(dir, { recursive: true, force: true })
  return times
}

export async function runCheckpoints(): Promise<void> {
  console.log(`\nCheckpoint writes on Node (fs store: temp, fsync, rename, fsync dir) beside a raw write of the same bytes; ${N} writes each, interleaved (ms)\n`)
  console.log('| delta | bytes | ours p50 (p99) | raw p50 (p99) | ours ÷ raw (p50) |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const changes of [100, 1000, 10_000]) {
    const r = await writeTimes(changes)
    console.log(`| ${changes.toLocaleString()} changes | ${r.bytes.toLocaleString()} | ${pct(r.ours, 0.5).toFixed(2)} (${pct(r.ours, 0.99).toFixed(2)}) | ${pct(r.raw, 0.5).toFixed(2)} (${pct(r.raw, 0.99).toFixed(2)}) | ${(pct(r.ours, 0.5) / pct(r.raw, 0.5)).toFixed(2)} |`)
  }
  await idbWrites()
  console.log('\nIncremental checkpoint: 100 property sets committed and made durable, as the graph grows (ms, 30 rounds)\n')
  console.log('| objects in the graph | p50 | p99 |')
  console.log('| --- | --- | --- |')
  for (const objects of [1_000, 10_000, 100_000]) {
    const t = await incremental(objects)
    console.log(`| ${objects.toLocaleString()} | ${pct(t, 0.5).toFixed(2)} | ${pct(t, 0.99).toFixed(2)} |`)
  }
}

/** The same comparison in Chromium: the IndexedDB store beside a raw IndexedDB put (one readwrite transaction) of the same bytes. */
async function idbWrites(): Promise<void> {
  const { haveChromium, launchChromium } = await import('../test/support/chromium.js')
  console.log(`\nCheckpoint writes in Chromium (IndexedDB store) beside a raw IndexedDB put of the same bytes; ${N} writes each, interleaved (ms)\n`)
  console.log('| delta | bytes | ours p50 (p99) | raw p50 (p99) | ours ÷ raw (p50) |')
  console.log('| --- | --- | --- | --- | --- |')
  if (!haveChromium()) return console.log('| n/a: no /usr/bin/chromium | | | | |')
  const { bundlePage, serve } = await import('../test/support/serve.js')
  const dir = await mkdtemp(join(tmpdir(), 'understudy-bench-idb-'))
  await bundlePage(new URL('./browser/idb-checkpoints.ts', import.meta.url).pathname, dir)
  const site = await serve(dir)
  const browser = await launchChromium()
  try {
    const page = await browser.newPage()
    await page.goto(site.url)
    await page.waitForFunction(() => typeof (globalThis as { idbBench?: unknown }).idbBench === 'object')
    for (const changes of [100, 1000, 10_000]) {
      const r = await page.evaluate(([c, n]) => (globalThis as unknown as { idbBench: { run(c: number, n: number): Promise<{ ours: number[]; raw: number[]; bytes: number }> } }).idbBench.run(c as number, n as number), [changes, N])
      console.log(`| ${changes.toLocaleString()} changes | ${r.bytes.toLocaleString()} | ${pct(r.ours, 0.5).toFixed(2)} (${pct(r.ours, 0.99).toFixed(2)}) | ${pct(r.raw, 0.5).toFixed(2)} (${pct(r.raw, 0.99).toFixed(2)}) | ${(pct(r.ours, 0.5) / pct(r.raw, 0.5)).toFixed(2)} |`)
    }
  } finally {
    await browser.close()
    await site.close()
    await rm(dir, { recursive: true, force: true })
  }
}
