/**
 * WebSocket client transport: browsers, Web Workers, edge runtimes and Node.
 * It uses the standard `WebSocket` where the runtime has one, and the `ws`
 * package on Node versions that do not. It reconnects with capped exponential
 * backoff and jitter on the injected clock until `close()`.
 *
 * **wss:** any `wss://` URL is dialled as is; the runtime's TLS checks the
 * server's certificate (in Node, pass a `WebSocket` constructor that gives
 * `ws` its TLS options, e.g. `ca` for a private certificate authority).
 *
 * Group authentication (the default: without `key` the constructor throws
 * unless `insecure: true`): the client runs the core's handshake with the
 * server, and the server is its peer only once the server has proven it holds
 * a group key and welcomed this client (the server refuses a connection that
 * claims the id of a live peer). Every later message is sealed. Before then,
 * messages from the server of at most 4 KiB, and a deadline
 * (`handshakeTimeoutMs`). The primitives default to WebCrypto; in Node pass
 * `crypto: nodeCrypto` (`understudy-ha/adapters/node-crypto`), which is faster.
 */
import {
  AuthError,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  GroupKeys,
  transportKeys,
  type TransportAuthOptions,
  checkPeerId,
  PREAUTH_MAX_BYTES,
  SecureLink,
  TransportError,
  backoffDelay,

  defaultRandom,
  randomId,
  realClock,
  webCrypto,
  type BackoffOptions,
  type Clock,
  type PeerId,
  type Random,
  type Transport,
  type TransportHandler,
} from '../../src/index.js'
import {
  AUTH_HELLO,
  AUTH_PROOF,
  BYE,
  CLOSE_ID_IN_USE,
  CLOSE_NO_KEY,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  HELLO,
  Reassembler,
  WELCOME,
  envelope,
  messageBytes,
  parse,
  pieces,
  type Received,
} from './framing.js'

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

export interface WebSocketOptions extends TransportAuthOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /**
   * The WebSocket constructor (default: the global one, else `ws` on Node).
   * In Node, a subclass of `ws`'s WebSocket can pass it options, e.g. `ca` for
   * a `wss:` server with a private certificate.
   */
  WebSocket?: WebSocketConstructor
  /** Largest message sent; bigger frames are chunked (default 1 MiB). At most the server's. */
  chunkBytes?: number
  /** Largest reassembled frame accepted (default 256 MiB). */
  maxFrameBytes?: number
  backoff?: Partial<BackoffOptions>
  clock?: Clock
  random?: Random
}

const OPEN = 1
const EMPTY = new Uint8Array(0)

/** A transport that dials `url` (`ws://` or `wss://`: a `webSocketServer` or any server speaking the same envelope). */
export function webSocket(url: string, options: WebSocketOptions = {}): WebSocketTransport {
  return new WebSocketTransport(url, options)
}

/** One connection attempt. */
interface Attempt {
  socket: WebSocketLike
  inbox: Reassembler
  link: SecureLink | undefined
  /** The server's id once it proved it (with a key), until it welcomes this client. */
  proven: PeerId | undefined
  deadline: unknown
}

export class WebSocketTransport implements Transport {
  readonly id: PeerId
  private readonly clock: Clock
  private readonly random: Random
  private readonly chunkBytes: number
  private readonly keys: Promise<GroupKeys> | undefined
  private groupKeys: GroupKeys | undefined
  /** Tells a restart of this end from another connection of the same run. */
  private readonly incarnation: string
  private current: Attempt | undefined
  private peer: PeerId | undefined
  private bye = false
  private attempt = 0
  private timer: unknown
  private handler: TransportHandler | undefined
  private Ctor: WebSocketConstructor | undefined
  private state: 'new' | 'open' | 'closed' = 'new'
  private closed: (() => void) | undefined
  private byeSent: (() => void) | undefined

  constructor(
    readonly url: string,
    private readonly options: WebSocketOptions = {},
  ) {
    this.random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(this.random)
    checkPeerId(this.id, 'webSocket')
    this.incarnation = `${this.id}@${randomId(this.random)}`
    this.clock = options.clock ?? realClock
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES
    this.keys = transportKeys(options, 'webSocket', 'webSocket(url, { …, key })', webCrypto)
  }

  /** Whether the server must prove it holds the group key. */
  get authenticated(): boolean {
    return this.keys !== undefined
  }

  /** The server's peer id while connected. */
  get connectedTo(): PeerId | undefined {
    return this.peer
  }

