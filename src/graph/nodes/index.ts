/** Every node kind, and how to make one. */
import type { Graph } from '../graph.js'
import { TYPED_ARRAYS } from '../kinds.js'
import { Kind } from '../wire.js'
import { ArrayNode } from './array.js'
import type { Node } from './base.js'
import { MapNode, SetNode } from './collections.js'
import { ObjectNode } from './object.js'
import { BufferNode, DateNode, TypedNode } from './scalars.js'

export { MAX_ARRAY_LENGTH, Node, at, proxyNodes, type Where } from './base.js'
export { ArrayNode, MapNode, ObjectNode, SetNode, DateNode, TypedNode, BufferNode }

/** Creates an empty object of `kind` to be filled from the wire, and the node for it. */
export function shellTarget(kind: Kind, tag: string | undefined, payload: unknown, proto: object | undefined): object {
  switch (kind) {
    case Kind.Object:
      return {}
    case Kind.NullProto:
      return Object.create(null) as object
    case Kind.Class:
      return Object.create(proto ?? Object.prototype) as object
    case Kind.Array:
      return []
    case Kind.Map:
      return new Map()
    case Kind.Set:
      return new Set()
    case Kind.Date:
      return new Date(Number.NaN)
    case Kind.Typed: {
      const C = TYPED_ARRAYS.get(tag as string) as unknown as new (n: number) => Uint8Array
      return new C((payload as Uint8Array).length / (C as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT)
    }
    case Kind.Buffer:
      return new ArrayBuffer((payload as Uint8Array).length)
  }
}

export function makeNode(graph: Graph, target: object, kind: Kind, tag: string | undefined): Node {
  switch (kind) {
    case Kind.Array:
      return new ArrayNode(graph, target, kind, tag)
    case Kind.Map:
      return new MapNode(graph, target, kind, tag)
    case Kind.Set:
      return new SetNode(graph, target, kind, tag)
    case Kind.Date:
      return new DateNode(graph, target, kind, tag)
    case Kind.Typed:
      return new TypedNode(graph, target, kind, tag)
    case Kind.Buffer:
      return new BufferNode(graph, target, kind, tag)
    default:
      return new ObjectNode(graph, target, kind, tag)
  }
}

