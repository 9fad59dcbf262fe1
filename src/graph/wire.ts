/**
 * Snapshots and deltas as plain data: arrays, strings, numbers, bigints and
 * byte strings only, so the codec can encode them without knowing the graph
 * and validate them without trusting them.
 *
 * A *cell* is a property value on the wire:
 * - a primitive (`null`, `undefined`, boolean, number, string, bigint) is itself,
 * - `[id]` is a reference to the tracked object `id`,
 * - `[]` is a hole / an absent key (a delete),
 * - `[0, 0]` is negative zero (CBOR integers cannot carry the sign).
 */
export type Primitive = null | undefined | boolean | number | string | bigint
export type Ref = [id: number]
export type Hole = []
export type NegZero = [0, 0]
export type Cell = Primitive | Ref | Hole | NegZero

/** Node kinds. The numbers are part of the protocol: never renumber. */
export const Kind = {
  Object: 0,
  Array: 1,
  Map: 2,
  Set: 3,
  Date: 4,
  Typed: 5,
  Buffer: 6,
  NullProto: 7,
  Class: 8,
} as const
export type Kind = (typeof Kind)[keyof typeof Kind]
export const KIND_COUNT = 9

/** Array change opcodes (flat list: opcode followed by its operands). */
export const ArrayOp = {
  /** `SET index cell` — a hole cell deletes the index. */
  Set: 0,
  /** `SPLICE start deleteCount n cell×n` */
  Splice: 1,
  /** `LENGTH newLength` */
  Length: 2,
} as const

/**
 * One tracked object in full: `[id, kind, payload]`, or `[id, kind, payload, tag]`
 * where the kind needs a tag (typed-array constructor name, registered class name).
 *
 * Payloads by kind: Object/NullProto/Class `[key, cell, …]`; Array `[cell, …]`;
 * Map `[keyCell, valueCell, …]`; Set `[cell, …]`; Date `time`; Typed and Buffer `bytes`.
 */
export type NodeRecord = [id: number, kind: Kind, payload: unknown, tag?: string]

/**
 * A change to an existing object: `id` then `payload`, flattened into the
 * delta's change list (`[id, payload, id, payload, …]`). Payloads by kind:
 * Object-like `[key, cell, …]` (hole = delete); Array: flat op list (see {@link ArrayOp});
 * Map `[reset, keyCell, valueCell, …]`; Set `[reset, cell, present, …]` (reset = 1 means
 * the entries that follow are the whole content); Date `time`; Typed `[byteOffset, bytes]`;
 * Buffer `bytes`.
 */
export type ChangeList = unknown[]

/** `[name, rootId, …]` flattened. */
export type RootList = (string | number)[]

/** What one batch changed. `freed` lists objects no longer reachable from any root. */
export type DeltaBody = [roots: RootList, nodes: NodeRecord[], changes: ChangeList, freed: number[]]

/** The whole graph: every root and every tracked object. */
export type SnapshotBody = [roots: RootList, nodes: NodeRecord[]]

export const HOLE: Hole = []
export const NEG_ZERO: NegZero = [0, 0]