  async open(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new TransportError('webSocket: open() was called twice; a transport opens once (after close(), make a new one with webSocket(…))')
    this.handler = handler
    this.state = 'open'
    this.groupKeys = await this.keys
    this.Ctor =
      this.options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      ((await import(/* @vite-ignore */ 'ws')).default as unknown as WebSocketConstructor)
    this.connect()
  }

  send(data: Uint8Array, to?: PeerId): void {
    const a = this.current
    if (this.state !== 'open' || !a || a.socket.readyState !== OPEN || this.peer === undefined) return
    if (to !== undefined && to !== this.peer) return
    // With a key, sealing may finish after send() returns (WebCrypto): seal a copy, so the caller may reuse `data`.
    const bytes = a.link ? data.slice() : data
    for (const [type, body] of pieces(bytes, this.chunkBytes)) this.write(a, type, body)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    const a = this.current
    if (a && a.socket.readyState === OPEN && this.peer !== undefined) {
      this.state = 'closed'
      this.clock.clearTimeout(this.timer)
      this.clock.clearTimeout(a.deadline)
      await this.sayBye(a)
    }
    await this.shut(1000)
  }

  /** Drops the connection without a goodbye, as a crash would (for tests and simulations). */
  async abort(): Promise<void> {
    const s = this.current?.socket as unknown as { terminate?: () => void } | undefined
    if (s?.terminate) {
      this.state = 'closed'
      this.clock.clearTimeout(this.timer)
      this.current?.link?.close()
      this.clock.clearTimeout(this.current?.deadline)
      const done = new Promise<void>((r) => (this.closed = r))
      s.terminate()
      await done
    } else await this.shut(4000)
  }

