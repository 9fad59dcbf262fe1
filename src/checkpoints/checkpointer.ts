import { ConfigError, ProtocolError, UnderstudyError } from '../errors.js'
import { realClock, type Clock } from '../clock.js'
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

/** Slicing-by-4 tables: T[k·256 + n] is the CRC of byte n followed by k zero bytes. Typed, so lookups stay unboxed. */
const T = new Int32Array(256 * 4)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  T[n] = c
}
for (let n = 0; n < 256; n++) for (let k = 1; k < 4; k++) T[k * 256 + n] = ((T[(k - 1) * 256 + n] as number) >>> 8) ^ (T[(T[(k - 1) * 256 + n] as number) & 255] as number)

/** CRC-32 (IEEE), four bytes per step; `crc` continues a checksum over bytes that came before. */
export function crc32(bytes: Uint8Array, crc = 0): number {
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
 * When batches are written to the checkpoint log. Every batch is always
 * written eventually (on `close()`, `save()`, a `'persisted'` commit); the
 * policy decides how many may wait in memory, which is what a crash of every
 * node at once could lose. The default writes each batch as it is made.
 */
export interface CheckpointPolicy {
  /** Write once this many batches wait (default 1: each batch as it is made). */
  commits?: number
  /** Write waiting batches at most this many ms after the first of them (default: no timer). */
  ms?: number
  /** Write waiting batches when this node hands over (default true). */
  onHandover?: boolean
  /** In browsers, write waiting batches when the page is hidden or unloaded (`pagehide`, `visibilitychange`; default true). */
  onPageHide?: boolean
}

/** Throws {@link ConfigError} unless `policy` is a valid {@link CheckpointPolicy}. */
export function checkPolicy(policy: CheckpointPolicy | undefined): Required<Omit<CheckpointPolicy, 'ms'>> & { ms: number | undefined } {
  const p = policy ?? {}
  if (typeof p !== 'object') throw new ConfigError('Understudy.start: "checkpointPolicy" must be an object')
  if (p.commits !== undefined && (!Number.isSafeInteger(p.commits) || p.commits < 1)) throw new ConfigError(`Understudy.start: "checkpointPolicy.commits" must be a positive integer, not ${String(p.commits)}`)
  if (p.ms !== undefined && (typeof p.ms !== 'number' || !(p.ms > 0))) throw new ConfigError(`Understudy.start: "checkpointPolicy.ms" must be a positive number of ms, not ${String(p.ms)}`)
  return { commits: p.commits ?? 1, ms: p.ms, onHandover: p.onHandover ?? true, onPageHide: p.onPageHide ?? true }
}

export interface CheckpointerOptions {
  policy?: CheckpointPolicy
  /** Runs the `ms` timer (default: the real clock). */
  clock?: Clock
  /** Called with write failures that no caller awaits (a timer's write). */
  onError?: (error: Error) => void
  /** Called each time the durable position advances. */
  onDurable?: (epoch: number, seq: number) => void
}

interface Waiting {
  epoch: number
  seq: number
  frame: Uint8Array
}

/**
 * A snapshot plus an append-only log of the deltas since it, in a
 * CheckpointStore under `[group, …]`. A log record holds one or more
 * consecutive delta frames (the wire frames themselves), wrapped with the
 * epoch, the first seq and a CRC-32 over the frames; the snapshot record holds
 * one snapshot frame. Restoring stops at the first record that is damaged or
 * does not follow on: everything before it is kept.
 */
export class Checkpointer {
  /** Bytes in the log since the snapshot (written or waiting), and the snapshot's size: compaction compares them. */
  logBytes = 0
  snapshotBytes = 0
  /** The newest position whose checkpoint write has completed. */
  durable = { epoch: 0, seq: -1 }
  private chain: Promise<void> = Promise.resolve()
  private waiting: Waiting[] = []
  private waitingDone: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined
  private timer: unknown = undefined
  private readonly policy: ReturnType<typeof checkPolicy>
  private readonly clock: Clock
  private readonly onError: (error: Error) => void
  private readonly onDurable: ((epoch: number, seq: number) => void) | undefined
  private readonly crc: (bytes: Uint8Array, crc?: number) => number

  constructor(
    private readonly store: CheckpointStore,
    private readonly group: string,
    options: CheckpointerOptions = {},
  ) {
    this.policy = checkPolicy(options.policy)
    this.clock = options.clock ?? realClock
    this.onError = options.onError ?? (() => undefined)
    this.onDurable = options.onDurable
    this.crc = store.checksum ?? crc32
  }

  /** The policy in force. */
  get onHandover(): boolean {
    return this.policy.onHandover
  }

  get onPageHide(): boolean {
    return this.policy.onPageHide
  }

  /** Batches not yet handed to the store. */
  get pending(): number {
    return this.waiting.length
  }

  /**
   * The record `[epoch, seq, crc, ...frames]` in CBOR (as the writer would
   * encode it), built in one allocation: frames are copied once.
   */
  private wrap(epoch: number, seq: number, frames: Uint8Array[]): Uint8Array {
    let crc = 0
    let size = 0
    for (const f of frames) {
      crc = this.crc(f, crc)
      size += f.length
    }
    const head = writer.encode([epoch, seq, crc]) // 0x83, then the three numbers
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

  private unwrap(key: string[], bytes: Uint8Array): { epoch: number; seq: number; frames: Uint8Array[] } {
    let r: unknown
    try {
      r = reader.decode(bytes)
    } catch (err) {
      throw new CheckpointCorruptError(key, err instanceof CborError ? err.message : String(err))
    }
    const [epoch, seq, crc, ...frames] = (Array.isArray(r) ? r : []) as unknown[]
    if (typeof epoch !== 'number' || typeof seq !== 'number' || typeof crc !== 'number' || !frames.length || !frames.every((f) => f instanceof Uint8Array))
      throw new CheckpointCorruptError(key, 'not a checkpoint record')
    let sum = 0
    for (const f of frames as Uint8Array[]) sum = this.crc(f, sum)
    if (sum !== crc) throw new CheckpointCorruptError(key, 'checksum mismatch')
    return { epoch, seq, frames: frames as Uint8Array[] }
  }

  /** Runs writes one after another, in the order they were asked for. */
  private queue(epoch: number, seq: number, fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn).then(() => {
      if (epoch > this.durable.epoch || (epoch === this.durable.epoch && seq > this.durable.seq)) {
        this.durable = { epoch, seq }
        this.onDurable?.(epoch, seq)
      }
    })
    this.chain = next.catch(() => undefined)
    return next
  }

  /** Replaces the snapshot and clears the log (a compaction, or the first checkpoint of an epoch). Batches waiting are covered by it. */
  writeSnapshot(epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    const record = this.wrap(epoch, seq, [frame])
    // Sizes are counted when a write is queued (writes run in order), so compaction does not wait on the disk.
    this.snapshotBytes = record.length
    this.logBytes = 0
    const done = this.waitingDone
    this.dropWaiting()
    const write = this.queue(epoch, seq, async () => {
      await this.store.save([this.group, 'snapshot'], record)
      await this.store.removeRange([this.group, 'log'])
    })
    if (done) write.then(done.resolve, done.reject)
    return write
  }

  /**
   * Adds one delta frame to the log, written now or later as the policy says.
   * Resolves once it is durable.
   */
  appendDelta(epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    if (this.waiting.length && (this.waiting[0] as Waiting).epoch !== epoch) void this.writeWaiting()
    this.waiting.push({ epoch, seq, frame })
    this.logBytes += frame.length + 16
    this.waitingDone ??= deferred()
    const done = this.waitingDone.promise
    if (this.waiting.length >= this.policy.commits) void this.writeWaiting()
    else if (this.policy.ms !== undefined && this.timer === undefined)
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined
        this.writeWaiting().catch(this.onError)
      }, this.policy.ms)
    return done
  }

  /** Hands the waiting batches to the store as one record. */
  private writeWaiting(): Promise<void> {
    const batch = this.waiting
    const done = this.waitingDone
    this.dropWaiting()
    if (!batch.length || !done) return this.chain
    const first = batch[0] as Waiting
    const last = batch[batch.length - 1] as Waiting
    const record = this.wrap(first.epoch, first.seq, batch.map((w) => w.frame))
    const write = this.queue(last.epoch, last.seq, () => this.store.save([this.group, 'log', String(first.seq).padStart(SEQ_DIGITS, '0')], record))
    write.then(done.resolve, done.reject)
    return write
  }

  private dropWaiting(): void {
    this.waiting = []
    this.waitingDone = undefined
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /**
   * True when the log has outgrown the snapshot (and a floor of 64 KB): time to
   * write a fresh snapshot, so that opening replays at most about one
   * snapshot's worth of deltas.
   */
  get shouldCompact(): boolean {
    return this.logBytes > Math.max(this.snapshotBytes, 64 * 1024)
  }

  /** Resolves once every write handed to the store so far is durable (batches still waiting under the policy are not). */
  flushed(): Promise<void> {
    return this.chain
  }

  /** Writes the waiting batches now and resolves once everything asked for so far is durable. */
  sync(): Promise<void> {
    return this.writeWaiting()
  }

  /** Forgets the batches waiting under the policy: they are never written (a load goes back past them). */
  discardWaiting(): void {
    this.logBytes -= this.waiting.reduce((n, w) => n + w.frame.length + 16, 0)
    this.dropWaiting()
  }

  /** Stops the policy's timer; call after a last `sync()`. */
  dispose(): void {
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Saves a complete snapshot under `name`, beside the rolling checkpoint; kept until saved over or removed. */
  saveNamed(name: string, epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    const record = this.wrap(epoch, seq, [frame])
    return this.queue(epoch, seq, () => this.store.save([this.group, 'saved', name], record))
  }

  /** The snapshot saved under `name`, or undefined. */
  async loadNamed(name: string): Promise<SnapshotFrame | undefined> {
    const key = [this.group, 'saved', name]
    const bytes = await this.store.load(key)
    return bytes && this.readSnapshot(key, bytes)
  }

  private readSnapshot(key: string[], bytes: Uint8Array): SnapshotFrame {
    const { frames } = this.unwrap(key, bytes)
    let f
    try {
      f = readFrame(frames[0] as Uint8Array)
    } catch (err) {
      throw new CheckpointCorruptError(key, (err as Error).message)
    }
    if (f.type !== 'snapshot' || frames.length !== 1) throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
    return f
  }

  /** The newest consistent state: the snapshot, then the deltas that follow it without a gap or a damaged record. */
  async restore(): Promise<Restored> {
    const corrupt: CheckpointCorruptError[] = []
    const snapKey = [this.group, 'snapshot']
    const snapBytes = await this.store.load(snapKey)
    if (!snapBytes) return { snapshot: undefined, deltas: [], corrupt }
    let snapshot: SnapshotFrame
    try {
      snapshot = this.readSnapshot(snapKey, snapBytes)
    } catch (err) {
      corrupt.push(err as CheckpointCorruptError)
      return { snapshot: undefined, deltas: [], corrupt }
    }
    this.snapshotBytes = snapBytes.length
    this.logBytes = 0
    const deltas: DeltaFrame[] = []
    let expect = snapshot.seq + 1
    for (const { key, value } of await this.store.loadRange([this.group, 'log'])) {
      try {
        const { frames } = this.unwrap(key, value)
        for (const frame of frames) {
          const f = readFrame(frame)
          if (f.type !== 'delta') throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
          if (f.seq < expect) continue // older than the snapshot: left over from before a compaction
          if (f.seq !== expect || f.epoch !== snapshot.epoch) throw new CheckpointCorruptError(key, `seq ${f.seq} of epoch ${f.epoch} does not follow ${expect - 1}`)
          deltas.push(f)
          expect++
        }
        this.logBytes += value.length
      } catch (err) {
        corrupt.push(err instanceof CheckpointCorruptError ? err : new CheckpointCorruptError(key, err instanceof ProtocolError ? err.message : String(err)))
        break
      }
    }
    this.durable = { epoch: snapshot.epoch, seq: expect - 1 }
    return { snapshot, deltas, corrupt }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void
  let reject!: (e: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => undefined) // a failure is reported to whoever awaits; unawaited ones are not unhandled
  return { promise, resolve, reject }
}
