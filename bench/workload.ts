import { seededRandom } from '../src/index.js'

export interface Item {
  id: number
  name: string
  count: number
  tags: string[]
}

/** 10,000 items `{ id, name, count, tags: [] }`. */
export function makeItems(n = 10_000): Item[] {
  return Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, count: i, tags: [] }))
}

/** One property set: item index, field, value. */
export type SetOp = [index: number, field: 'count' | 'name', value: number | string]

/** `batches` × `perBatch` seeded property sets, 60% numbers and 40% strings. */
export function makeOps(items: number, batches: number, perBatch: number, seed = 1): SetOp[][] {
  const rnd = seededRandom(seed)
  return Array.from({ length: batches }, () =>
    Array.from({ length: perBatch }, (): SetOp => {
      const i = Math.floor(rnd() * items)
      return rnd() < 0.6 ? [i, 'count', Math.floor(rnd() * 1e6)] : [i, 'name', `name ${Math.floor(rnd() * 1e6).toString(36)}`]
    }),
  )
}
