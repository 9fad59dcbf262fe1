/**
 * The peers, each driven through its idiomatic API on the same seeded
 * operation lists, each checked for correctness (the replica equals the
 * source) on every run. A measurement covers mutating the source, producing
 * the payload and applying it on the replica.
 */
import { isDeepStrictEqual } from 'node:util'
import { deserialize, serialize } from 'node:v8'
import * as Automerge from '@automerge/automerge'
import { Encoder } from 'cbor-x'
import { applyPatches, enableMapSet, enablePatches, produceWithPatches, type Patch } from 'immer'
import { proxy, subscribe, unstable_enableOp } from 'valtio/vanilla'
import * as Y from 'yjs'
import { Understudy } from '../src/index.js'
import { BareTracker } from './bare.js'
import { MemoryNetwork } from '../adapters/memory.js'
import {
  applyArrayOp,
  applyGraphOp,
  makeArrayOps,
  makeGraph,
  makeGraphOps,
  makeItems,
  makeMapSetOps,
  makeOps,
  type ArrayOp,
  type GraphNode,
  type GraphOp,
  type Item,
  type MapSetOp,
  type SetOp,
} from './workload.js'

enablePatches()
enableMapSet()
unstable_enableOp(true)

export type WorkloadName = 'a' | 'b' | 'c' | 'd' | 'e'
export const WORKLOADS: Record<WorkloadName, string> = {
  a: '(a) 10,000 items, 100 batches × 1,000 property sets',
  b: '(b) 10,000 items, one batch of 100,000 property sets',
  c: '(c) push / splice / move of references in a 10,000-element array, 100 batches × 100',
  d: '(d) Map and Set churn (10,000 entries each), 100 batches × 1,000',
  e: '(e) 5,000 nodes with shared references and cycles, 100 batches × 1,000',
}

/** What one run measured. */
export interface Measured {
  ms: number
  bytes: number
  /** Heap after setup (source and replica), after GC, per object of the workload's source. */
  heapPerObject: number
  objects: number
  sets: number
}

/** The data every peer gets for a workload (seeded, so every process has the same). */
export interface Data {
  a: { items: number; ops: SetOp[][] }
  b: { items: number; ops: SetOp[][] }
  c: { pool: number; initial: number[]; ops: ArrayOp[][] }
  d: { keys: string[]; ops: MapSetOp[][] }
  e: { nodes: number; ops: GraphOp[][] }
}

const MAKE: { [W in WorkloadName]: () => Data[W] } = {
  a: () => ({ items: 10_000, ops: makeOps(10_000, 100, 1_000) }),
  b: () => ({ items: 10_000, ops: makeOps(10_000, 1, 100_000, 2) }),
  c: () => ({ pool: 1_000, ...makeArrayOps(10_000, 1_000, 100, 100) }),
  d: () => makeMapSetOps(10_000, 100, 1_000),
  e: () => ({ nodes: 5_000, ops: makeGraphOps(5_000, 100, 1_000) }),
}

/** The seeded data of workload `w` (made on demand: each process runs one workload). */
export function data<W extends WorkloadName>(w: W): Data[W] {
  return MAKE[w]()
}

const count = (ops: unknown[][]) => ops.reduce((n, b) => n + b.length, 0)
const gc = () => (globalThis as { gc?: () => void }).gc?.()
const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
const plainItems = (items: Item[]): Item[] => items.map((i) => ({ id: i.id, name: i.name, count: i.count, tags: [...i.tags] }))
const fail = (peer: string, w: string): never => {
  throw new Error(`${peer}, workload ${w}: the replica differs from the source`)
}

/** A runner: sets up (before `start()`), runs the timed loop, checks. */
type Runner = (w: WorkloadName) => Promise<Measured>
/** Times `loop` after `setup`, measuring the heap the setup took. */
async function measure(objects: number, sets: number, setup: () => Promise<void> | void, loop: () => Promise<number> | number, check: () => void): Promise<Measured> {
  const h0 = heap()
  await setup()
  const h1 = heap()
  const t0 = performance.now()
  const bytes = await loop()
  const ms = performance.now() - t0
  check()
  return { ms, bytes, heapPerObject: (h1 - h0) / objects, objects, sets }
}