  /** Sends BYE and resolves once it is on its way (sealing may be asynchronous), within a second. */
  private sayBye(a: Attempt): Promise<void> {
    if (!a.link) {
      a.socket.send(envelope(BYE, []))
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const t = this.clock.setTimeout(() => done(), 1000)
      const done = () => {
        this.clock.clearTimeout(t)
        this.byeSent = undefined
        resolve()
      }
      this.byeSent = done
      a.link?.send(BYE, EMPTY)
    })
  }

  private shut(code: number): Promise<void> {
    this.state = 'closed'
    this.clock.clearTimeout(this.timer)
    const a = this.current
    a?.link?.close()
    this.clock.clearTimeout(a?.deadline)
    const s = a?.socket
    if (!s || s.readyState > OPEN) return Promise.resolve()
    const done = new Promise<void>((r) => (this.closed = r))
    s.close(code)
    return done
  }

  /** Writes one message: sealed with a key, as is without. */
  private write(a: Attempt, type: number, body: Uint8Array): void {
    if (a.socket.readyState !== OPEN) return
    if (a.link) a.link.send(type, body)
    else a.socket.send(envelope(type, [body]))
  }

  /** Gives up on this connection (it failed authentication or broke the protocol): reports why, closes it and redials later. */
  private drop(a: Attempt, err: Error): void {
    this.handler?.error(err)
    a.link?.close()
    this.clock.clearTimeout(a.deadline)
    const s = a.socket as WebSocketLike & { terminate?: () => void }
    if (s.readyState > OPEN) return
    if (s.terminate) s.terminate()
    else s.close(4001, 'understudy: handshake failed')
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
    const a: Attempt = {
      socket,
      inbox: new Reassembler(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
      link: undefined,
      proven: undefined,
      deadline: undefined,
    }
    this.current = a
    socket.binaryType = 'arraybuffer'
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
    socket.onopen = () => {
      if (this.state !== 'open') return
      a.deadline = this.clock.setTimeout(() => {
        if (this.peer !== undefined || this.current !== a) return
        const what = `webSocket ${this.url}: the server did not ${a.link ? 'complete the handshake and welcome this client' : 'say HELLO'} within ${timeoutMs} ms; closed`
        this.drop(a, a.link ? new AuthError('TIMEOUT', what) : new TransportError(what))
      }, timeoutMs)
      const keys = this.groupKeys
      if (!keys) return socket.send(envelope(HELLO, [new TextEncoder().encode(this.id)]))
      a.link = new SecureLink({
        keys,
        self: { id: this.id, incarnation: this.incarnation },
        dialer: true,
        types: { hello: AUTH_HELLO, proof: AUTH_PROOF },
        clock: this.clock,
        handshakeTimeoutMs: timeoutMs,
        write: (type, parts) => {
          if (socket.readyState === OPEN) socket.send(envelope(type, parts))
          if (type === BYE) this.byeSent?.()
        },
        established: (peer) => (a.proven = peer.id),
        message: (type, payload) => {
          if (type === WELCOME) return a.proven !== undefined && this.peer === undefined ? this.up(a, a.proven) : undefined
          if (type === HELLO) return this.drop(a, new TransportError(`webSocket ${this.url}: the server sent a HELLO inside the session; closed`))
          this.handle(a, a.inbox.take(type, payload))
        },
        failed: (error) => this.drop(a, new AuthError(error.reason, `webSocket ${this.url}: ${error.message}; closed`)),
      })
      a.link.start()
    }
    socket.onmessage = (ev) => {
      const h = this.handler
      if (!h || this.state !== 'open' || this.current !== a) return
      const known = this.peer !== undefined
      if (!known && messageBytes(ev.data) > PREAUTH_MAX_BYTES + 1)
        return this.drop(a, new TransportError(`webSocket ${this.url}: a message of ${messageBytes(ev.data)} bytes before the server completed its handshake (at most ${PREAUTH_MAX_BYTES + 1}); closed`))
      const m = parse(ev.data)
      if (typeof m === 'string') {
        const err = new TransportError(`webSocket ${this.url}: ${m}`)
        return known ? h.error(err) : this.drop(a, err)
      }
      if (a.link) {
        if (m.type === HELLO && !a.link.established)
          return this.drop(a, new AuthError('UNAUTHENTICATED', `webSocket ${this.url}: the server has no group key (it said a plain HELLO: an insecure server); give it the group's key. Closed`))
        a.link.receive(m.type, m.body)
      } else if (m.type === AUTH_HELLO || m.type === AUTH_PROOF) {
        this.drop(a, new AuthError('REFUSED', `webSocket ${this.url}: the server requires group authentication, but this client has no key (insecure: true); give it the group's key. Closed`))
      } else {
        // Without a key, only the reply HELLO is taken before the server is known.
        if (!known && m.type !== HELLO) return this.drop(a, new TransportError(`webSocket ${this.url}: a message of type ${m.type} before the server's HELLO; closed`))
        this.handle(a, a.inbox.take(m.type, m.body))
      }
    }
    socket.onerror = () => {
      /* followed by onclose, which reports and reconnects */
    }
    socket.onclose = (ev) => {
      a.link?.close()
      this.clock.clearTimeout(a.deadline)
      this.byeSent?.()
      if (this.current !== a) return
      const { code } = (ev ?? {}) as { code?: number }
      if (this.peer === undefined && this.state === 'open') {
        if (code === CLOSE_NO_KEY && a.link)
          this.handler?.error(new AuthError('REFUSED', `webSocket ${this.url}: the server has no group key (an insecure server) and refused this client's handshake; give it the group's key`))
        else if (code === CLOSE_ID_IN_USE)
          this.handler?.error(new TransportError(`webSocket ${this.url}: the server refused this connection: peer id ${JSON.stringify(this.id)} is connected and answering on another connection (two members with one id, or this client's previous connection is still alive)`))
      }
      const peer = this.peer
      this.peer = undefined
      this.current = undefined
      if (peer !== undefined && this.state === 'open') this.handler?.peerDown(peer, this.bye ? 'closed' : 'lost')
      this.closed?.()
      this.closed = undefined
      this.retry()
    }
  }

  private handle(a: Attempt, r: Received): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    if (r.kind === 'hello') {
      if (this.peer !== undefined) return this.drop(a, new TransportError(`webSocket ${this.url}: a repeated HELLO; closed`))
      this.up(a, r.peer)
    } else if (r.kind === 'frame') {
      if (this.peer !== undefined) h.message(this.peer, r.data)
    } else if (r.kind === 'bye') this.bye = true
    else if (r.kind === 'error') h.error(new TransportError(`webSocket ${this.url}: ${r.message}`))
  }

  /** The server is this client's peer. */
  private up(a: Attempt, peer: PeerId): void {
    this.clock.clearTimeout(a.deadline)
    if (peer === this.id) return this.drop(a, new TransportError(`webSocket ${this.url}: the server uses this client's own id ${JSON.stringify(peer)}; closed`))
    this.peer = peer
    this.bye = false
    this.attempt = 0
    this.handler?.peerUp(peer)
  }

  private retry(): void {
    if (this.state !== 'open') return
    this.timer = this.clock.setTimeout(() => this.connect(), backoffDelay(this.attempt++, this.options.backoff, this.random))
  }
}
