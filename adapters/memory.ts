/**
 * In-process transport: every `MemoryTransport` joined to one `MemoryNetwork`
 * sees the others as peers. With `delivery: 'manual'` and a seeded `random`, it
 * is also the simulation harness: frames wait in a queue until the test
 * delivers them — in order, in a seeded random order, dropped, duplicated —
 * and links can be cut and healed, or a node killed without a goodbye.
 */
import type { PeerId, Random, Transport, TransportHandler } from '../src/index.js'
import { ConfigError, TransportError, defaultRandom, randomId } from '../src/index.js'

export interface MemoryNetworkOptions {
  /** `'auto'` (default) delivers in a microtask, in order; `'manual'` waits for {@link MemoryNetwork.deliverAll} / {@link MemoryNetwork.step}. */
  delivery?: 'auto' | 'manual'
  /** Seeded source for ids, loss, duplication and reordering. */
  random?: Random
  /** Probability that a frame is lost (default 0). */
  loss?: number
  /** Probability that a frame is delivered twice (default 0). */
  duplicate?: number
  /** When true, {@link MemoryNetwork.step} may deliver frames of one link out of order (default false). */
  reorder?: boolean
}

/** A frame or a link event in flight on a {@link MemoryNetwork}, as {@link MemoryNetwork.drop} sees it. */
export type Envelope =
  | { kind: 'data'; from: PeerId; to: PeerId; data: Uint8Array }
  | { kind: 'up' | 'down'; from: PeerId; to: PeerId; reason?: 'closed' | 'lost' }

/** A set of in-process transports that can reach each other. */
export class MemoryNetwork {
  private readonly members = new Map<PeerId, MemoryTransport>()
  private readonly cut = new Set<string>()
  private queue: Envelope[] = []
  private scheduled = false
  private readonly random: Random
  /** Frames handed to {@link MemoryNetwork} so far (for tests and benchmarks). */
  sent = 0
  /** Bytes handed to the network so far. */
  bytes = 0

  constructor(private readonly options: MemoryNetworkOptions = {}) {
    this.random = options.random ?? defaultRandom
  }

  /** A new transport on this network (its peer id is random unless given). */
  join(id: PeerId = randomId(this.random, 8)): MemoryTransport {
    if (this.members.has(id)) throw new ConfigError(`MemoryNetwork: peer id "${id}" is taken`)
    const t = new MemoryTransport(this, id)
    this.members.set(id, t)
    return t
  }

  /** Frames and peer events waiting to be delivered. */
  get pending(): number {
    return this.queue.length
  }

  /** Delivers everything queued, including what deliveries queue, up to `limit` envelopes. Returns how many. */
  deliverAll(limit = 1_000_000): number {
    let n = 0
    while (this.queue.length && n < limit) {
      const batch = this.queue
      this.queue = []
      for (const e of batch) {
        this.dispatch(e)
        n++
      }
    }
    return n
  }

  /** Delivers one queued envelope, chosen by the seeded random source (per-link order kept unless `reorder`). */
  step(): boolean {
    if (!this.queue.length) return false
    let i = Math.floor(this.random() * this.queue.length)
    if (!this.options.reorder) {
      const pick = this.queue[i] as Envelope
      i = this.queue.findIndex((e) => e.from === pick.from && e.to === pick.to)
    }
    const [e] = this.queue.splice(i, 1)
    this.dispatch(e as Envelope)
    return true
  }

  /** Drops queued envelopes matching `pred` (all when omitted). Returns how many. */
  drop(pred: (e: Envelope) => boolean = () => true): number {
    const before = this.queue.length
    this.queue = this.queue.filter((e) => !pred(e))
    return before - this.queue.length
  }

  /** Cuts the link between two peers: frames between them are lost, each sees the other go down. */
  partition(a: PeerId, b: PeerId): void {
    if (this.cut.has(key(a, b))) return
    this.cut.add(key(a, b))
    this.drop((e) => (e.from === a && e.to === b) || (e.from === b && e.to === a))
    if (this.isOpen(a) && this.isOpen(b)) {
      this.enqueue({ kind: 'down', from: b, to: a, reason: 'lost' })
      this.enqueue({ kind: 'down', from: a, to: b, reason: 'lost' })
    }
  }

  /** Restores a link cut by {@link MemoryNetwork.partition}; both sides see the other come up. */
  heal(a: PeerId, b: PeerId): void {
    if (!this.cut.delete(key(a, b))) return
    if (this.isOpen(a) && this.isOpen(b)) {
      this.enqueue({ kind: 'up', from: b, to: a })
      this.enqueue({ kind: 'up', from: a, to: b })
    }
  }