// ---- Understudy -------------------------------------------------------------

async function pair() {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'bench', transport: net.join('a'), role: 'active' })
  const standby = await Understudy.start({ group: 'bench', transport: net.join('b') })
  return { net, active, standby }
}

/**
 * `held`: the loop writes through item proxies taken once in setup
 * (`const item = root.items[i]`), the access pattern of the bare tracker,
 * which holds its per-item proxies; otherwise through the root array's proxy
 * (`root.items[i].count = v`), as most application code does.
 */
const understudyRunner = (held: boolean): Runner => async (w) => {
  if (held && w !== 'a' && w !== 'b') throw new NotApplicable('only workloads (a) and (b) write through per-item handles')
  const { net, active, standby } = await pair()
  try {
    if (w === 'a' || w === 'b') {
      const d = data(w)
      let root!: { items: Item[] }
      let handles!: Item[]
      return await measure(
        d.items * 2,
        count(d.ops),
        async () => {
          root = active.register('r', { items: makeItems(d.items) })
          handles = held ? root.items.map((x) => x) : root.items
          await active.commit()
        },
        async () => {
          const b0 = net.bytes
          const items = handles
          for (const batch of d.ops) {
            for (const [i, f, v] of batch) (items[i] as unknown as Record<string, unknown>)[f] = v
            await active.commit()
          }
          return net.bytes - b0
        },
        () => isDeepStrictEqual(plainItems((standby.root('r') as { items: Item[] }).items), plainItems(root.items)) || fail('understudy', w),
      )
    }
    if (w === 'c') {
      const d = data('c')
      let root!: { pool: Item[]; list: Item[] }
      return await measure(
        d.pool * 2 + 1,
        count(d.ops),
        async () => {
          const pool = makeItems(d.pool)
          root = active.register('r', { pool, list: d.initial.map((i) => pool[i] as Item) })
          await active.commit()
        },
        async () => {
          const b0 = net.bytes
          const { pool, list } = root
          for (const batch of d.ops) {
            for (const op of batch) applyArrayOp(list, op, (i) => pool[i] as Item)
            await active.commit()
          }
          return net.bytes - b0
        },
        () => {
          const r = standby.root('r') as { pool: Item[]; list: Item[] }
          if (!isDeepStrictEqual(r.list.map((x) => x.id), root.list.map((x) => x.id)) || !r.list.every((x) => r.pool[x.id] === x)) fail('understudy', w)
        },
      )
    }
    if (w === 'd') {
      const d = data('d')
      let root!: { map: Map<string, { v: number }>; set: Set<string> }
      return await measure(
        d.keys.length + 2,
        count(d.ops),
        async () => {
          root = active.register('r', { map: new Map(d.keys.map((k, i) => [k, { v: i }])), set: new Set(d.keys) })
          await active.commit()
        },
        async () => {
          const b0 = net.bytes
          const { map, set } = root
          for (const batch of d.ops) {
            for (const op of batch) {
              if (op[0] === 'mset') map.set(op[1], { v: op[2] })
              else if (op[0] === 'mdel') map.delete(op[1])
              else if (op[0] === 'sadd') set.add(op[1])
              else set.delete(op[1])
            }
            await active.commit()
          }
          return net.bytes - b0
        },
        () => {
          const r = standby.root('r') as typeof root
          if (!isDeepStrictEqual([...r.map].map(([k, v]) => [k, v.v]), [...root.map].map(([k, v]) => [k, v.v])) || !isDeepStrictEqual([...r.set], [...root.set])) fail('understudy', w)
        },
      )
    }
    const d = data('e')
    let root!: { nodes: GraphNode[] }
    return await measure(
      d.nodes * 2,
      count(d.ops),
      async () => {
        root = active.register('r', { nodes: makeGraph(d.nodes) })
        await active.commit()
      },
      async () => {
        const b0 = net.bytes
        const nodes = root.nodes
        for (const batch of d.ops) {
          for (const op of batch) applyGraphOp(nodes, op)
          await active.commit()
        }
        return net.bytes - b0
      },
      () => {
        const r = (standby.root('r') as { nodes: GraphNode[] }).nodes
        const shape = (ns: GraphNode[]) => ns.map((n) => [n.value, n.next?.id, n.friends.map((f) => f.id), n.next === ns[n.next?.id ?? -1]])
        if (!isDeepStrictEqual(shape(r), shape(root.nodes))) fail('understudy', w)
      },
    )
  } finally {
    await active.close()
    await standby.close()
  }
}

