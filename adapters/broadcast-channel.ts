/**
 * BroadcastChannel transport: tabs and workers of one origin in a browser, and
 * Node's `worker_threads` (Node's global BroadcastChannel).
 *
 * A channel has no notion of peers, does not buffer for late joiners and never
 * says when the other end dies, so this adapter adds a small envelope: each end
 * announces itself (`hello`, answered by `here`), says `bye` when it closes,
 * pings every `pingMs`, and declares a peer lost after `timeoutMs` of silence
 * (a crashed tab or a terminated worker). In a page it also says goodbye on
 * `pagehide`, so a closed tab is noticed at once rather than after the
 * timeout. Loss is left to the replication layer.
 */
import { ConfigError, TransportError, defaultRandom, randomId, realClock, type Clock, type PeerId, type Random, type Transport, type TransportHandler } from '../src/index.js'

export interface BroadcastChannelOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** How often to ping, ms (default 250). */
  pingMs?: number
  /** Silence after which a peer is declared lost, ms (default 1000; must exceed pingMs). */
  timeoutMs?: number
  clock?: Clock
  random?: Random
  /** The BroadcastChannel constructor (default: the global one). */
  BroadcastChannel?: new (name: string) => BroadcastChannel
}

const TAG = 'understudy/bc/1'
type Control = 'hello' | 'here' | 'bye' | 'ping'
/** Control messages (rare) are small objects. */
interface Envelope {
  u: typeof TAG
  k: Control
  /** Sender id. */
  f: PeerId
  /** Sender incarnation: changes when a peer with the same id restarts. */
  i: string
  /** Recipient, for unicast. */
  t?: PeerId
}

function isEnvelope(m: unknown): m is Envelope {
  if (typeof m !== 'object' || m === null) return false
  const e = m as Partial<Envelope>
  return (
    e.u === TAG &&
    typeof e.f === 'string' &&
    typeof e.i === 'string' &&
    (e.k === 'hello' || e.k === 'here' || e.k === 'bye' || e.k === 'ping') &&
    (e.t === undefined || typeof e.t === 'string')
  )
}

/**
 * Frames travel as bare bytes, which structured clone copies fastest:
 * `0xB1 | fromLength | from | toLength | to | frame` (ids as UTF-8, at most
 * 255 bytes; toLength 0 means broadcast).
 */
const DATA = 0xb1
const utf8 = new TextEncoder()
const text = new TextDecoder()

/** A transport over the BroadcastChannel `name`; every end on the same name is a peer. */
export function broadcastChannel(name: string, options: BroadcastChannelOptions = {}): BroadcastChannelTransport {
  return new BroadcastChannelTransport(name, options)
}

export class BroadcastChannelTransport implements Transport {
  readonly id: PeerId
  private readonly incarnation: string
  private readonly clock: Clock
  private readonly pingMs: number
  private readonly timeoutMs: number
  private readonly peers = new Map<PeerId, { inc: string; seen: number }>()
  /** Encoded data-message headers, per recipient ('' = everyone). */
  private readonly headers = new Map<PeerId, Uint8Array>()
  private channel: BroadcastChannel | undefined
  private handler: TransportHandler | undefined
  private timer: unknown
  private state: 'new' | 'open' | 'closed' = 'new'
  /** In a page: say goodbye when it is hidden for good (closed, navigated away), hello again if restored from the back/forward cache. */
  private readonly onPageHide = () => this.post('bye')
  private readonly onPageShow = (e: Event) => {
    if ((e as Event & { persisted?: boolean }).persisted) this.post('hello')
  }

  constructor(
    readonly name: string,
    private readonly options: BroadcastChannelOptions = {},
  ) {
    const random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(random)
    this.incarnation = randomId(random, 8)
    this.clock = options.clock ?? realClock
    this.pingMs = options.pingMs ?? 250
    this.timeoutMs = options.timeoutMs ?? 1000
    if (!(this.timeoutMs > this.pingMs)) throw new ConfigError(`broadcastChannel: timeoutMs (${this.timeoutMs}) must exceed pingMs (${this.pingMs})`)
  }

  open(handler: TransportHandler): void {
    if (this.state !== 'new') throw new TransportError('broadcastChannel: open() was called twice; a transport opens once (after close(), make a new one with broadcastChannel(…))')
    const BC = this.options.BroadcastChannel ?? globalThis.BroadcastChannel
    if (typeof BC !== 'function') throw new ConfigError('broadcastChannel: this runtime has no BroadcastChannel; use another transport here (webSocket, tcp)')
    this.handler = handler
    this.state = 'open'
    const channel = new BC(this.name)
    this.channel = channel
    channel.onmessage = (e: MessageEvent) => (e.data instanceof Uint8Array ? this.receiveData(e.data) : this.receive(e.data))
    channel.onmessageerror = () => handler.error(new TransportError(`broadcastChannel "${this.name}": a message could not be deserialized`))
    this.post('hello')
    this.tick()
    if (typeof globalThis.addEventListener === 'function' && 'onpagehide' in globalThis) {
      globalThis.addEventListener('pagehide', this.onPageHide)
      globalThis.addEventListener('pageshow', this.onPageShow)
    }
  }

