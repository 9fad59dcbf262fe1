import { ProtocolError, UnderstudyError } from '../errors.js'
import { CborError, CborReader } from '../codec/reader.js'
import { CborWriter } from '../codec/writer.js'
import { readFrame, type DeltaFrame, type SnapshotFrame } from '../codec/frames.js'
import type { CheckpointStore } from './store.js'

/** A stored record was unreadable (truncated, corrupted); what was skipped is named. */
export class CheckpointCorruptError extends UnderstudyError {
  readonly key: string[]
  constructor(key: string[], detail: string) {
    super('CHECKPOINT_CORRUPT', `checkpoint record ${key.join('/')} is unusable (${detail}); restored the newest consistent state before it`)
    this.key = key
  }
}

/** CRC-32 (IEEE), to tell a damaged record from a good one. */
/** Slicing-by-4 tables: T[k·256 + n] is the CRC of byte n followed by k zero bytes. Typed, so lookups stay unboxed. */
const T = new Int32Array(256 * 4)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  T[n] = c
}
for (let n = 0; n < 256; n++) for (let k = 1; k < 4; k++) T[k * 256 + n] = ((T[(k - 1) * 256 + n] as number) >>> 8) ^ (T[(T[(k - 1) * 256 + n] as number) & 255] as number)

/** CRC-32 (IEEE), four bytes per step. */
export function crc32(bytes: Uint8Array): number {
  let c = -1
  let i = 0
  const n = bytes.length
  for (const end = n & ~3; i < end; i += 4) {
    c ^= (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24)
    c = (T[768 + (c & 255)] as number) ^ (T[512 + ((c >>> 8) & 255)] as number) ^ (T[256 + ((c >>> 16) & 255)] as number) ^ (T[c >>> 24] as number)
  }
  for (; i < n; i++) c = (T[(c ^ (bytes[i] as number)) & 255] as number) ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

const writer = new CborWriter()
const reader = new CborReader()
const SEQ_DIGITS = 12

/** What a restore found: the newest consistent state as wire frames, and what had to be skipped. */
export interface Restored {
  snapshot: SnapshotFrame | undefined
  deltas: DeltaFrame[]
  corrupt: CheckpointCorruptError[]
}

/**
 * A snapshot plus an append-only log of the deltas since it, in a
 * CheckpointStore under `[group, …]`. Records are the wire frames themselves,
 * wrapped with epoch, seq and a CRC-32. Restoring stops at the first record
 * that is damaged or does not follow on: everything before it is kept.
 */
export class Checkpointer {
  /** Bytes in the log since the snapshot, and the snapshot's size: compaction compares them. */
  logBytes = 0
  snapshotBytes = 0
  private chain: Promise<void> = Promise.resolve()

  constructor(
    private readonly store: CheckpointStore,
    private readonly group: string,
  ) {}

  private wrap(epoch: number, seq: number, frame: Uint8Array): Uint8Array {
    return writer.encode([epoch, seq, crc32(frame), frame])
  }

  private unwrap(key: string[], bytes: Uint8Array): { epoch: number; seq: number; frame: Uint8Array } {
    let r: unknown
    try {
      r = reader.decode(bytes)
    } catch (err) {
      throw new CheckpointCorruptError(key, err instanceof CborError ? err.message : String(err))
    }
    const [epoch, seq, crc, frame] = (Array.isArray(r) ? r : []) as [unknown, unknown, unknown, unknown]
    if (typeof epoch !== 'number' || typeof seq !== 'number' || typeof crc !== 'number' || !(frame instanceof Uint8Array))
      throw new CheckpointCorruptError(key, 'not a checkpoint record')
    if (crc32(frame) !== crc) throw new CheckpointCorruptError(key, 'checksum mismatch')
    return { epoch, seq, frame }
  }

  /** Runs writes one after another, in the order they were asked for. */
  private queue(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn)
    this.chain = next.catch(() => undefined)
    return next
  }

  /** Replaces the snapshot and clears the log (a compaction, or the first checkpoint of an epoch). */
  writeSnapshot(epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    const record = this.wrap(epoch, seq, frame)
    // Sizes are counted when a write is queued (writes run in order), so compaction does not wait on the disk.
    this.snapshotBytes = record.length
    this.logBytes = 0
    return this.queue(async () => {
      await this.store.save([this.group, 'snapshot'], record)
      await this.store.removeRange([this.group, 'log'])
    })
  }

  /** Appends one delta frame. */
  appendDelta(epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    const record = this.wrap(epoch, seq, frame)
    this.logBytes += record.length
    return this.queue(() => this.store.save([this.group, 'log', String(seq).padStart(SEQ_DIGITS, '0')], record))
  }

  /**
   * True when the log has outgrown the snapshot (and a floor of 64 KB): time to
   * write a fresh snapshot, so that opening replays at most about one
   * snapshot's worth of deltas.
   */
  get shouldCompact(): boolean {
    return this.logBytes > Math.max(this.snapshotBytes, 64 * 1024)
  }

  /** Resolves once every write asked for so far is durable. */
  flushed(): Promise<void> {
    return this.chain
  }

  /** The newest consistent state: the snapshot, then the deltas that follow it without a gap or a damaged record. */
  async restore(): Promise<Restored> {
    const corrupt: CheckpointCorruptError[] = []
    const snapBytes = await this.store.load([this.group, 'snapshot'])
    if (!snapBytes) return { snapshot: undefined, deltas: [], corrupt }
    let snapshot: SnapshotFrame
    try {
      const { frame } = this.unwrap([this.group, 'snapshot'], snapBytes)
      const f = readFrame(frame)
      if (f.type !== 'snapshot') throw new CheckpointCorruptError([this.group, 'snapshot'], `holds a ${f.type} frame`)
      snapshot = f
    } catch (err) {
      corrupt.push(err instanceof CheckpointCorruptError ? err : new CheckpointCorruptError([this.group, 'snapshot'], (err as Error).message))
      return { snapshot: undefined, deltas: [], corrupt }
    }
    this.snapshotBytes = snapBytes.length
    const deltas: DeltaFrame[] = []
    let expect = snapshot.seq + 1
    for (const { key, value } of await this.store.loadRange([this.group, 'log'])) {
      try {
        const { frame } = this.unwrap(key, value)
        const f = readFrame(frame)
        if (f.type !== 'delta') throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
        if (f.seq < expect) continue // older than the snapshot: left over from before a compaction
        if (f.seq !== expect || f.epoch !== snapshot.epoch) throw new CheckpointCorruptError(key, `seq ${f.seq} of epoch ${f.epoch} does not follow ${expect - 1}`)
        deltas.push(f)
        this.logBytes += value.length
        expect++
      } catch (err) {
        corrupt.push(err instanceof CheckpointCorruptError ? err : new CheckpointCorruptError(key, err instanceof ProtocolError ? err.message : String(err)))
        break
      }
    }
    return { snapshot, deltas, corrupt }
  }
}
