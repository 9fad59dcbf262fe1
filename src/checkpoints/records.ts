/**
 * The checkpoint record format: `[epoch, seq, crc, ...frames]` in CBOR, with a
 * CRC-32 over the frames, and the checks a restore makes of what it reads back.
 */
import { UnderstudyError } from '../errors.js'
import { CborError, CborReader } from '../codec/reader.js'
import { CborWriter } from '../codec/writer.js'
import { readFrame, type SnapshotFrame } from '../codec/frames.js'

/** A checksum function: `crc` continues one over bytes that came before. */
export type Crc = (bytes: Uint8Array, crc?: number) => number

/**
 * A stored record was unusable (truncated, bits flipped, trailing bytes, not
 * where its key says): `key` names it, `detail` says what was wrong, and the
 * message what the restore did instead.
 */
export class CheckpointCorruptError extends UnderstudyError {
  override name = 'CheckpointCorruptError'
  readonly key: string[]
  readonly detail: string
  constructor(key: string[], detail: string, outcome = 'restored the newest consistent state before it') {
    super('CHECKPOINT_CORRUPT', `checkpoint record ${key.join('/')} is unusable (${detail}); ${outcome}`)
    this.key = key
    this.detail = detail
  }
}

/** Slicing-by-4 tables: T[k·256 + n] is the CRC of byte n followed by k zero bytes. Typed, so lookups stay unboxed. Built on first use, so importing the package costs nothing. */
let crcTables: Int32Array | undefined
function crcTable(): Int32Array {
  if (crcTables) return crcTables
  const T = new Int32Array(256 * 4)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    T[n] = c
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 4; k++) T[k * 256 + n] = ((T[(k - 1) * 256 + n] as number) >>> 8) ^ (T[(T[(k - 1) * 256 + n] as number) & 255] as number)
  return (crcTables = T)
}

export function crc32(bytes: Uint8Array, crc = 0): number {
  const T = crcTable()
  let c = ~crc
  let i = 0
  const n = bytes.length
  for (const end = n & ~3; i < end; i += 4) {
    c ^= (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24)
    c = (T[768 + (c & 255)] as number) ^ (T[512 + ((c >>> 8) & 255)] as number) ^ (T[256 + ((c >>> 16) & 255)] as number) ^ (T[c >>> 24] as number)
  }
  for (; i < n; i++) c = (T[(c ^ (bytes[i] as number)) & 255] as number) ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** The record codec, made on first use (so importing this module costs nothing until a checkpoint is written or read). */
let codecs: { writer: CborWriter; reader: CborReader } | undefined
const codec = () => (codecs ??= { writer: new CborWriter(), reader: new CborReader() })
export const SEQ_DIGITS = 12
/** Snapshot keys: `[group, 'snapshot', '<epoch>-<seq>-<copy>']`, both numbers 16 digits, so key order is position order. */
export const POS_DIGITS = 16
export const SNAPSHOT_NAME = /^(\d{16})-(\d{16})-([ab])$/
export const COPIES = ['a', 'b'] as const

/** A snapshot record found in the store, and the position its key names (none for the one-key layout of 0.1.0). */
export interface SnapshotEntry {
  key: string[]
  value: Uint8Array
  at: { epoch: number; seq: number } | undefined
}

export const keyId = (key: readonly string[]) => key.join('\u0000')
export const newer = (a: { epoch: number; seq: number }, b: { epoch: number; seq: number }) => a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq)

/**
 * The record `[epoch, seq, crc, ...frames]` in CBOR (as the writer would
 * encode it), built in one allocation: frames are copied once.
 */
export function wrapRecord(crcOf: Crc, epoch: number, seq: number, frames: Uint8Array[]): Uint8Array {
  let crc = 0
  let size = 0
  for (const f of frames) {
    crc = crcOf(f, crc)
    size += f.length
  }
  const head = codec().writer.encode([epoch, seq, crc]) // 0x83, then the three numbers
  const count = 3 + frames.length
  const arrayHead = count < 24 ? [0x80 + count] : count < 256 ? [0x98, count] : count < 65536 ? [0x99, count >> 8, count & 255] : [0x9a, count >>> 24, (count >> 16) & 255, (count >> 8) & 255, count & 255]
  const out = new Uint8Array(arrayHead.length + head.length - 1 + frames.length * 5 + size)
  out.set(arrayHead)
  out.set(head.subarray(1), arrayHead.length)
  let pos = arrayHead.length + head.length - 1
  for (const f of frames) {
    const n = f.length
    if (n < 24) out[pos++] = 0x40 + n
    else if (n < 256) (out[pos++] = 0x58), (out[pos++] = n)
    else if (n < 65536) (out[pos++] = 0x59), (out[pos++] = n >> 8), (out[pos++] = n & 255)
    else (out[pos++] = 0x5a), (out[pos++] = n >>> 24), (out[pos++] = (n >> 16) & 255), (out[pos++] = (n >> 8) & 255), (out[pos++] = n & 255)
    out.set(f, pos)
    pos += n
  }
  return out.subarray(0, pos)
}