  send(data: Uint8Array, to?: PeerId): void {
    if (this.state !== 'open') return
    let head = this.headers.get(to ?? '')
    if (!head) {
      const from = utf8.encode(this.id)
      const dest = utf8.encode(to ?? '')
      if (from.length > 255 || dest.length > 255) throw new ConfigError('broadcastChannel: peer ids are limited to 255 bytes')
      head = new Uint8Array([DATA, from.length, ...from, dest.length, ...dest])
      this.headers.set(to ?? '', head)
    }
    // One tight buffer: structured clone would otherwise copy a view's whole underlying buffer.
    const msg = new Uint8Array(head.length + data.length)
    msg.set(head)
    msg.set(data, head.length)
    try {
      this.channel?.postMessage(msg)
    } catch (err) {
      this.handler?.error(err as Error)
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    if (this.state === 'open') this.post('bye')
    this.stop()
  }

  /** Disappears without a goodbye, as a crashed tab or terminated worker would (for tests and simulations). */
  abort(): void {
    this.stop()
  }

  private stop(): void {
    this.state = 'closed'
    this.clock.clearTimeout(this.timer)
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this.onPageHide)
      globalThis.removeEventListener('pageshow', this.onPageShow)
    }
    if (this.channel) {
      this.channel.onmessage = null
      this.channel.close()
    }
    this.channel = undefined
    this.peers.clear()
  }

  private post(k: Control, t?: PeerId): void {
    const e: Envelope = { u: TAG, k, f: this.id, i: this.incarnation }
    if (t !== undefined) e.t = t
    try {
      this.channel?.postMessage(e)
    } catch (err) {
      this.handler?.error(err as Error)
    }
  }

  private tick(): void {
    this.timer = this.clock.setTimeout(() => {
      if (this.state !== 'open') return
      const now = this.clock.now()
      for (const [peer, p] of this.peers)
        if (now - p.seen > this.timeoutMs) {
          this.peers.delete(peer)
          this.handler?.peerDown(peer, 'lost')
        }
      this.post('ping')
      this.tick()
    }, this.pingMs)
  }

  private receive(m: unknown): void {
    const h = this.handler
    if (this.state !== 'open' || !h) return
    if (!isEnvelope(m)) {
      h.error(new TransportError(`broadcastChannel "${this.name}": ignored a message that is not an Understudy frame`))
      return
    }
    if ((m.t !== undefined && m.t !== this.id) || m.f === this.id) return
    if (m.k === 'bye') {
      if (this.peers.delete(m.f)) h.peerDown(m.f, 'closed')
      return
    }
    this.heard(m.f, m.i, m.k)
  }

  /** A data message: parse the header, ignore what is addressed to others, deliver the frame. */
  private receiveData(b: Uint8Array): void {
    const h = this.handler
    if (this.state !== 'open' || !h) return
    const fromLen = b[1] ?? 0
    const toAt = 2 + fromLen
    const toLen = b[toAt] ?? 0
    const body = toAt + 1 + toLen
    if (b[0] !== DATA || b.length < body || fromLen === 0) {
      h.error(new TransportError(`broadcastChannel "${this.name}": ignored bytes that are not an Understudy data message`))
      return
    }
    if (toLen && text.decode(b.subarray(toAt + 1, body)) !== this.id) return
    const from = text.decode(b.subarray(2, toAt))
    if (from === this.id) return
    const p = this.peers.get(from)
    if (p) p.seen = this.clock.now()
    else {
      // Data from a peer whose hello we missed: it is up; its incarnation is learnt from its next control message.
      this.peers.set(from, { inc: '', seen: this.clock.now() })
      h.peerUp(from)
      this.post('here', from)
    }
    h.message(from, b.subarray(body))
  }

  private heard(from: PeerId, inc: string, k: Control): void {
    const h = this.handler as TransportHandler
    const m = { f: from, i: inc, k }
    const known = this.peers.get(m.f)
    if (known && known.inc === '') known.inc = m.i
    else if (known && known.inc !== m.i) {
      // The same id came back as a new incarnation: it restarted without us noticing.
      this.peers.delete(m.f)
      h.peerDown(m.f, 'lost')
    }
    const p = this.peers.get(m.f)
    if (p) p.seen = this.clock.now()
    else {
      this.peers.set(m.f, { inc: m.i, seen: this.clock.now() })
      h.peerUp(m.f)
      if (m.k !== 'here') this.post('here', m.f)
    }
  }
}