  /** Kills a peer abruptly: no goodbye, its queued frames are lost, the others see it as lost. */
  kill(id: PeerId): void {
    const t = this.members.get(id)
    if (!t) return
    this.drop((e) => e.to === id || e.from === id)
    this.members.delete(id)
    t.markDead()
    for (const other of this.openMembers()) this.enqueue({ kind: 'down', from: id, to: other.id, reason: 'lost' })
  }

  /** @internal */
  opened(t: MemoryTransport): void {
    for (const other of this.openMembers()) {
      if (other === t || this.cut.has(key(t.id, other.id))) continue
      this.enqueue({ kind: 'up', from: other.id, to: t.id })
      this.enqueue({ kind: 'up', from: t.id, to: other.id })
    }
  }

  /** @internal */
  closed(t: MemoryTransport): void {
    this.members.delete(t.id)
    this.drop((e) => e.to === t.id)
    for (const other of this.openMembers())
      if (!this.cut.has(key(t.id, other.id))) this.enqueue({ kind: 'down', from: t.id, to: other.id, reason: 'closed' })
  }

  /** @internal */
  transmit(from: PeerId, data: Uint8Array, to?: PeerId): void {
    this.sent++
    this.bytes += data.length
    const targets = to === undefined ? [...this.openMembers()].filter((m) => m.id !== from).map((m) => m.id) : [to]
    for (const dest of targets) {
      if (!this.isOpen(dest) || this.cut.has(key(from, dest))) continue
      if (this.options.loss && this.random() < this.options.loss) continue
      // A tight copy, as a wire would deliver (Buffer.prototype.slice would share memory).
      const copy = new Uint8Array(data)
      this.enqueue({ kind: 'data', from, to: dest, data: copy })
      if (this.options.duplicate && this.random() < this.options.duplicate) this.enqueue({ kind: 'data', from, to: dest, data: copy })
    }
  }

  private *openMembers(): IterableIterator<MemoryTransport> {
    for (const m of this.members.values()) if (m.isOpen) yield m
  }

  private isOpen(id: PeerId): boolean {
    return this.members.get(id)?.isOpen ?? false
  }

  private enqueue(e: Envelope): void {
    this.queue.push(e)
    if (this.options.delivery === 'manual' || this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      this.deliverAll()
    })
  }

  private dispatch(e: Envelope): void {
    const t = this.members.get(e.to)
    if (!t?.isOpen) return
    if (e.kind === 'data') {
      if (this.cut.has(key(e.from, e.to))) return
      t.deliver(e.from, e.data)
    } else if (e.kind === 'up') t.handler?.peerUp(e.from)
    else t.handler?.peerDown(e.from, e.reason ?? 'closed')
  }
}

function key(a: PeerId, b: PeerId): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`
}

/** One end on a {@link MemoryNetwork}. */
export class MemoryTransport implements Transport {
  handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(
    private readonly network: MemoryNetwork,
    readonly id: PeerId,
  ) {}

  get isOpen(): boolean {
    return this.state === 'open'
  }

  open(handler: TransportHandler): void {
    if (this.state !== 'new') throw new TransportError(`MemoryTransport ${this.id}: open() was called twice; a transport opens once (make a new one to rejoin)`)
    this.handler = handler
    this.state = 'open'
    this.network.opened(this)
  }

  send(data: Uint8Array, to?: PeerId): void {
    if (this.state !== 'open') return
    this.network.transmit(this.id, data, to)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    const wasOpen = this.state === 'open'
    this.state = 'closed'
    if (wasOpen) this.network.closed(this)
  }

  /** @internal */
  deliver(from: PeerId, data: Uint8Array): void {
    try {
      this.handler?.message(from, data)
    } catch (err) {
      this.handler?.error(err as Error)
    }
  }

  /** Disappears without a goodbye, as a crash would: peers see it lost. */
  abort(): void {
    this.network.kill(this.id)
  }

  /** @internal */
  markDead(): void {
    this.state = 'closed'
  }
}

/** Two connected transports with auto delivery: the quickest way to try Understudy in one process. */
export function memoryPair(options: MemoryNetworkOptions = {}): [MemoryTransport, MemoryTransport, MemoryNetwork] {
  const net = new MemoryNetwork(options)
  return [net.join('a'), net.join('b'), net]
}