// ---- the floor: a bare Proxy dirty tracker + cbor-x (flat property sets only) --

const bare: Runner = async (w) => {
  if (w !== 'a' && w !== 'b') throw new NotApplicable('it tracks flat property sets only')
  const d = data(w)
  let tracker!: BareTracker<Item>
  return measure(
    d.items * 2,
    count(d.ops),
    () => {
      const source = makeItems(d.items)
      tracker = new BareTracker(source, plainItems(source))
    },
    () => {
      const proxies = tracker.proxies
      let bytes = 0
      for (const batch of d.ops) {
        for (const [i, f, v] of batch) (proxies[i] as unknown as Record<string, unknown>)[f] = v
        bytes += tracker.flush()
      }
      return bytes
    },
    () => isDeepStrictEqual(tracker.replica, plainItems(tracker.source)) || fail('bare', w),
  )
}

// ---- full snapshot per batch: JSON (no cycles, no shared refs) and v8 structured clone (both) --

const json: Runner = async (w) => {
  if (w === 'e') throw new NotApplicable('JSON cannot hold cycles or shared references')
  let bytes = 0
  if (w === 'a' || w === 'b' || w === 'c') {
    const d = data(w)
    const c = w === 'c' ? (d as Data['c']) : undefined
    let source!: { items?: Item[]; list?: number[] }
    let replica: unknown
    return measure(
      c ? c.pool + 1 : (d as { items: number }).items * 2,
      count(d.ops),
      () => {
        source = c ? { list: [...c.initial] } : { items: makeItems((d as { items: number }).items) }
      },
      () => {
        for (const batch of d.ops) {
          if (c) for (const op of batch as ArrayOp[]) applyArrayOp(source.list as number[], op, (i) => i)
          else for (const [i, f, v] of batch as SetOp[]) ((source.items as Item[])[i] as unknown as Record<string, unknown>)[f] = v
          const s = JSON.stringify(source)
          bytes += Buffer.byteLength(s)
          replica = JSON.parse(s)
        }
        return bytes
      },
      () => isDeepStrictEqual(replica, source) || fail('json', w),
    )
  }
  const d = data('d')
  let map!: Map<string, number>
  let set!: Set<string>
  let replica: unknown
  return measure(
    d.keys.length,
    count(d.ops),
    () => {
      map = new Map(d.keys.map((k, i) => [k, i]))
      set = new Set(d.keys)
    },
    () => {
      for (const batch of d.ops) {
        for (const op of batch) applyMapSetOp(map, set, op)
        const s = JSON.stringify({ map: [...map], set: [...set] })
        bytes += Buffer.byteLength(s)
        replica = JSON.parse(s)
      }
      return bytes
    },
    () => isDeepStrictEqual(replica, { map: [...map], set: [...set] }) || fail('json', w),
  )
}

const structuredSnapshot: Runner = async (w) => {
  if (w !== 'e') throw new NotApplicable('measured on (e) only, where JSON cannot go')
  const d = data('e')
  let nodes!: GraphNode[]
  let replica!: GraphNode[]
  return measure(
    d.nodes * 2,
    count(d.ops),
    () => {
      nodes = makeGraph(d.nodes)
    },
    () => {
      let bytes = 0
      for (const batch of d.ops) {
        for (const op of batch) applyGraphOp(nodes, op)
        let buf: Buffer
        try {
          buf = serialize(nodes)
        } catch (err) {
          // v8's serializer recurses: a deep enough graph overflows the stack.
          if (err instanceof RangeError) throw new NotApplicable(`v8.serialize fails on this graph: ${err.message}`)
          throw err
        }
        bytes += buf.length
        replica = deserialize(buf) as GraphNode[]
      }
      return bytes
    },
    () => {
      const shape = (ns: GraphNode[]) => ns.map((n) => [n.value, n.next?.id, n.friends.map((f) => f.id), n.next === ns[n.next?.id ?? -1]])
      if (!isDeepStrictEqual(shape(replica), shape(nodes))) fail('v8 snapshot', w)
    },
  )
}

