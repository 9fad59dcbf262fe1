/** Every node kind, and how to make one. */
import { TYPED_ARRAYS } from '../kinds.js'
import { Kind } from '../wire.js'
import { ArrayNode } from './array.js'
import type { Node, NodeType } from './base.js'
import { MapNode } from './map.js'
import { SetNode } from './set.js'
import { ObjectNode } from './object.js'
import { BufferNode, DateNode, TypedNode } from './scalars.js'

export { MAX_ARRAY_LENGTH, Node, at, proxyNodes, type GraphHost, type NodeType, type Where } from './base.js'
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

export function makeNode(type: NodeType, target: object): Node {
  switch (type.kind) {
    case Kind.Array:
      return new ArrayNode(type, target)
    case Kind.Map:
      return new MapNode(type, target)
    case Kind.Set:
      return new SetNode(type, target)
    case Kind.Date:
      return new DateNode(type, target)
    case Kind.Typed:
      return new TypedNode(type, target)
    case Kind.Buffer:
      return new BufferNode(type, target)
    default:
      return new ObjectNode(type, target)
  }
}

