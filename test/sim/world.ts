/**
 * The simulated world: one seeded scheduler decides every interleaving. Time
 * is virtual; every timer, frame delivery and storage await point of every
 * node is an event on one queue, ordered by due time and, at equal times, by
 * a seeded draw. A node's events run through its {@link NodeClock}, so a
 * paused node does nothing (its due events wait, in order, until it resumes
 * in the middle of whatever it was doing) and a crashed node's pending events
 * and promises are simply never run again.
 */
import type { Clock, PeerId, Random, Transport, TransportHandler } from 'understudy-ha'

interface SimEvent {
  at: number
  /** Seeded tie-break among events due at the same time. */
  draw: number
  order: number
  fn: () => void
  cancelled: boolean
}

/** A binary heap of events by (at, draw, order). */
class EventQueue {
  private heap: SimEvent[] = []
  get size(): number {
    return this.heap.length
  }
  peek(): SimEvent | undefined {
    return this.heap[0]
  }
  push(e: SimEvent): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i] as SimEvent, h[p] as SimEvent)) break
      ;[h[i], h[p]] = [h[p] as SimEvent, h[i] as SimEvent]
      i = p
    }
  }
  pop(): SimEvent | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length && last) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l] as SimEvent, h[m] as SimEvent)) m = l
        if (r < h.length && before(h[r] as SimEvent, h[m] as SimEvent)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m] as SimEvent, h[i] as SimEvent]
        i = m
      }
    }
    return top
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && (a.draw < b.draw || (a.draw === b.draw && a.order < b.order)))
}

/** The scheduler and the world clock. */
export class World {
  private readonly queue = new EventQueue()
  private time = 0
  private order = 0
  /** Events run so far. */
  steps = 0

  constructor(readonly random: Random) {}

  now(): number {
    return this.time
  }

  /** Runs `fn` at `now + ms`; returns the event, which `cancel` accepts. */
  schedule(ms: number, fn: () => void): SimEvent {
    const e: SimEvent = { at: this.time + Math.max(0, ms), draw: this.random(), order: ++this.order, fn, cancelled: false }
    this.queue.push(e)
    return e
  }

  cancel(e: unknown): void {
    if (e && typeof e === 'object') (e as SimEvent).cancelled = true
  }

  /** Runs the next due event, if any is due by `until`. Returns false when none is. */
  step(until: number): boolean {
    for (;;) {
      const e = this.queue.peek()
      if (!e || e.at > until) {
        this.time = Math.max(this.time, Math.min(until, e?.at ?? until))
        return false
      }
      this.queue.pop()
      if (e.cancelled) continue
      this.time = e.at
      this.steps++
      e.fn()
      return true
    }
  }

  /** A uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1))
  }

  chance(p: number): boolean {
    return this.random() < p
  }
}

/**
 * One incarnation's view of time: timers fire a little late (0–`jitterMs`),
 * as real ones do; while paused, whatever falls due waits and runs, in order,
 * on resume; once dead, nothing of it runs again.
 */
export class NodeClock implements Clock {
  private paused = false
  private dead = false
  private deferred: (() => void)[] = []
  /** Exceptions thrown by this node's callbacks: a crash of the real process. */
  readonly thrown: Error[] = []

  constructor(
    private readonly world: World,
    private readonly jitterMs = 1,
  ) {}

  now(): number {
    return this.world.now()
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return this.world.schedule(ms + this.world.random() * this.jitterMs, () => this.run(fn))
  }

  clearTimeout(handle: unknown): void {
    this.world.cancel(handle)
  }

  /** Runs `fn` as this node, now or when it resumes; never once it is dead. */
  run(fn: () => void): void {
    if (this.dead) return
    if (this.paused) {
      this.deferred.push(fn)
      return
    }
    try {
      fn()
    } catch (error) {
      this.thrown.push(error as Error)
    }
  }

  /** An await point: resolves after a short, seeded delay, as this node (so a pause or a crash can land on it). */
  gate(maxMs = 2): Promise<void> {
    // Now and then storage is slow (a busy disk, a lease store under load): up to 120 ms.
    const ms = this.world.chance(0.02) ? this.world.random() * 120 : this.world.random() * maxMs
    return new Promise((resolve) => {
      this.world.schedule(ms, () => this.run(resolve))
    })
  }

  get isPaused(): boolean {
    return this.paused
  }

  get isDead(): boolean {
    return this.dead
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused || this.dead) return
    this.paused = false
    const due = this.deferred
    this.deferred = []
    // What fell due while stopped runs at once, in the order it fell due.
    for (const fn of due) this.world.schedule(0, () => this.run(fn))
  }

  kill(): void {
    this.dead = true
    this.deferred = []
  }
}

/** Fault settings of the simulated network. */
export interface NetworkFaults {
  /** Probability a frame is lost. */
  drop: number
  /** Probability a frame is delivered twice. */
  duplicate: number
  /** When true, frames of one link may overtake each other. */
  reorder: boolean
  /** Largest one-way delay, ms. */
  maxDelayMs: number
}

const CALM: NetworkFaults = { drop: 0, duplicate: 0, reorder: false, maxDelayMs: 2 }

/** A network of simulated transports; frames travel as world events. */
export class SimNetwork {
  private readonly ends = new Map<PeerId, SimTransport>()
  private readonly cut = new Set<string>()
  private readonly lastAt = new Map<string, number>()
  /** When peers will have seen a crashed or closed end of this id go down: its next incarnation comes up only after. */
  private readonly downBy = new Map<PeerId, number>()
  faults: NetworkFaults = { ...CALM }
  /** Called with every frame handed to the network (the differential codec check). */
  onFrame: ((from: PeerId, data: Uint8Array) => void) | undefined