function applyMapSetOp(map: Map<string, unknown>, set: Set<string>, op: MapSetOp, value: (v: number) => unknown = (v) => v): void {
  if (op[0] === 'mset') map.set(op[1], value(op[2]))
  else if (op[0] === 'mdel') map.delete(op[1])
  else if (op[0] === 'sadd') set.add(op[1])
  else set.delete(op[1])
}

// ---- Yjs: Y.Array of Y.Map items; one transaction per batch; update events applied to a second doc --

const yjs: Runner = async (w) => {
  if (w === 'e') throw new NotApplicable('Yjs types are a tree: no shared references or cycles')
  const doc = new Y.Doc()
  const replica = new Y.Doc()
  let bytes = 0
  doc.on('update', (u: Uint8Array) => {
    bytes += u.length
    Y.applyUpdate(replica, u)
  })
  if (w === 'a' || w === 'b') {
    const d = data(w)
    let ymaps!: Y.Map<unknown>[]
    return measure(
      d.items * 2,
      count(d.ops),
      () => {
        const arr = doc.getArray<Y.Map<unknown>>('items')
        doc.transact(() => {
          arr.push(
            makeItems(d.items).map((it) => {
              const m = new Y.Map<unknown>()
              m.set('id', it.id)
              m.set('name', it.name)
              m.set('count', it.count)
              m.set('tags', new Y.Array())
              return m
            }),
          )
        })
        ymaps = arr.toArray()
        bytes = 0
      },
      () => {
        for (const batch of d.ops) doc.transact(() => {
          for (const [i, f, v] of batch) (ymaps[i] as Y.Map<unknown>).set(f, v)
        })
        return bytes
      },
      () => isDeepStrictEqual(replica.getArray('items').toJSON(), doc.getArray('items').toJSON()) || fail('yjs', w),
    )
  }
  if (w === 'c') {
    const d = data('c')
    const list = doc.getArray<number>('list')
    return measure(
      d.pool + 1,
      count(d.ops),
      () => {
        list.push(d.initial)
        bytes = 0
      },
      () => {
        for (const batch of d.ops)
          doc.transact(() => {
            for (const op of batch) {
              if (op[0] === 'push') list.push([op[1]])
              else if (op[0] === 'remove') list.delete(op[1], 1)
              else {
                const v = list.get(op[1])
                list.delete(op[1], 1)
                list.insert(op[2], [v])
              }
            }
          })
        return bytes
      },
      () => isDeepStrictEqual(replica.getArray('list').toJSON(), list.toJSON()) || fail('yjs', w),
    )
  }
  const d = data('d')
  const map = doc.getMap<number>('map')
  const set = doc.getMap<boolean>('set')
  return measure(
    d.keys.length,
    count(d.ops),
    () => {
      doc.transact(() => {
        d.keys.forEach((k, i) => map.set(k, i))
        for (const k of d.keys) set.set(k, true)
      })
      bytes = 0
    },
    () => {
      for (const batch of d.ops)
        doc.transact(() => {
          for (const op of batch) {
            if (op[0] === 'mset') map.set(op[1], op[2])
            else if (op[0] === 'mdel') map.delete(op[1])
            else if (op[0] === 'sadd') set.set(op[1], true)
            else set.delete(op[1])
          }
        })
      return bytes
    },
    () => (isDeepStrictEqual(replica.getMap('map').toJSON(), map.toJSON()) && isDeepStrictEqual(replica.getMap('set').toJSON(), set.toJSON())) || fail('yjs', w),
  )
}

