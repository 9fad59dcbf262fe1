/**
 * WebSocket client transport: browsers, Web Workers, edge runtimes and Node.
 * It uses the standard `WebSocket` where the runtime has one, and the `ws`
 * package on Node versions that do not. It reconnects with capped exponential
 * backoff and jitter on the injected clock until `close()`.
 */
import {
  TransportError,
  backoffDelay,
  defaultRandom,
  randomId,
  realClock,
  type BackoffOptions,
  type Clock,
  type PeerId,
  type Random,
  type Transport,
  type TransportHandler,
} from '../../src/index.js'
import { BYE, DEFAULT_CHUNK_BYTES, DEFAULT_MAX_FRAME_BYTES, HELLO, Reassembler, envelope, pieces } from './framing.js'

/** The parts of the standard WebSocket this adapter uses. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: unknown) => void) | null
  onerror: ((ev: unknown) => void) | null
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface WebSocketOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** The WebSocket constructor (default: the global one, else `ws` on Node). */
  WebSocket?: WebSocketConstructor
  /** Largest message sent; bigger frames are chunked (default 1 MiB). */
  chunkBytes?: number
  /** Largest reassembled frame accepted (default 256 MiB). */
  maxFrameBytes?: number
  backoff?: Partial<BackoffOptions>
  clock?: Clock
  random?: Random
}

const OPEN = 1

/** A transport that dials `url` (a `webSocketServer` or any server speaking the same envelope). */
export function webSocket(url: string, options: WebSocketOptions = {}): WebSocketTransport {
  return new WebSocketTransport(url, options)
}

export class WebSocketTransport implements Transport {
  readonly id: PeerId
  private readonly clock: Clock
  private readonly random: Random
  private readonly chunkBytes: number
  private socket: WebSocketLike | undefined
  private peer: PeerId | undefined
  private bye = false
  private attempt = 0
  private timer: unknown
  private handler: TransportHandler | undefined
  private Ctor: WebSocketConstructor | undefined
  private state: 'new' | 'open' | 'closed' = 'new'
  private closed: (() => void) | undefined

  constructor(
    readonly url: string,
    private readonly options: WebSocketOptions = {},
  ) {
    this.random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(this.random)
    this.clock = options.clock ?? realClock
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES
  }

  /** The server's peer id while connected. */
  get connectedTo(): PeerId | undefined {
    return this.peer
  }

  async open(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new TransportError('webSocket: open() was called twice; a transport opens once (after close(), make a new one with webSocket(…))')
    this.handler = handler
    this.state = 'open'
    this.Ctor =
      this.options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      ((await import(/* @vite-ignore */ 'ws')).default as unknown as WebSocketConstructor)
    this.connect()
  }

  send(data: Uint8Array, to?: PeerId): void {
    const s = this.socket
    if (this.state !== 'open' || !s || s.readyState !== OPEN || this.peer === undefined) return
    if (to !== undefined && to !== this.peer) return
    for (const piece of pieces(data, this.chunkBytes)) s.send(piece)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    const s = this.socket
    if (s?.readyState === OPEN && this.peer !== undefined) s.send(envelope(BYE, new Uint8Array(0)))
    await this.shut(1000)
  }

  /** Drops the connection without a goodbye, as a crash would (for tests and simulations). */
  async abort(): Promise<void> {
    const s = this.socket as unknown as { terminate?: () => void } | undefined
    if (s?.terminate) {
      this.state = 'closed'
      this.clock.clearTimeout(this.timer)
      const done = new Promise<void>((r) => (this.closed = r))
      s.terminate()
      await done
    } else await this.shut(4000)
  }

  private shut(code: number): Promise<void> {
    this.state = 'closed'
    this.clock.clearTimeout(this.timer)
    const s = this.socket
    if (!s || s.readyState > OPEN) return Promise.resolve()
    const done = new Promise<void>((r) => (this.closed = r))
    s.close(code)
    return done
  }

  private connect(): void {
    if (this.state !== 'open') return
    let socket: WebSocketLike
    try {
      socket = new (this.Ctor as WebSocketConstructor)(this.url)
    } catch (err) {
      this.handler?.error(err as Error)
      return this.retry()
    }
    this.socket = socket
    socket.binaryType = 'arraybuffer'
    const inbox = new Reassembler(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
    socket.onopen = () => socket.send(envelope(HELLO, new TextEncoder().encode(this.id)))
    socket.onmessage = (ev) => {
      const h = this.handler
      if (!h || this.state !== 'open') return
      const r = inbox.take(ev.data)
      if (r.kind === 'hello') {
        this.peer = r.peer
        this.bye = false
        this.attempt = 0
        h.peerUp(r.peer)
      } else if (r.kind === 'frame' && this.peer !== undefined) h.message(this.peer, r.data)
      else if (r.kind === 'bye') this.bye = true
      else if (r.kind === 'error') h.error(new TransportError(`webSocket ${this.url}: ${r.message}`))
    }
    socket.onerror = () => {
      /* followed by onclose, which reports and reconnects */
    }
    socket.onclose = () => {
      const peer = this.peer
      this.peer = undefined
      this.socket = undefined
      if (peer !== undefined && this.state === 'open') this.handler?.peerDown(peer, this.bye ? 'closed' : 'lost')
      this.closed?.()
      this.closed = undefined
      this.retry()
    }
  }

  private retry(): void {
    if (this.state !== 'open') return
    this.timer = this.clock.setTimeout(() => this.connect(), backoffDelay(this.attempt++, this.options.backoff, this.random))
  }
}
