/**
 * Runs in Chromium (bundled by bench/checkpoints.ts): checkpoint writes to the
 * IndexedDB store beside a raw IndexedDB put of the same bytes.
 */
import { openDB } from 'idb'
import { Checkpointer } from 'understudy-ha'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { writeDelta } from '../../src/codec/frames.js'

async function run(changes: number, n: number): Promise<{ ours: number[]; raw: number[]; bytes: number }> {
  const body: Parameters<typeof writeDelta>[2] = [[], [], Array.from({ length: changes }, (_, i) => [i + 1, ['count', i]]).flat(), []]
  const frame = writeDelta(1, 1, body)
  const tag = `${changes}-${Math.random().toString(36).slice(2)}`
  const store = indexedDbCheckpoints(`bench-${tag}`)
  const c = new Checkpointer(store, 'g')
  const db = await openDB(`raw-${tag}`, 1, { upgrade: (d) => void d.createObjectStore('kv') })
  const ours: number[] = []
  const raw: number[] = []
  const timeOurs = async (i: number) => {
    const t = performance.now()
    await c.appendDelta(1, i + 1, frame)
    ours.push(performance.now() - t)
  }
  const timeRaw = async (i: number) => {
    const t = performance.now()
    const tx = db.transaction('kv', 'readwrite')
    await Promise.all([tx.store.put(frame, ['g', 'log', String(i)]), tx.done])
    raw.push(performance.now() - t)
  }
  for (let i = 0; i < n; i++) {
    // Interleaved, alternating which goes first, so both see the same conditions.
    if (i % 2) await timeOurs(i), await timeRaw(i)
    else await timeRaw(i), await timeOurs(i)
  }
  db.close()
  await store.close()
  return { ours, raw, bytes: frame.length }
}

;(globalThis as unknown as { idbBench: unknown }).idbBench = { run }