// ---- Automerge: one change per batch; getChanges → applyChanges on a replica --

const automerge: Runner = async (w) => {
  if (w === 'e') throw new NotApplicable('Automerge documents are a tree: no shared references or cycles')
  let doc!: Automerge.Doc<Record<string, unknown>>
  let replica!: Automerge.Doc<Record<string, unknown>>
  const step = (fn: (d: Record<string, unknown>) => void): number => {
    const before = doc
    doc = Automerge.change(doc, fn)
    const changes = Automerge.getChanges(before, doc)
    ;[replica] = Automerge.applyChanges(replica, changes)
    return changes.reduce((n, c) => n + c.length, 0)
  }
  const setup = (initial: Record<string, unknown>) => {
    doc = Automerge.from(initial)
    replica = Automerge.load(Automerge.save(doc))
  }
  const batches = (ops: unknown[][], apply: (d: Record<string, unknown>, batch: never[]) => void) => () => {
    let bytes = 0
    for (const batch of ops) bytes += step((d) => apply(d, batch as never[]))
    return bytes
  }
  const check = () => isDeepStrictEqual(Automerge.toJS(replica), Automerge.toJS(doc)) || fail('automerge', w)
  if (w === 'a' || w === 'b') {
    const d = data(w)
    return measure(d.items * 2, count(d.ops), () => setup({ items: makeItems(d.items) }), batches(d.ops, (doc, batch: SetOp[]) => {
      const items = doc.items as Item[]
      for (const [i, f, v] of batch) (items[i] as unknown as Record<string, unknown>)[f] = v
    }), check)
  }
  if (w === 'c') {
    const d = data('c')
    return measure(d.pool + 1, count(d.ops), () => setup({ list: [...d.initial] }), batches(d.ops, (doc, batch: ArrayOp[]) => {
      const list = doc.list as number[]
      for (const op of batch) {
        if (op[0] === 'push') list.push(op[1])
        else if (op[0] === 'remove') list.splice(op[1], 1)
        else {
          const v = list[op[1]] as number
          list.splice(op[1], 1)
          list.splice(op[2], 0, v)
        }
      }
    }), check)
  }
  const d = data('d')
  return measure(d.keys.length, count(d.ops), () => setup({ map: Object.fromEntries(d.keys.map((k, i) => [k, i])), set: Object.fromEntries(d.keys.map((k) => [k, true])) }), batches(d.ops, (doc, batch: MapSetOp[]) => {
    const map = doc.map as Record<string, number>
    const set = doc.set as Record<string, boolean>
    for (const op of batch) {
      if (op[0] === 'mset') map[op[1]] = op[2]
      else if (op[0] === 'mdel') delete map[op[1]]
      else if (op[0] === 'sadd') set[op[1]] = true
      else delete set[op[1]]
    }
  }), check)
}

// ---- valtio (ops enabled): subscribe to ops, encode them with cbor-x, apply by path on a replica --

