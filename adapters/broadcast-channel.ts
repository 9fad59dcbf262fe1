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
 *
 * Background tabs: a hidden page's timers are throttled (one wake-up a second,
 * one a minute after five minutes in Chromium), so pings sent from its timers
 * would arrive far apart and its peers would drop it although it is well. In a
 * page, the rounds (ping, silence check) are therefore paced by a tiny Web
 * Worker, whose timers are not throttled, and run on the page's thread when
 * its tick arrives: a hung or frozen page still goes silent and is declared
 * lost, as it should. Where no worker can be started (a content security
 * policy without `blob:` workers), the page paces itself with timers and says
 * so while it is hidden; its peers then allow it `throttledTimeoutMs`. A peer
 * declared lost that speaks again is reported up again before its message is
 * delivered, so the node above re-admits it.
 */
import { ConfigError, TransportError, defaultRandom, randomId, realClock, type Clock, type PeerId, type Random, type Transport, type TransportHandler } from '../src/index.js'

export interface BroadcastChannelOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** How often to ping, ms (default 250). */
  pingMs?: number
  /** Silence after which a peer is declared lost, ms (default 1000; must exceed pingMs). */
  timeoutMs?: number
  /**
   * What paces the pings and silence checks: `'worker'`, a tiny Web Worker
   * (a hidden page's timers are throttled, a worker's are not); `'timers'`,
   * the clock. Default: `'worker'` in a page with the real clock, else
   * `'timers'`; `'worker'` falls back to `'timers'` where no worker starts.
   */
  keepAlive?: 'worker' | 'timers'
  /**
   * Silence after which a peer that paces itself with timers while hidden (no
   * worker) is declared lost, ms (default 65 000: Chromium lets a page hidden
   * for five minutes wake up once a minute).
   */
  throttledTimeoutMs?: number
  /** Whether this end's page is hidden (default: `document.visibilityState === 'hidden'`; false outside a page). */
  hidden?: () => boolean
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
  /** Set while the sender is hidden and paced by throttled timers: allow it `throttledTimeoutMs`. */
  s?: 1
}