  constructor(private readonly world: World) {}

  /** A new transport for `id`, whose events run on `clock`. */
  join(id: PeerId, clock: NodeClock): SimTransport {
    const t = new SimTransport(this, id, clock)
    this.ends.set(id, t)
    return t
  }

  calm(): void {
    this.faults = { ...CALM }
  }

  /** Cuts every link of `id`; each side sees the other go down a little later. */
  isolate(id: PeerId): void {
    for (const other of this.ends.keys()) if (other !== id) this.setCut(id, other, true)
  }

  /** Heals every link of `id`. */
  rejoin(id: PeerId): void {
    for (const other of this.ends.keys()) if (other !== id) this.setCut(id, other, false)
  }

  healAll(): void {
    for (const k of [...this.cut]) {
      const [a, b] = k.split('\u0000') as [string, string]
      this.setCut(a, b, false)
    }
  }

  isCut(a: PeerId, b: PeerId): boolean {
    return this.cut.has(linkKey(a, b))
  }

  private setCut(a: PeerId, b: PeerId, cut: boolean): void {
    const k = linkKey(a, b)
    if (cut === this.cut.has(k)) return
    if (cut) this.cut.add(k)
    else this.cut.delete(k)
    const ta = this.ends.get(a)
    const tb = this.ends.get(b)
    if (!ta?.isOpen || !tb?.isOpen) return
    // A broken connection is noticed after a while; a healed one is redialled.
    const delay = this.world.int(1, cut ? 200 : 50)
    this.world.schedule(delay, () => {
      if (this.cut.has(k) !== cut || !ta.isOpen || !tb.isOpen) return
      ta.notify(b, !cut)
      tb.notify(a, !cut)
    })
  }

  /** @internal */
  opened(t: SimTransport): void {
    for (const other of this.ends.values()) {
      if (other === t || !other.isOpen || this.isCut(t.id, other.id)) continue
      const delay = Math.max(this.world.int(1, 20), (this.downBy.get(t.id) ?? 0) - this.world.now() + 1)
      this.world.schedule(delay, () => {
        if (!t.isOpen || !other.isOpen || this.isCut(t.id, other.id)) return
        other.notify(t.id, true)
        t.notify(other.id, true)
      })
    }
  }

  /** @internal The end went away: a goodbye (`closed`) or a crash (`lost`). */
  gone(t: SimTransport, reason: 'closed' | 'lost'): void {
    if (this.ends.get(t.id) === t) this.ends.delete(t.id)
    for (const other of this.ends.values()) {
      if (!other.isOpen) continue
      const delay = reason === 'closed' ? this.world.int(1, 5) : this.world.int(1, 50)
      this.downBy.set(t.id, Math.max(this.downBy.get(t.id) ?? 0, this.world.now() + delay))
      this.world.schedule(delay, () => other.notify(t.id, false, reason))
    }
  }

  /** @internal */
  transmit(from: SimTransport, data: Uint8Array, to?: PeerId): void {
    this.onFrame?.(from.id, data)
    const targets = to === undefined ? [...this.ends.values()].filter((e) => e !== from && e.isOpen) : [this.ends.get(to)].filter((e): e is SimTransport => !!e?.isOpen)
    for (const dest of targets) {
      if (!from.knows(dest.id) || this.isCut(from.id, dest.id)) continue
      if (this.world.chance(this.faults.drop)) continue
      const copies = this.world.chance(this.faults.duplicate) ? 2 : 1
      for (let c = 0; c < copies; c++) {
        const link = `${from.id}>${dest.id}`
        let at = this.world.now() + this.world.random() * this.faults.maxDelayMs
        if (!this.faults.reorder) at = Math.max(at, this.lastAt.get(link) ?? 0)
        this.lastAt.set(link, at)
        const bytes = new Uint8Array(data)
        this.world.schedule(at - this.world.now(), () => {
          if (this.isCut(from.id, dest.id)) return
          dest.deliver(from.id, bytes)
        })
      }
    }
  }
}

function linkKey(a: PeerId, b: PeerId): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`
}

/** One node's end of the simulated network: its events run as that node. */
export class SimTransport implements Transport {
  private handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'
  /** Peers this end has seen come up (and not go down): frames go only to them, as over connections. */
  private readonly up = new Set<PeerId>()

  constructor(
    private readonly network: SimNetwork,
    readonly id: PeerId,
    private readonly clock: NodeClock,
  ) {}

  get isOpen(): boolean {
    return this.state === 'open' && !this.clock.isDead
  }

  knows(peer: PeerId): boolean {
    return this.up.has(peer)
  }

  open(handler: TransportHandler): void {
    this.handler = handler
    this.state = 'open'
    this.network.opened(this)
  }

  send(data: Uint8Array, to?: PeerId): void {
    if (this.state !== 'open') return
    this.network.transmit(this, data, to)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.network.gone(this, 'closed')
  }

  /** The process died: peers see the connection drop. */
  crash(): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.network.gone(this, 'lost')
  }

  /** @internal */
  notify(peer: PeerId, up: boolean, reason: 'closed' | 'lost' = 'lost'): void {
    if (up === this.up.has(peer)) return
    if (up) this.up.add(peer)
    else this.up.delete(peer)
    this.clock.run(() => {
      if (this.state !== 'open') return
      if (up) this.handler?.peerUp(peer)
      else this.handler?.peerDown(peer, reason)
    })
  }

  /** @internal */
  deliver(from: PeerId, data: Uint8Array): void {
    if (!this.up.has(from)) return
    this.clock.run(() => {
      if (this.state === 'open') this.handler?.message(from, data)
    })
  }
}
