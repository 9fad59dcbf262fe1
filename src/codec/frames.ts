import { ProtocolError } from '../errors.js'
import { CborError, CborReader } from './reader.js'
import { CborWriter } from './writer.js'
import type { DeltaBody, SnapshotBody } from '../graph/wire.js'

/** Bumped on any incompatible change to the frame layout. */
export const PROTOCOL_VERSION = 1

/** Frame type numbers (part of the protocol). 8–15 are reserved for heartbeat and control frames. */
export const FrameType = { Hello: 1, Snapshot: 2, Delta: 3, Ack: 4, Resync: 5, Handover: 6, Persisted: 7 } as const

/** Role codes carried by HELLO frames. */
export const RoleCode = { standby: 0, active: 1, quiescing: 2, stopped: 3 } as const
export type RoleName = keyof typeof RoleCode
const ROLE_NAMES = Object.keys(RoleCode) as RoleName[]

/** Introduces a node to its peers: which group, who, in what role, and how far it got. */
export interface HelloFrame {
  type: 'hello'
  group: string
  node: string
  role: RoleName
  epoch: number
  seq: number
  /** This run of the node (`<node>@<random>`); a HELLO without one (an older peer) is its node's. */
  incarnation: string
}
/** The whole graph at (epoch, seq). */
export interface SnapshotFrame {
  type: 'snapshot'
  epoch: number
  seq: number
  body: SnapshotBody
}
/** One batch: applies on top of (epoch, seq − 1). */
export interface DeltaFrame {
  type: 'delta'
  epoch: number
  seq: number
  body: DeltaBody
}
/** "I have applied everything up to (epoch, seq)." */
export interface AckFrame {
  type: 'ack'
  epoch: number
  seq: number
}
/** "I am at (epoch, seq) and need what follows (or a snapshot)." */
export interface ResyncFrame {
  type: 'resync'
  epoch: number
  seq: number
}
/** "Everything up to (epoch, seq) is yours: take over now." From the active to the standby it hands over to. */
export interface HandoverFrame {
  type: 'handover'
  epoch: number
  seq: number
}
/** "My checkpoints hold everything up to (epoch, seq)" — from a standby that keeps checkpoints; seq −1 announces that it does. */
export interface PersistedFrame {
  type: 'persisted'
  epoch: number
  seq: number
}
export type Frame = HelloFrame | SnapshotFrame | DeltaFrame | AckFrame | ResyncFrame | HandoverFrame | PersistedFrame

/** Limits applied to untrusted bytes before and while decoding. */
export interface CodecLimits {
  /** Largest frame accepted, in bytes (default 256 MiB). */
  maxFrameBytes: number
}
export const DEFAULT_LIMITS: CodecLimits = { maxFrameBytes: 256 * 1024 * 1024 }

// Made on first use, not at import: a bundle that never touches frames (an
// app importing only `seededRandom`, say) then drops the codec entirely.
let writer: CborWriter | undefined
let reader: CborReader | undefined

function write(parts: unknown[]): Uint8Array {
  return (writer ??= new CborWriter()).encode(parts)
}

export function writeHello(f: Omit<HelloFrame, 'type' | 'incarnation'> & { incarnation?: string }): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Hello, f.group, f.node, RoleCode[f.role], f.epoch, f.seq, f.incarnation ?? f.node])
}
export function writeSnapshot(epoch: number, seq: number, body: SnapshotBody): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Snapshot, epoch, seq, body])
}
export function writeDelta(epoch: number, seq: number, body: DeltaBody): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Delta, epoch, seq, body])
}
export function writeAck(epoch: number, seq: number): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Ack, epoch, seq])
}
export function writeResync(epoch: number, seq: number): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Resync, epoch, seq])
}
export function writePersisted(epoch: number, seq: number): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Persisted, epoch, seq])
}
export function writeHandover(epoch: number, seq: number): Uint8Array {
  return write([PROTOCOL_VERSION, FrameType.Handover, epoch, seq])
}

/** The longest group or node name a HELLO may carry, in UTF-16 code units. An incarnation (`<node>@<random>`) may be {@link INCARNATION_EXTRA} longer. */
export const MAX_NAME_LENGTH = 256
export const INCARNATION_EXTRA = 64

/** `v` for an error message: never the whole of a long string or a large array from a peer. */
function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v)
  if (typeof v === 'string') return v.length > 32 ? `a string of ${v.length} characters` : JSON.stringify(v)
  if (typeof v === 'bigint') return `the bigint ${v > 2n ** 64n ? 'over 2^64' : String(v)}`
  if (v instanceof Uint8Array) return `${v.length} bytes`
  if (Array.isArray(v)) return `an array of ${v.length}`
  return typeof v
}

function counter(v: unknown, where: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ProtocolError('TYPE', where, `expected an integer ≥ ${min}, got ${shown(v)}`)
  return v
}

