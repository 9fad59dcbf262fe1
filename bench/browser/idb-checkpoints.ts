/**
 * Runs in Chromium (bundled by bench/checkpoints.ts): checkpoint writes to the
 * IndexedDB store beside a raw IndexedDB put of the same bytes.
 */
import { openDB } from 'idb'
import { Checkpointer } from 'understudy-ha'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { writeDelta } from '../../src/codec/frames.js'
import { interleaved } from '../interleave.js'

async function run(changes: number, n: number): Promise<{ ours: number[]; raw: number[]; bytes: number }> {
  const body: Parameters<typeof writeDelta>[2] = [[], [], Array.from({ length: changes }, (_, i) => [i + 1, ['count', i]]).flat(), []]
  const frame = writeDelta(1, 1, body)
  const tag = `${changes}-${Math.random().toString(36).slice(2)}`
  const store = indexedDbCheckpoints(`bench-${tag}`)
  const c = new Checkpointer(store, 'g')
  const db = await openDB(`raw-${tag}`, 1, { upgrade: (d) => void d.createObjectStore('kv') })
  const { ours, raw } = await interleaved(
    n,
    (i) => c.appendDelta(1, i + 1, frame),
    async (i) => {
      const tx = db.transaction('kv', 'readwrite')
      await Promise.all([tx.store.put(frame, ['g', 'log', String(i)]), tx.done])
    },
  )
  db.close()
  await store.close()
  return { ours, raw, bytes: frame.length }
}

;(globalThis as unknown as { idbBench: unknown }).idbBench = { run }
