/**
 * Applying the active's frames on a standby: every record, reference and
 * change of a frame is validated before anything changes, so a bad frame never
 * leaves a half-applied graph.
 */
import { ProtocolError } from '../errors.js'
import { TYPED_ARRAYS } from './kinds.js'
import { Node, at, makeNode, shellTarget, type Where } from './nodes/index.js'
import type { GraphState } from './state.js'
import { KIND_COUNT, Kind, type Cell, type DeltaBody, type NodeRecord, type RootList, type SnapshotBody } from './wire.js'

/** What applying a frame changed, for events. */
export interface Applied {
  /** Roots that arrived with this frame. */
  roots: string[]
}

/** The value a validated cell stands for. Holes come back as undefined (callers test for them first). */
export function resolveCell(g: GraphState, c: Cell): unknown {
  if (!Array.isArray(c)) return c
  if (c.length === 1) {
    const n = (g.incoming?.get(c[0]) ?? g.byId.get(c[0])) as Node
    // Stored again: where it was dropped before no longer says where it is.
    if (g.lastHeld.size !== 0) g.lastHeld.delete(n)
    return n.target
  }
  return c.length === 2 ? -0 : undefined
}

/** Throws {@link ProtocolError} (at `where[index]`) unless `c` is a valid cell whose reference, if any, resolves. */
export function checkCell(g: GraphState, c: unknown, allowHole: boolean, where: Where, index: number): void {
  if (c === null || c === undefined) return
  switch (typeof c) {
    case 'boolean':
    case 'number':
    case 'string':
    case 'bigint':
      return
  }
  if (Array.isArray(c)) {
    if (c.length === 0) {
      if (allowHole) return
      throw new ProtocolError('TYPE', at(where, index), 'a hole is not allowed here')
    }
    if (c.length === 1) {
      const id = c[0] as unknown
      if (typeof id !== 'number' || !(g.incoming?.has(id) || (!g.snapshotScope && g.byId.has(id))))
        throw new ProtocolError('UNKNOWN_OBJECT', at(where, index), `reference to unknown object ${String(id)}`)
      return
    }
    if (c.length === 2 && c[0] === 0 && c[1] === 0) return
  }
  throw new ProtocolError('TYPE', at(where, index), `not a valid value (${Object.prototype.toString.call(c)})`)
}

/** Applies a delta from the active. Validates everything first: on error nothing has changed. */
export function applyDelta(g: GraphState, body: DeltaBody): Applied {
  const [roots, records, changes, freed] = body
  const plan = planFrame(g, records, roots, false)
  try {
    if (changes.length % 2) throw new ProtocolError('TYPE', 'delta.changes', 'changes are id/payload pairs')
    const targets: Node[] = new Array(changes.length >> 1)
    let at = 0
    const where = () => `delta.changes[${at}]` // one closure per frame; read only to word an error
    const incoming = g.incoming as Map<number, Node>
    for (let i = 0; i < changes.length; i += 2) {
      const id = changes[i]
      const n = typeof id === 'number' ? (g.byId.get(id) ?? incoming.get(id)) : undefined
      if (!n) throw new ProtocolError('UNKNOWN_OBJECT', `delta.changes[${i}]`, `change to unknown object ${String(id)}`)
      at = i + 1
      n.checkChange(changes[i + 1], where)
      targets[i >> 1] = n
    }
    for (let i = 0; i < freed.length; i++)
      if (typeof freed[i] !== 'number') throw new ProtocolError('TYPE', `delta.freed[${i}]`, 'an id is a number')
    execute(g, plan, records)
    for (let i = 0; i < targets.length; i++) (targets[i] as Node).applyChange(changes[2 * i + 1])
  } finally {
    g.incoming = undefined
  }
  for (const id of freed) {
    const n = g.byId.get(id)
    if (!n) continue
    g.byId.delete(id)
    n.id = -1
  }
  // The active swept: what it did not free is reachable, so the drop records have done their work.
  if (freed.length) g.lastHeld.clear()
  return { roots: bindRoots(g, roots) }
}

/** Replaces the whole graph with a snapshot, keeping the identity of objects that keep their id and kind. */
export function applySnapshot(g: GraphState, body: SnapshotBody): Applied {
  const [roots, records] = body
  const plan = planFrame(g, records, roots, true)
  g.lastHeld.clear()
  const keep = new Set(plan.keys())
  try {
    execute(g, plan, records)
  } finally {
    g.incoming = undefined
  }
  g.byId.forEach((n, id) => {
    if (keep.has(id)) return
    g.byId.delete(id)
    n.id = -1
  })
  const before = new Set(g.roots.keys())
  g.roots.clear()
  return { roots: bindRoots(g, roots).filter((r) => !before.has(r)) }
}