/** Reads a record back, checking its shape and checksum; throws `CheckpointCorruptError` naming `key`. */
export function unwrapRecord(crcOf: Crc, key: string[], bytes: Uint8Array): { epoch: number; seq: number; frames: Uint8Array[] } {
  let r: unknown
  try {
    r = codec().reader.decode(bytes)
  } catch (err) {
    throw new CheckpointCorruptError(key, err instanceof CborError ? err.message : String(err))
  }
  const [epoch, seq, crc, ...frames] = (Array.isArray(r) ? r : []) as unknown[]
  if (typeof epoch !== 'number' || typeof seq !== 'number' || typeof crc !== 'number' || !frames.length || !frames.every((f) => f instanceof Uint8Array))
    throw new CheckpointCorruptError(key, 'not a checkpoint record')
  let sum = 0
  for (const f of frames as Uint8Array[]) sum = crcOf(f, sum)
  if (sum !== crc) throw new CheckpointCorruptError(key, 'checksum mismatch')
  return { epoch, seq, frames: frames as Uint8Array[] }
}

/** A record holding one snapshot frame, at the position its header says. */
export function readSnapshotRecord(crcOf: Crc, key: string[], bytes: Uint8Array): SnapshotFrame {
  const { epoch, seq, frames } = unwrapRecord(crcOf, key, bytes)
  if (frames.length !== 1) throw new CheckpointCorruptError(key, `holds ${frames.length} frames, not one snapshot`)
  const f = readRecordFrame(key, frames[0] as Uint8Array)
  if (f.type !== 'snapshot') throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
  if (f.epoch !== epoch || f.seq !== seq) throw new CheckpointCorruptError(key, `its header says seq ${seq} of epoch ${epoch}, its frame seq ${f.seq} of epoch ${f.epoch}`)
  return f
}

/** One frame of a record; a frame that does not decode is a `CheckpointCorruptError` naming `key`. */
export function readRecordFrame(key: string[], bytes: Uint8Array) {
  try {
    return readFrame(bytes)
  } catch (err) {
    throw new CheckpointCorruptError(key, (err as Error).message)
  }
}

/** The newest whole snapshot record, or undefined; the unusable ones met before it go to `corrupt`, saying what was restored instead. */
export function pickSnapshot(crcOf: Crc, entries: SnapshotEntry[], corrupt: CheckpointCorruptError[]): { snapshot: SnapshotFrame; bytes: number } | undefined {
  const bad: { key: string[]; detail: string; at: SnapshotEntry['at'] }[] = []
  let picked: { snapshot: SnapshotFrame; bytes: number } | undefined
  const check = (e: SnapshotEntry): SnapshotFrame | undefined => {
    try {
      const f = readSnapshotRecord(crcOf, e.key, e.value)
      if (e.at && (f.epoch !== e.at.epoch || f.seq !== e.at.seq)) throw new CheckpointCorruptError(e.key, `holds seq ${f.seq} of epoch ${f.epoch}, its key says seq ${e.at.seq} of epoch ${e.at.epoch}`)
      return f
    } catch (err) {
      bad.push({ key: e.key, detail: err instanceof CheckpointCorruptError ? err.detail : String(err), at: e.at })
      return undefined
    }
  }
  for (const [i, e] of entries.entries()) {
    const f = check(e)
    if (!f) continue
    picked = { snapshot: f, bytes: e.value.length }
    // Its other copy is checked too, so that a lost copy is reported while the first still holds: the same bytes are whole.
    const twin = entries[i + 1]
    if (e.at && twin?.at && twin.at.epoch === e.at.epoch && twin.at.seq === e.at.seq && !sameBytes(twin.value, e.value)) check(twin)
    break
  }
  for (const b of bad) {
    const s = picked?.snapshot
    const outcome = !s
      ? 'no whole snapshot record is left: restored nothing'
      : b.at && b.at.epoch === s.epoch && b.at.seq === s.seq
        ? 'its other copy holds the same snapshot: nothing lost'
        : `restored the older snapshot at seq ${s.seq} of epoch ${s.epoch} and the log after it`
    corrupt.push(new CheckpointCorruptError(b.key, b.detail, outcome))
  }
  return picked
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

