/**
 * The active's recent delta frames, kept for catching a standby up without a
 * snapshot (bounded by {@link LogLimits}), and the running byte count of every
 * frame since the session began, so a standby's queue — what was sent to it
 * and not acknowledged — is one subtraction.
 */

/** How much history the active keeps to catch a standby up without a snapshot. */
export interface LogLimits {
  maxFrames: number
  maxBytes: number
}
export const DEFAULT_LOG: LogLimits = { maxFrames: 1024, maxBytes: 32 * 1024 * 1024 }

export class FrameLog {
  private readonly frames: { seq: number; frame: Uint8Array }[] = []
  private head = 0
  private bytes = 0
  /** Bytes of the frames (start, start + i], at index i − countsFrom. */
  private counts: number[] = [0]
  private countsFrom: number
  private last: number

  constructor(start: number, private readonly limits: LogLimits = DEFAULT_LOG) {
    this.countsFrom = start
    this.last = start
  }

  /** Adds frame `seq` (the one after the last). */
  push(seq: number, frame: Uint8Array): void {
    this.counts.push(this.countAt(seq - 1) + frame.length)
    this.last = seq
    this.frames.push({ seq, frame })
    this.bytes += frame.length
    while (this.frames.length - this.head > this.limits.maxFrames || (this.bytes > this.limits.maxBytes && this.frames.length - this.head > 1)) {
      this.bytes -= (this.frames[this.head] as { frame: Uint8Array }).frame.length
      this.frames[this.head++] = undefined as never
    }
    if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames.splice(0, this.head)
      this.head = 0
    }
  }

  /** The frames after `seq`, or undefined when the log no longer reaches back that far. */
  after(seq: number): Uint8Array[] | undefined {
    if (seq === this.last) return []
    const first = this.frames[this.head]
    if (!first || first.seq > seq + 1) return undefined
    const out: Uint8Array[] = []
    for (let i = this.head + (seq + 1 - first.seq); i < this.frames.length; i++) out.push((this.frames[i] as { frame: Uint8Array }).frame)
    return out
  }

  /** Bytes of the frames after `seq` up to the last. */
  bytesAfter(seq: number): number {
    return this.countAt(this.last) - this.countAt(seq)
  }

  /** Byte counts at or before `seq` will not be asked for again. */
  forgetCountsTo(seq: number): void {
    const drop = seq - this.countsFrom
    if (drop > 1024 && drop * 2 > this.counts.length) {
      this.counts.splice(0, drop)
      this.countsFrom = seq
    }
  }

  private countAt(seq: number): number {
    return this.counts[Math.max(0, seq - this.countsFrom)] ?? 0
  }
}