/** A name from a peer: a non-empty string of at most `max` UTF-16 code units. */
function name(v: unknown, where: string, max = MAX_NAME_LENGTH): string {
  if (typeof v !== 'string') throw new ProtocolError('TYPE', where, `expected a string, got ${shown(v)}`)
  if (!v.length || v.length > max) throw new ProtocolError('MALFORMED', where, `expected 1 to ${max} characters, got ${v.length}`)
  return v
}

/** A HELLO's role code: the number 0–3 (not a string, an array, bytes or a bigint). */
function roleOf(v: unknown): RoleName {
  const role = typeof v === 'number' && Number.isInteger(v) ? ROLE_NAMES[v] : undefined
  if (role === undefined) throw new ProtocolError('TYPE', 'hello.role', `expected a role code 0–${ROLE_NAMES.length - 1}, got ${shown(v)}`)
  return role
}

function list(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError('TYPE', where, `expected an array, got ${shown(v)}`)
  return v
}

/**
 * Decodes and structurally validates a frame from untrusted bytes. Anything
 * that is not a well-formed frame of a known type — truncated, oversized,
 * garbage, wrong types, another protocol version — throws {@link ProtocolError};
 * it never throws anything else. The graph validates references and payloads
 * again when it applies the frame.
 */
export function readFrame(bytes: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): Frame {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('TYPE', 'frame', 'a frame is a Uint8Array')
  if (bytes.length > limits.maxFrameBytes)
    throw new ProtocolError('OVERSIZED', 'frame', `${bytes.length} bytes exceeds maxFrameBytes ${limits.maxFrameBytes}`)
  if (bytes.length === 0) throw new ProtocolError('TRUNCATED', 'frame', 'empty frame')
  let raw: unknown
  try {
    raw = (reader ??= new CborReader()).decode(bytes)
  } catch (err) {
    if (!(err instanceof CborError)) throw err
    throw new ProtocolError(err.truncated ? 'TRUNCATED' : 'MALFORMED', 'frame', `undecodable CBOR (${err.message})`)
  }
  const f = list(raw, 'frame')
  if (f[0] !== PROTOCOL_VERSION)
    throw new ProtocolError('VERSION', 'frame[0]', `protocol version ${shown(f[0])} is not supported (this build speaks ${PROTOCOL_VERSION})`)
  switch (f[1]) {
    case FrameType.Hello: {
      if (f.length !== 7 && f.length !== 8) throw new ProtocolError('MALFORMED', 'hello', 'a hello has 7 or 8 fields')
      const group = name(f[2], 'hello.group')
      const node = name(f[3], 'hello.node')
      const role = roleOf(f[4])
      const epoch = counter(f[5], 'hello.epoch', 0)
      const seq = counter(f[6], 'hello.seq', -1)
      const incarnation = f.length === 8 ? name(f[7], 'hello.incarnation', MAX_NAME_LENGTH + INCARNATION_EXTRA) : node
      return { type: 'hello', group, node, role, epoch, seq, incarnation }
    }
    case FrameType.Snapshot: {
      if (f.length !== 5) throw new ProtocolError('MALFORMED', 'snapshot', 'a snapshot has 5 fields')
      const body = list(f[4], 'snapshot.body')
      if (body.length !== 2) throw new ProtocolError('MALFORMED', 'snapshot.body', 'a snapshot body is [roots, nodes]')
      list(body[0], 'snapshot.roots')
      list(body[1], 'snapshot.nodes')
      return { type: 'snapshot', epoch: counter(f[2], 'snapshot.epoch', 0), seq: counter(f[3], 'snapshot.seq', 0), body: body as SnapshotBody }
    }
    case FrameType.Delta: {
      if (f.length !== 5) throw new ProtocolError('MALFORMED', 'delta', 'a delta has 5 fields')
      const body = list(f[4], 'delta.body')
      if (body.length !== 4) throw new ProtocolError('MALFORMED', 'delta.body', 'a delta body is [roots, nodes, changes, freed]')
      body.forEach((part, i) => list(part, `delta.body[${i}]`))
      return { type: 'delta', epoch: counter(f[2], 'delta.epoch', 0), seq: counter(f[3], 'delta.seq', 1), body: body as DeltaBody }
    }
    case FrameType.Ack:
    case FrameType.Resync:
    case FrameType.Handover:
    case FrameType.Persisted: {
      const type = f[1] === FrameType.Ack ? 'ack' : f[1] === FrameType.Resync ? 'resync' : f[1] === FrameType.Handover ? 'handover' : 'persisted'
      if (f.length !== 4) throw new ProtocolError('MALFORMED', type, `an ${type} has 4 fields`)
      return { type, epoch: counter(f[2], `${type}.epoch`, 0), seq: counter(f[3], `${type}.seq`, -1) }
    }
    default:
      throw new ProtocolError('TYPE', 'frame[1]', `unknown frame type ${shown(f[1])}`)
  }
}
