import type { Clock } from '../clock.js'
import type { DeltaBody } from '../graph/wire.js'

/** What a standby decided to do with an incoming delta. */
export type DeltaVerdict = 'apply' | 'duplicate' | 'stale' | 'wait'

/**
 * The standby's side of replication: its position (epoch, seq), a bounded
 * buffer for frames that arrive early, and one outstanding resync request at a
 * time, retried on the injected clock until answered.
 */
export class Mirror {
  /** Epoch of the state this standby holds (0: nothing yet). */
  epoch = 0
  /** Last applied seq; -1 before the first snapshot. */
  seq = -1
  private readonly early = new Map<number, { epoch: number; body: DeltaBody }>()
  /** Set after a frame failed to apply: the next resync asks for a full snapshot. */
  needFull = false
  private resyncTimer: unknown
  private resyncing = false

  constructor(
    private readonly clock: Clock,
    private readonly sendResync: () => void,
    private readonly retryMs: number,
    private readonly maxEarly = 1024,
  ) {}

  get synced(): boolean {
    return this.seq >= 0
  }

  /** True while early frames wait for a gap to be filled. */
  get waiting(): boolean {
    return this.early.size > 0
  }

  /** Classifies a delta at (epoch, seq) against the current position. */
  judge(epoch: number, seq: number, body: DeltaBody): DeltaVerdict {
    if (epoch < this.epoch) return 'stale'
    if (this.synced && epoch === this.epoch) {
      if (seq <= this.seq) return 'duplicate'
      if (seq === this.seq + 1) return 'apply'
    }
    // A gap, a newer epoch, or no snapshot yet: keep it if it may fit later, and ask for what is missing.
    if (this.early.size < this.maxEarly) this.early.set(seq, { epoch, body })
    this.requestResync()
    return 'wait'
  }

  /** The buffered delta that applies next, if any (dropping ones that can no longer apply). */
  nextEarly(): DeltaBody | undefined {
    for (const [s, e] of this.early) if (s <= this.seq || e.epoch !== this.epoch) this.early.delete(s)
    const e = this.early.get(this.seq + 1)
    if (!e) return undefined
    this.early.delete(this.seq + 1)
    return e.body
  }

  /** Moves the position; a resync in flight is answered once the position has moved. */
  advance(epoch: number, seq: number): void {
    this.epoch = epoch
    this.seq = seq
    this.settleResync()
  }

  /** Asks the active for what is missing; one request at a time, re-sent every `retryMs` until answered. */
  requestResync(): void {
    if (this.resyncing) return
    this.resyncing = true
    this.sendResync()
    const retry = () => {
      if (!this.resyncing) return
      this.sendResync()
      this.resyncTimer = this.clock.setTimeout(retry, this.retryMs)
    }
    this.resyncTimer = this.clock.setTimeout(retry, this.retryMs)
  }

  private settleResync(): void {
    if (!this.resyncing) return
    this.resyncing = false
    this.clock.clearTimeout(this.resyncTimer)
  }

  /** Stops retrying (on close or promotion). */
  dispose(): void {
    this.settleResync()
    this.early.clear()
  }
}
