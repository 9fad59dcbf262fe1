import { ConfigError, ProtocolError, UnderstudyError } from '../errors.js'
import { realClock, type Clock } from '../clock.js'
import { CborError, CborReader } from '../codec/reader.js'
import { CborWriter } from '../codec/writer.js'
import { readFrame, type DeltaFrame, type SnapshotFrame } from '../codec/frames.js'
import type { CheckpointStore } from './store.js'

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

/** CRC-32 (IEEE), four bytes per step; `crc` continues a checksum over bytes that came before. */
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

let writer: CborWriter | undefined
let reader: CborReader | undefined
const SEQ_DIGITS = 12
/** Snapshot keys: `[group, 'snapshot', '<epoch>-<seq>-<copy>']`, both numbers 16 digits, so key order is position order. */
const POS_DIGITS = 16
const SNAPSHOT_NAME = /^(\d{16})-(\d{16})-([ab])$/
const COPIES = ['a', 'b'] as const

/** A snapshot record found in the store, and the position its key names (none for the one-key layout of 0.1.0). */
interface SnapshotEntry {
  key: string[]
  value: Uint8Array
  at: { epoch: number; seq: number } | undefined
}

const keyId = (key: readonly string[]) => key.join('\u0000')
const newer = (a: { epoch: number; seq: number }, b: { epoch: number; seq: number }) => a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq)

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
 * CheckpointStore under `[group, …]`:
 *
 * - `[group, 'snapshot', '<epoch>-<seq>-a']` and `…-b`: the snapshot at
 *   (epoch, seq), twice. Each record holds one snapshot frame.
 * - `[group, 'log', '<first seq>']`: one or more consecutive delta frames.
 * - `[group, 'saved', name]`: named snapshots (`saveNamed`).
 *
 * Every record is the wire frames themselves, wrapped with the epoch, the
 * first seq and a CRC-32 over the frames.
 *
 * A new snapshot is written as copy `a`, then copy `b`; only once both are
 * durable are the log it covers and the older snapshot removed. So at every
 * moment each position up to the last durable one is held by two snapshot
 * records, or by a snapshot record and the older snapshot plus the log after
 * it — except positions only the log holds, once in each record.
 *
 * Restoring takes the newest snapshot record that is whole (CRC, decodes,
 * where its key says), falling back to its twin and then to an older one, and
 * replays the log records that follow it; it stops at the first log record
 * that is damaged or does not follow on, keeps everything before it, and
 * reports every unusable record it met. It never writes: a damaged record
 * stays as it was until a newer snapshot makes it unneeded.
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
  /** The snapshot records in the store, by key id; undefined until listed (by a restore, or the first snapshot write). */
  private snapshots: Map<string, string[]> | undefined

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
    const head = (writer ??= new CborWriter()).encode([epoch, seq, crc]) // 0x83, then the three numbers
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
      r = (reader ??= new CborReader()).decode(bytes)
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

  /**
   * Replaces the snapshot and clears the log (a compaction, or the first
   * checkpoint of an epoch). Batches waiting are covered by it. The snapshot is
   * written twice, one copy after the other; the log and the older snapshot
   * are removed only once both copies are durable.
   */
  writeSnapshot(epoch: number, seq: number, frame: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seq) || epoch < 0 || seq < 0)
      return Promise.reject(new ConfigError(`Checkpointer.writeSnapshot: epoch and seq must be non-negative integers, not ${String(epoch)} and ${String(seq)}`))
    const record = this.wrap(epoch, seq, [frame])
    // Sizes are counted when a write is queued (writes run in order), so compaction does not wait on the disk.
    this.snapshotBytes = record.length
    this.logBytes = 0
    const done = this.waitingDone
    this.dropWaiting()
    const name = `${String(epoch).padStart(POS_DIGITS, '0')}-${String(seq).padStart(POS_DIGITS, '0')}`
    const keys = COPIES.map((copy) => [this.group, 'snapshot', `${name}-${copy}`])
    const write = this.queue(epoch, seq, async () => {
      const known = this.snapshots ?? (await this.listSnapshots())
      for (const key of keys) {
        await this.store.save(key, record)
        known.set(keyId(key), key)
      }
      // Both copies are durable: what the older snapshot and the log held, they hold.
      await this.store.removeRange([this.group, 'log'])
      for (const [id, key] of [...known]) {
        if (keys.some((k) => keyId(k) === id)) continue
        await this.store.remove(key)
        known.delete(id)
      }
    })
    if (done) write.then(done.resolve, done.reject)
    return write
  }

  /** The snapshot records in the store (the entries, for restore; the keys are remembered for the next snapshot write). */
  private async listSnapshots(entries?: SnapshotEntry[]): Promise<Map<string, string[]>> {
    const found = entries ?? (await this.snapshotEntries())
    this.snapshots = new Map(found.map((e) => [keyId(e.key), e.key]))
    return this.snapshots
  }

  /** Every snapshot record, newest first: by the position in its key, copy `a` before `b`; the 0.1.0 key (`[group, 'snapshot']`) last. */
  private async snapshotEntries(): Promise<SnapshotEntry[]> {
    const out: SnapshotEntry[] = []
    for (const { key, value } of await this.store.loadRange([this.group, 'snapshot'])) {
      if (key.length === 2) out.push({ key, value, at: undefined })
      const m = key.length === 3 ? SNAPSHOT_NAME.exec(key[2] as string) : null
      if (m) out.push({ key, value, at: { epoch: Number(m[1]), seq: Number(m[2]) } })
    }
    return out.sort((x, y) => {
      if (!x.at || !y.at) return x.at ? -1 : y.at ? 1 : 0
      return newer(x.at, y.at) ? -1 : newer(y.at, x.at) ? 1 : (x.key[2] as string) < (y.key[2] as string) ? -1 : 1
    })
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
    const { epoch, seq, frames } = this.unwrap(key, bytes)
    if (frames.length !== 1) throw new CheckpointCorruptError(key, `holds ${frames.length} frames, not one snapshot`)
    const f = this.frame(key, frames[0] as Uint8Array)
    if (f.type !== 'snapshot') throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
    if (f.epoch !== epoch || f.seq !== seq) throw new CheckpointCorruptError(key, `its header says seq ${seq} of epoch ${epoch}, its frame seq ${f.seq} of epoch ${f.epoch}`)
    return f
  }

  private frame(key: string[], bytes: Uint8Array) {
    try {
      return readFrame(bytes)
    } catch (err) {
      throw new CheckpointCorruptError(key, (err as Error).message)
    }
  }

  /** The newest whole snapshot record, or undefined; the unusable ones met before it go to `corrupt`, saying what was restored instead. */
  private pickSnapshot(entries: SnapshotEntry[], corrupt: CheckpointCorruptError[]): { snapshot: SnapshotFrame; bytes: number } | undefined {
    const bad: { key: string[]; detail: string; at: SnapshotEntry['at'] }[] = []
    let picked: { snapshot: SnapshotFrame; bytes: number } | undefined
    const check = (e: SnapshotEntry): SnapshotFrame | undefined => {
      try {
        const f = this.readSnapshot(e.key, e.value)
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

  /**
   * The newest consistent state: the newest whole snapshot record, then the
   * deltas that follow it without a gap or a damaged record. Runs after the
   * writes already asked for, and writes nothing.
   */
  restore(): Promise<Restored> {
    const read = this.chain.then(() => this.read())
    this.chain = read.then(
      () => undefined,
      () => undefined,
    )
    return read
  }

  private async read(): Promise<Restored> {
    const corrupt: CheckpointCorruptError[] = []
    const entries = await this.snapshotEntries()
    await this.listSnapshots(entries)
    const picked = this.pickSnapshot(entries, corrupt)
    if (!picked) return { snapshot: undefined, deltas: [], corrupt }
    const { snapshot } = picked
    this.snapshotBytes = picked.bytes
    this.logBytes = 0
    const deltas: DeltaFrame[] = []
    let expect = snapshot.seq + 1
    const log = await this.store.loadRange([this.group, 'log'])
    for (let i = 0; i < log.length; i++) {
      const { key, value } = log[i] as { key: string[]; value: Uint8Array }
      let whole = false
      try {
        const { epoch, seq, frames } = this.unwrap(key, value)
        if (key.length !== 3 || key[2] !== String(seq).padStart(SEQ_DIGITS, '0')) throw new CheckpointCorruptError(key, `holds a record of seq ${seq}, its key says ${key.slice(2).join('/')}`)
        const fs = frames.map((frame, n) => {
          const f = this.frame(key, frame)
          if (f.type !== 'delta') throw new CheckpointCorruptError(key, `holds a ${f.type} frame`)
          if (f.epoch !== epoch || f.seq !== seq + n) throw new CheckpointCorruptError(key, `its header says seqs from ${seq} of epoch ${epoch}, its frame ${n} is seq ${f.seq} of epoch ${f.epoch}`)
          return f
        })
        whole = true
        for (const f of fs) {
          if (f.seq < expect) continue // older than the snapshot: left over from before a compaction
          if (f.seq !== expect || f.epoch !== snapshot.epoch) throw new CheckpointCorruptError(key, `seq ${f.seq} of epoch ${f.epoch} does not follow ${expect - 1}`)
          deltas.push(f)
          expect++
        }
        this.logBytes += value.length
      } catch (err) {
        const e = err instanceof CheckpointCorruptError ? err : new CheckpointCorruptError(key, err instanceof ProtocolError ? err.message : String(err))
        // A damaged record that ends before the snapshot (the next record starts at or before where the replay stands) held nothing needed.
        const next = log[i + 1]?.key
        if (!whole && next?.length === 3 && Number(next[2]) <= expect && Number(key[2]) < expect) {
          corrupt.push(new CheckpointCorruptError(key, e.detail, 'it held only batches older than the snapshot: nothing lost'))
          continue
        }
        corrupt.push(e)
        break
      }
    }
    this.durable = { epoch: snapshot.epoch, seq: expect - 1 }
    return { snapshot, deltas, corrupt }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
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