/** Validates records and roots; returns the node each record lands in (reused or new). */
function planFrame(g: GraphState, records: NodeRecord[], roots: RootList, snapshot: boolean): Map<number, Node> {
  const plan = new Map<number, Node>()
  g.incoming = plan
  g.snapshotScope = snapshot
  try {
    if (roots.length % 2) throw new ProtocolError('TYPE', 'roots', 'roots are name/id pairs')
    const rootNameOf = new Map<number, string>()
    for (let i = 0; i < roots.length; i += 2) {
      if (typeof roots[i] !== 'string' || typeof roots[i + 1] !== 'number') throw new ProtocolError('TYPE', `roots[${i}]`, 'a root is a name and an id')
      rootNameOf.set(roots[i + 1] as number, roots[i] as string)
    }
    for (let i = 0; i < records.length; i++) {
      const rec = records[i] as unknown
      const where = `nodes[${i}]`
      if (!Array.isArray(rec) || rec.length < 3 || rec.length > 4) throw new ProtocolError('TYPE', where, 'a node is [id, kind, payload, tag?]')
      const [id, kind, payload, tag] = rec as [unknown, unknown, unknown, unknown]
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new ProtocolError('TYPE', `${where}[0]`, 'an id is a positive integer')
      if (typeof kind !== 'number' || !Number.isInteger(kind) || kind < 0 || kind >= KIND_COUNT) throw new ProtocolError('TYPE', `${where}[1]`, `unknown kind ${String(kind)}`)
      const tagged = kind === Kind.Typed || kind === Kind.Class
      if (tagged !== (typeof tag === 'string')) throw new ProtocolError('TYPE', `${where}[3]`, tagged ? 'this kind needs a tag' : 'this kind takes no tag')
      if (kind === Kind.Typed || kind === Kind.Buffer) {
        if (!(payload instanceof Uint8Array)) throw new ProtocolError('TYPE', `${where}[2]`, 'a byte string is expected')
        const C = kind === Kind.Typed ? (TYPED_ARRAYS.get(tag as string) as unknown as { BYTES_PER_ELEMENT: number } | undefined) : { BYTES_PER_ELEMENT: 1 }
        if (!C) throw new ProtocolError('TYPE', `${where}[3]`, `unknown typed array ${String(tag)}`)
        if (payload.length % C.BYTES_PER_ELEMENT) throw new ProtocolError('TYPE', `${where}[2]`, 'byte length is not a whole number of elements')
      }
      if (plan.has(id)) throw new ProtocolError('MALFORMED', `${where}[0]`, `object ${id} appears twice`)
      plan.set(id, landing(g, id, kind as Kind, tag as string | undefined, payload, rootNameOf.get(id)))
    }
    for (let i = 0; i < records.length; i++) {
      const rec = records[i] as NodeRecord
      ;(plan.get(rec[0]) as Node).checkFull(rec[2], () => `nodes[${i}][2]`)
    }
    for (let i = 1; i < roots.length; i += 2) g.checkCell([roots[i] as number], false, () => 'roots', i)
  } catch (err) {
    g.incoming = undefined
    throw err
  } finally {
    g.snapshotScope = false
  }
  return plan
}

/** The node a record fills: the existing one when id, kind and size agree, a root placeholder, or a new shell. */
function landing(g: GraphState, id: number, kind: Kind, tag: string | undefined, payload: unknown, rootName: string | undefined): Node {
  const same = (n: Node | undefined): n is Node =>
    n !== undefined &&
    n.kind === kind &&
    (kind !== Kind.Typed || (n.tag === tag && (n.target as Uint8Array).byteLength === (payload as Uint8Array).length)) &&
    (kind !== Kind.Buffer || (n.target as ArrayBuffer).byteLength === (payload as Uint8Array).length)
  const existing = g.byId.get(id)
  if (same(existing)) return existing
  const placeholder = rootName !== undefined ? g.pending.get(rootName) : undefined
  if (same(placeholder) && placeholder.tag === tag) return placeholder
  const proto = kind === Kind.Class ? g.classes.prototypeOf(tag as string) : undefined
  if (kind === Kind.Class && !proto && !g.unknownClasses.has(tag as string)) g.unknownClasses.set(tag as string, false)
  const target = shellTarget(kind, tag, payload, proto)
  return makeNode(g.typeOf(kind, tag), target)
}

function execute(g: GraphState, plan: Map<number, Node>, records: NodeRecord[]): void {
  for (const [id, n] of plan) {
    if (n.id !== id) {
      const old = g.byId.get(id)
      if (old && old !== n) old.id = -1
      n.id = id
      g.byId.set(id, n)
      g.nodes.set(n.target, n)
    } else n.clear()
    if (id >= g.nextId) g.nextId = id + 1
  }
  for (const rec of records) (plan.get(rec[0]) as Node).fill(rec[2])
}

function bindRoots(g: GraphState, roots: RootList): string[] {
  const added: string[] = []
  for (let i = 0; i < roots.length; i += 2) {
    const name = roots[i] as string
    const n = g.byId.get(roots[i + 1] as number) as Node
    if (!g.roots.has(name)) added.push(name)
    g.roots.set(name, n)
    n.rootName ??= name
    const p = g.pending.get(name)
    if (p) {
      g.pending.delete(name)
      if (p !== n) p.rootName = undefined
    }
  }
  return added
}