function isEnvelope(m: unknown): m is Envelope {
  if (typeof m !== 'object' || m === null) return false
  const e = m as Partial<Envelope>
  return (
    e.u === TAG &&
    typeof e.f === 'string' &&
    typeof e.i === 'string' &&
    (e.k === 'hello' || e.k === 'here' || e.k === 'bye' || e.k === 'ping') &&
    (e.t === undefined || typeof e.t === 'string') &&
    (e.s === undefined || e.s === 1)
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

/**
 * The pacer's worker: ticks every `ms` it is sent (0 stops it). Classic
 * script, started from a blob: no file to ship or bundle.
 */
const PACER = 'let t; onmessage = (e) => { clearInterval(t); if (e.data > 0) t = setInterval(() => postMessage(0), e.data) }'

/** Starts a pacing worker that calls `tick` every `ms`, or returns undefined where no worker can be started. */
function startPacer(ms: number, tick: () => void, failed: () => void): { stop(): void } | undefined {
  const g = globalThis as { Worker?: typeof Worker; Blob?: typeof Blob; URL?: typeof URL }
  if (typeof g.Worker !== 'function' || typeof g.Blob !== 'function' || typeof g.URL?.createObjectURL !== 'function') return undefined
  let url: string | undefined
  try {
    url = g.URL.createObjectURL(new g.Blob([PACER], { type: 'text/javascript' }))
    const worker = new g.Worker(url, { name: 'understudy-keepalive' })
    const revoke = () => {
      if (url) g.URL?.revokeObjectURL(url)
      url = undefined
    }
    worker.onmessage = () => {
      revoke()
      tick()
    }
    // A policy that forbids blob: workers refuses it asynchronously.
    worker.onerror = (e) => {
      e.preventDefault()
      revoke()
      worker.terminate()
      failed()
    }
    worker.postMessage(ms)
    return {
      stop: () => {
        revoke()
        worker.terminate()
      },
    }
  } catch {
    if (url) g.URL.revokeObjectURL(url)
    return undefined
  }
}

const documentHidden = (): boolean => {
  const d = (globalThis as { document?: { visibilityState?: string } }).document
  return d?.visibilityState === 'hidden'
}

/** A transport over the BroadcastChannel `name`; every end on the same name is a peer. */
export function broadcastChannel(name: string, options: BroadcastChannelOptions = {}): BroadcastChannelTransport {
  return new BroadcastChannelTransport(name, options)
}

/** The BroadcastChannel transport (see the module comment); `broadcastChannel()` builds one. */
export class BroadcastChannelTransport implements Transport {
  readonly id: PeerId
  private readonly incarnation: string
  private readonly clock: Clock
  private readonly pingMs: number
  private readonly timeoutMs: number
  private readonly throttledTimeoutMs: number
  private readonly hidden: () => boolean
  /** Known peers: incarnation, when last heard, and whether it said its pings may come late (hidden, paced by timers). */
  private readonly peers = new Map<PeerId, { inc: string; seen: number; slow: boolean }>()
  /** Encoded data-message headers, per recipient ('' = everyone). */
  private readonly headers = new Map<PeerId, Uint8Array>()
  private channel: BroadcastChannel | undefined
  private handler: TransportHandler | undefined
  private timer: unknown
  /** The pacing worker, while the rounds run from it. */
  private pacer: { stop(): void } | undefined
  /** When the last round ran (rounds queued up behind a busy thread run once). */
  private lastRound = Number.NEGATIVE_INFINITY
  private state: 'new' | 'open' | 'closed' = 'new'
  /** In a page: say goodbye when it is hidden for good (closed, navigated away), hello again if restored from the back/forward cache. */
  private readonly onPageHide = () => this.post('bye')
  private readonly onPageShow = (e: Event) => {
    if ((e as Event & { persisted?: boolean }).persisted) this.post('hello')
  }
  /** Hidden or shown: tell the peers at once whether this end's pings may now come late. */
  private readonly onVisibility = () => this.post('ping')

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
    this.throttledTimeoutMs = Math.max(this.timeoutMs, options.throttledTimeoutMs ?? 65_000)
    this.hidden = options.hidden ?? documentHidden
    if (!(this.timeoutMs > this.pingMs)) throw new ConfigError(`broadcastChannel: timeoutMs (${this.timeoutMs}) must exceed pingMs (${this.pingMs})`)
  }

  /** How the rounds are paced now: `'worker'` or `'timers'` (before `open()`: as configured). */
  get keepAlive(): 'worker' | 'timers' {
    return this.pacer ? 'worker' : 'timers'
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
    const inPage = typeof globalThis.addEventListener === 'function' && 'onpagehide' in globalThis
    const keepAlive = this.options.keepAlive ?? (inPage && this.clock === realClock ? 'worker' : 'timers')
    if (keepAlive === 'worker') this.pacer = startPacer(this.pingMs, () => this.round(), () => this.paceWithTimers())
    this.post('hello')
    if (!this.pacer) this.tick()
    if (inPage) {
      globalThis.addEventListener('pagehide', this.onPageHide)
      globalThis.addEventListener('pageshow', this.onPageShow)
      globalThis.addEventListener('visibilitychange', this.onVisibility)
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
    this.pacer?.stop()
    this.pacer = undefined
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this.onPageHide)
      globalThis.removeEventListener('pageshow', this.onPageShow)
      globalThis.removeEventListener('visibilitychange', this.onVisibility)
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
    // Paced by timers while hidden: this end's pings may come a second (or a minute) apart.
    if (k !== 'bye' && !this.pacer && this.hidden()) e.s = 1
    try {
      this.channel?.postMessage(e)
    } catch (err) {
      this.handler?.error(err as Error)
    }
  }

  /** The pacing worker could not start: the clock's timers pace the rounds. */
  private paceWithTimers(): void {
    if (!this.pacer) return
    this.pacer = undefined
    if (this.state !== 'open') return
    this.post('ping') // now paced by timers: say so while hidden
    this.tick()
  }

  private tick(): void {
    this.timer = this.clock.setTimeout(() => {
      this.round()
      if (this.state === 'open' && !this.pacer) this.tick()
    }, this.pingMs)
  }

  /** One round: declare silent peers lost, then ping. */
  private round(): void {
    if (this.state !== 'open') return
    const now = this.clock.now()
    // Ticks that queued up while this thread was busy run one round.
    if (now - this.lastRound < this.pingMs / 2) return
    this.lastRound = now
    for (const [peer, p] of this.peers)
      if (now - p.seen > (p.slow ? this.throttledTimeoutMs : this.timeoutMs)) {
        this.peers.delete(peer)
        this.handler?.peerDown(peer, 'lost')
      }
    this.post('ping')
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
    this.heard(m.f, m.i, m.k, m.s === 1)
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
      // Data from a peer whose hello we missed, or one declared lost that speaks again: it is up (again) before its message
      // is delivered; its incarnation is learnt from its next control message.
      this.peers.set(from, { inc: '', seen: this.clock.now(), slow: false })
      h.peerUp(from)
      this.post('here', from)
    }
    h.message(from, b.subarray(body))
  }

  private heard(from: PeerId, inc: string, k: Control, slow: boolean): void {
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
    if (p) {
      p.seen = this.clock.now()
      p.slow = slow
    } else {
      // New, or declared lost and speaking again: up (again) before anything it sends is delivered.
      this.peers.set(m.f, { inc: m.i, seen: this.clock.now(), slow })
      h.peerUp(m.f)
      if (m.k !== 'here') this.post('here', m.f)
    }
  }
}
