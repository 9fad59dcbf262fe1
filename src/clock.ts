/**
 * All time in the core flows through a `Clock`, so tests can drive failover,
 * timeouts and races with a virtual clock instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin; monotonic for a given clock. */
  now(): number
  /** Calls `fn` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown
  /** Cancels a pending {@link Clock.setTimeout}. Unknown handles are ignored. */
  clearTimeout(handle: unknown): void
}

/** The real clock: `performance.now()` where available, else `Date.now()`. */
export const realClock: Clock = {
  now: typeof performance !== 'undefined' ? () => performance.now() : () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}

interface Timer {
  at: number
  order: number
  fn: () => void
}

/**
 * A deterministic clock for tests and simulations: time moves only when
 * {@link VirtualClock.advance} is called, and timers fire in (time, creation) order.
 */
/**
 * Times of {@link realClock} are per thread (each counts from its own start).
 * These convert one to a time every thread of the process reads alike — ms
 * since the epoch — and back, so a worker can tell the main thread when
 * something happened on its clock.
 */
export function sharedTime(t: number): number {
  return t + (globalThis.performance?.timeOrigin ?? 0)
}

/** See {@link sharedTime}. */
export function localTime(shared: number): number {
  return shared - (globalThis.performance?.timeOrigin ?? 0)
}

export class VirtualClock implements Clock {
  private time: number
  private order = 0
  private timers = new Map<number, Timer>()

  constructor(start = 0) {
    this.time = start
  }

  now(): number {
    return this.time
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.order
    this.timers.set(id, { at: this.time + Math.max(0, ms), order: id, fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number)
  }

  /** Number of timers not yet fired. */
  get pending(): number {
    return this.timers.size
  }

  /**
   * Moves time forward by `ms` without firing any timer, as a thread that was
   * busy (or frozen) that long sees it: timers due meanwhile fire at the next
   * {@link VirtualClock.advance}.
   */
  stall(ms: number): void {
    this.time += ms
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way (including
   * timers those timers schedule), each with `now()` equal to its due time.
   */
  advance(ms: number): void {
    const end = this.time + ms
    for (;;) {
      let next: [number, Timer] | undefined
      for (const entry of this.timers) {
        const t = entry[1]
        if (t.at <= end && (!next || t.at < next[1].at || (t.at === next[1].at && t.order < next[1].order))) next = entry
      }
      if (!next) break
      this.timers.delete(next[0])
      this.time = next[1].at
      next[1].fn()
    }
    this.time = end
  }
}
