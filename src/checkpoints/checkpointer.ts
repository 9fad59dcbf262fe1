import { ConfigError, ProtocolError } from '../errors.js'
import { realClock, type Clock } from '../clock.js'
import type { DeltaFrame, SnapshotFrame } from '../codec/frames.js'
import { COPIES, CheckpointCorruptError, POS_DIGITS, SEQ_DIGITS, SNAPSHOT_NAME, crc32, keyId, newer, pickSnapshot, readRecordFrame, readSnapshotRecord, unwrapRecord, wrapRecord, type SnapshotEntry } from './records.js'
import type { CheckpointStore } from './store.js'

export { CheckpointCorruptError, crc32 } from './records.js'

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
    const record = wrapRecord(this.crc, epoch, seq, [frame])
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
    const record = wrapRecord(this.crc, first.epoch, first.seq, batch.map((w) => w.frame))
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
    const record = wrapRecord(this.crc, epoch, seq, [frame])
    return this.queue(epoch, seq, () => this.store.save([this.group, 'saved', name], record))
  }

  /** The snapshot saved under `name`, or undefined. */
  async loadNamed(name: string): Promise<SnapshotFrame | undefined> {
    const key = [this.group, 'saved', name]
    const bytes = await this.store.load(key)
    return bytes && readSnapshotRecord(this.crc, key, bytes)
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
    const picked = pickSnapshot(this.crc, entries, corrupt)
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
        const { epoch, seq, frames } = unwrapRecord(this.crc, key, value)
        if (key.length !== 3 || key[2] !== String(seq).padStart(SEQ_DIGITS, '0')) throw new CheckpointCorruptError(key, `holds a record of seq ${seq}, its key says ${key.slice(2).join('/')}`)
        const fs = frames.map((frame, n) => {
          const f = readRecordFrame(key, frame)
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
