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

/** Workload (c): operations on an array of references to shared items. */
export type ArrayOp = [kind: 'push', item: number] | [kind: 'remove', at: number] | [kind: 'move', from: number, to: number]

/** `batches` × `perBatch` seeded push/remove/move operations on an array kept near `length` elements drawn from `pool` items. */
export function makeArrayOps(length: number, pool: number, batches: number, perBatch: number, seed = 3): { initial: number[]; ops: ArrayOp[][] } {
  const rnd = seededRandom(seed)
  const initial = Array.from({ length }, () => Math.floor(rnd() * pool))
  let n = length
  const ops = Array.from({ length: batches }, () =>
    Array.from({ length: perBatch }, (): ArrayOp => {
      const r = rnd()
      if (r < 0.3 || n < 2) return n++, ['push', Math.floor(rnd() * pool)]
      if (r < 0.6) return n--, ['remove', Math.floor(rnd() * n)]
      return ['move', Math.floor(rnd() * n), Math.floor(rnd() * (n - 1))]
    }),
  )
  return { initial, ops }
}

/** Applies one array op to `a` (whatever its elements are). */
export function applyArrayOp<T>(a: T[], op: ArrayOp, item: (i: number) => T): void {
  if (op[0] === 'push') a.push(item(op[1]))
  else if (op[0] === 'remove') a.splice(op[1], 1)
  else {
    const [v] = a.splice(op[1], 1)
    a.splice(op[2], 0, v as T)
  }
}

/** Workload (d): Map and Set churn. */
export type MapSetOp = [kind: 'mset', key: string, value: number] | [kind: 'mdel', key: string] | [kind: 'sadd', key: string] | [kind: 'sdel', key: string]

export function makeMapSetOps(size: number, batches: number, perBatch: number, seed = 4): { keys: string[]; ops: MapSetOp[][] } {
  const rnd = seededRandom(seed)
  const keys = Array.from({ length: size * 2 }, (_, i) => `k${i.toString(36)}`)
  const pick = () => keys[Math.floor(rnd() * keys.length)] as string
  const ops = Array.from({ length: batches }, () =>
    Array.from({ length: perBatch }, (): MapSetOp => {
      const r = rnd()
      return r < 0.35 ? ['mset', pick(), Math.floor(rnd() * 1e6)] : r < 0.5 ? ['mdel', pick()] : r < 0.85 ? ['sadd', pick()] : ['sdel', pick()]
    }),
  )
  return { keys: keys.slice(0, size), ops }
}

/** Workload (e): a graph of nodes with shared references and cycles. */
export interface GraphNode {
  id: number
  value: number
  next: GraphNode | null
  friends: GraphNode[]
}

export type GraphOp = [kind: 'value', node: number, value: number] | [kind: 'next', node: number, to: number] | [kind: 'friend', node: number, to: number] | [kind: 'unfriend', node: number]

export function makeGraph(n: number, seed = 5): GraphNode[] {
  const rnd = seededRandom(seed)
  const nodes: GraphNode[] = Array.from({ length: n }, (_, id) => ({ id, value: id, next: null, friends: [] }))
  for (const node of nodes) {
    node.next = nodes[Math.floor(rnd() * n)] as GraphNode // a random function graph: every node leads into a cycle
    for (let k = 0; k < 2; k++) node.friends.push(nodes[Math.floor(rnd() * n)] as GraphNode) // shared references
  }
  return nodes
}

export function makeGraphOps(n: number, batches: number, perBatch: number, seed = 6): GraphOp[][] {
  const rnd = seededRandom(seed)
  const at = () => Math.floor(rnd() * n)
  return Array.from({ length: batches }, () =>
    Array.from({ length: perBatch }, (): GraphOp => {
      const r = rnd()
      return r < 0.4 ? ['value', at(), Math.floor(rnd() * 1e6)] : r < 0.7 ? ['next', at(), at()] : r < 0.9 ? ['friend', at(), at()] : ['unfriend', at()]
    }),
  )
}

export function applyGraphOp(nodes: GraphNode[], op: GraphOp): void {
  const node = nodes[op[1]] as GraphNode
  if (op[0] === 'value') node.value = op[2]
  else if (op[0] === 'next') node.next = nodes[op[2]] as GraphNode
  else if (op[0] === 'friend') node.friends.push(nodes[op[2]] as GraphNode)
  else node.friends.pop()
}