const valtio: Runner = async (w) => {
  if (w === 'e') throw new NotApplicable('valtio ops address values by path: shared references and cycles do not survive')
  if (w === 'd') throw new NotApplicable('valtio ops do not cover Map and Set (proxyMap / proxySet emit no ops a replica can replay)')
  const enc = new Encoder({ useRecords: false })
  type Op = [op: string, path: (string | symbol)[], value: unknown]
  let state!: Record<string, unknown>
  let replica!: Record<string, unknown>
  let bytes = 0
  let pending: Promise<void> = Promise.resolve()
  let release: () => void = () => undefined
  const apply = (ops: Op[]) => {
    const frame = enc.encode(ops.map(([op, path, value]) => [op, path.map(String), value]))
    bytes += frame.length
    for (const [op, path, value] of enc.decode(frame) as [string, string[], unknown][]) {
      let at = replica as Record<string, unknown>
      for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>
      const last = path[path.length - 1] as string
      if (op === 'set') at[last] = typeof value === 'object' && value !== null ? JSON.parse(JSON.stringify(value)) : value
      else if (op === 'delete') {
        if (Array.isArray(at)) at.splice(Number(last), 1)
        else delete at[last]
      }
    }
    release()
  }
  const batch = (mutate: () => void) => {
    pending = new Promise((r) => (release = r))
    mutate()
    return pending // valtio notifies subscribers in a microtask, once per batch
  }
  const setup = (initial: Record<string, unknown>) => {
    replica = structuredClone(initial)
    state = proxy(initial)
    subscribe(state, (ops) => apply(ops as unknown as Op[]))
  }
  if (w === 'a' || w === 'b') {
    const d = data(w)
    return measure(d.items * 2, count(d.ops), () => setup({ items: makeItems(d.items) }), async () => {
      const items = state.items as Item[]
      for (const b of d.ops) await batch(() => {
        for (const [i, f, v] of b) (items[i] as unknown as Record<string, unknown>)[f] = v
      })
      return bytes
    }, () => isDeepStrictEqual(replica, JSON.parse(JSON.stringify(state))) || fail('valtio', w))
  }
  // (c): valtio records an array splice as a series of index sets and a length change.
  const d = data('c')
  return measure(d.pool + 1, count(d.ops), () => setup({ list: [...d.initial] }), async () => {
    const list = state.list as number[]
    for (const b of d.ops) await batch(() => {
      for (const op of b) applyArrayOp(list, op, (i) => i)
    })
    return bytes
  }, () => isDeepStrictEqual((replica.list as number[]).filter((x) => x !== undefined), [...(state.list as number[])]) || fail('valtio', w))
}

// ---- immer: produceWithPatches per batch; patches encoded with cbor-x; applyPatches on the replica --

const immer: Runner = async (w) => {
  if (w === 'e') throw new NotApplicable('immer drafts are trees: no cycles')
  const enc = new Encoder({ useRecords: false })
  let state!: Record<string, unknown>
  let replica!: Record<string, unknown>
  let bytes = 0
  const step = (recipe: (draft: Record<string, unknown>) => void) => {
    const [next, patches] = produceWithPatches(state, recipe)
    state = next
    const frame = enc.encode(patches)
    bytes += frame.length
    replica = applyPatches(replica, enc.decode(frame) as Patch[])
  }
  const setup = (initial: () => Record<string, unknown>) => {
    state = initial()
    replica = initial()
  }
  if (w === 'a' || w === 'b') {
    const d = data(w)
    return measure(d.items * 2, count(d.ops), () => setup(() => ({ items: makeItems(d.items) })), () => {
      for (const b of d.ops) step((draft) => {
        const items = draft.items as Item[]
        for (const [i, f, v] of b) (items[i] as unknown as Record<string, unknown>)[f] = v
      })
      return bytes
    }, () => isDeepStrictEqual(replica, state) || fail('immer', w))
  }
  if (w === 'c') {
    const d = data('c')
    return measure(d.pool + 1, count(d.ops), () => setup(() => ({ list: [...d.initial] })), () => {
      for (const b of d.ops) step((draft) => {
        for (const op of b) applyArrayOp(draft.list as number[], op, (i) => i)
      })
      return bytes
    }, () => isDeepStrictEqual(replica, state) || fail('immer', w))
  }
  const d = data('d')
  return measure(d.keys.length, count(d.ops), () => setup(() => ({ map: new Map(d.keys.map((k, i) => [k, i])), set: new Set(d.keys) })), () => {
    for (const b of d.ops) step((draft) => {
      for (const op of b) applyMapSetOp(draft.map as Map<string, unknown>, draft.set as Set<string>, op)
    })
    return bytes
  }, () => isDeepStrictEqual(replica, state) || fail('immer', w))
}

/** A peer that cannot express a workload. */
export class NotApplicable extends Error {}

export const PEERS: Record<string, Runner> = {
  understudy: understudyRunner(false),
  'understudy, held item proxies': understudyRunner(true),
  'bare tracker + cbor-x': bare,
  yjs,
  automerge,
  valtio,
  immer,
  'JSON snapshot': json,
  'v8 structured-clone snapshot': structuredSnapshot,
}
