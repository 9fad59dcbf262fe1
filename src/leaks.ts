/** Leak detection: the tracked objects no registered root reaches any more. */
import { CborWriter } from './codec/writer.js'
import type { Graph } from './graph/graph.js'
import { Kind } from './graph/wire.js'
import type { Leak } from './types.js'

const KIND_NAMES: Record<number, string> = { [Kind.Object]: 'object', [Kind.Array]: 'array', [Kind.Map]: 'Map', [Kind.Set]: 'Set', [Kind.Date]: 'Date', [Kind.Buffer]: 'ArrayBuffer', [Kind.NullProto]: 'object' }

/** Every object of `graph` that no root reaches, with where it was last reachable and its own encoded size. */
export function findLeaks(graph: Graph): Leak[] {
  const w = new CborWriter()
  const lost = graph.unreachable()
  const paths = graph.detachedPaths(lost)
  return lost.map((n, i) => ({ id: n.id, path: paths[i] as string, kind: n.tag ?? KIND_NAMES[n.kind] ?? 'object', bytes: w.encode(n.record()).length }))
}
