/**
 * TCP transport for Node (`node:net`): one length-prefixed stream per peer.
 *
 * Wire: `u32 length (big-endian) | u8 type | payload`, where type 0 is HELLO
 * (payload: the sender's peer id, UTF-8), 1 is a frame, 2 is BYE. Each side
 * sends HELLO first; a peer is up once its HELLO arrives. Nagle is off. A
 * dialer reconnects with capped exponential backoff and jitter. `send()`
 * returns a promise while the socket's buffer is over its high-water mark, so
 * an awaited `commit()` waits for a slow peer instead of growing memory.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import {
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
} from '../src/index.js'

export interface TcpAddress {
  port: number
  /** Default 127.0.0.1. */
  host?: string
}

export interface TcpOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** Accept peers on this address (port 0 picks a free port; read it from `transport.port`). */
  listen?: TcpAddress
  /** Dial these peers, and keep redialling while the transport is open. */
  connect?: TcpAddress | TcpAddress[]
  /** Largest frame accepted, bytes (default 256 MiB). A larger length prefix closes that connection. */
  maxFrameBytes?: number
  backoff?: Partial<BackoffOptions>
  clock?: Clock
  random?: Random
}

const HELLO = 0
const FRAME = 1
const BYE = 2
const HEADER = 5

/** A TCP transport that listens, dials, or both. */
export function tcp(options: TcpOptions): TcpTransport {
  return new TcpTransport(options)
}

interface Conn {
  socket: Socket
  peer: PeerId | undefined
  bye: boolean
  chunks: Buffer[]
  buffered: number
  drain: Promise<void> | undefined
  /** Set on connections this end dialled: where to, and how many attempts failed in a row. */
  dial: { addr: TcpAddress; attempt: number } | undefined
  /** A HELLO arrived on this connection at some point. */
  greeted: boolean
}

export class TcpTransport implements Transport {
  readonly id: PeerId
  private readonly clock: Clock
  private readonly random: Random
  private readonly maxFrameBytes: number
  private readonly conns = new Set<Conn>()
  private readonly byPeer = new Map<PeerId, Conn>()
  private readonly timers = new Set<unknown>()
  private server: Server | undefined
  private handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(private readonly options: TcpOptions) {
    this.random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(this.random)
    this.clock = options.clock ?? realClock
    this.maxFrameBytes = options.maxFrameBytes ?? 256 * 1024 * 1024
    if (!options.listen && !options.connect) throw new RangeError('tcp: give `listen`, `connect`, or both')
  }

  /** The port this transport listens on (after `open()`), if it listens. */
  get port(): number | undefined {
    const a = this.server?.address()
    return a && typeof a === 'object' ? a.port : undefined
  }

  /** Peers with an open connection. */
  get peers(): PeerId[] {
    return [...this.byPeer.keys()]
  }

  async open(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new Error('tcp: open() called twice')
    this.handler = handler
    this.state = 'open'
    const { listen, connect } = this.options
    if (listen) {
      const server = createServer({ noDelay: true }, (socket) => this.adopt(socket, undefined))
      this.server = server
      server.on('error', (err) => handler.error(err))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(listen.port, listen.host ?? '127.0.0.1', () => {
          server.off('error', reject)
          resolve()
        })
      })
    }
    for (const addr of connect === undefined ? [] : Array.isArray(connect) ? connect : [connect]) this.dial(addr, 0)
  }

  send(data: Uint8Array, to?: PeerId): void | Promise<void> {
    if (this.state !== 'open') return
    if (to !== undefined) {
      const c = this.byPeer.get(to)
      return c ? this.write(c, FRAME, data) : undefined
    }
    let wait: Promise<void> | undefined
    for (const c of this.byPeer.values()) wait = this.write(c, FRAME, data) ?? wait
    return wait
  }

  /** Says BYE to every peer, closes every connection and the listener, and stops redialling. */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    for (const t of this.timers) this.clock.clearTimeout(t)
    this.timers.clear()
    const closing = [...this.conns].map((c) => {
      if (c.peer !== undefined) this.write(c, BYE, new Uint8Array(0))
      return this.end(c)
    })
    await Promise.all([...closing, this.closeServer()])
  }

  /** Drops every connection without a goodbye, as a crash would (for tests and simulations). */
  async abort(): Promise<void> {
    this.state = 'closed'
    for (const t of this.timers) this.clock.clearTimeout(t)
    this.timers.clear()
    const closed = [...this.conns].map((c) => new Promise<void>((r) => (c.socket.destroyed ? r() : (c.socket.once('close', () => r()), c.socket.destroy()))))
    await Promise.all([...closed, this.closeServer()])
  }

  private closeServer(): Promise<void> {
    const server = this.server
    this.server = undefined
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()))
  }

  private end(c: Conn): Promise<void> {
    return new Promise((resolve) => {
      if (c.socket.destroyed) return resolve()
      const force = this.clock.setTimeout(() => c.socket.destroy(), 1000)
      c.socket.once('close', () => {
        this.clock.clearTimeout(force)
        resolve()
      })
      c.socket.end()
    })
  }

  private dial(addr: TcpAddress, attempt: number): void {
    if (this.state !== 'open') return
    const socket = createConnection({ port: addr.port, host: addr.host ?? '127.0.0.1', noDelay: true })
    this.adopt(socket, { addr, attempt })
  }

  private adopt(socket: Socket, dial: Conn['dial']): void {
    const c: Conn = { socket, peer: undefined, bye: false, chunks: [], buffered: 0, drain: undefined, dial, greeted: false }
    this.conns.add(c)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.receive(c, chunk))
    socket.on('error', () => {
      /* surfaced through 'close': refused or reset connections are expected while a peer is down */
    })
    socket.on('close', () => {
      this.conns.delete(c)
      if (c.peer !== undefined && this.byPeer.get(c.peer) === c) {
        this.byPeer.delete(c.peer)
        if (this.state === 'open') this.handler?.peerDown(c.peer, c.bye ? 'closed' : 'lost')
      }
      if (c.dial && this.state === 'open') {
        // Redial: quickly after a working connection dropped, backing off while the peer stays unreachable.
        const attempt = c.greeted ? 0 : c.dial.attempt + 1
        const t = this.clock.setTimeout(() => {
          this.timers.delete(t)
          this.dial((c.dial as { addr: TcpAddress }).addr, attempt)
        }, backoffDelay(attempt, this.options.backoff, this.random))
        this.timers.add(t)
      }
    })
    const hello = () => this.write(c, HELLO, new TextEncoder().encode(this.id))
    if (socket.connecting) socket.once('connect', hello)
    else hello()
  }

  private write(c: Conn, type: number, data: Uint8Array): Promise<void> | undefined {
    const s = c.socket
    if (s.destroyed || !s.writable) return undefined
    const header = Buffer.allocUnsafe(HEADER)
    header.writeUInt32BE(data.length + 1, 0)
    header[4] = type
    s.cork()
    s.write(header)
    const ok = s.write(data)
    s.uncork()
    if (ok) return c.drain
    c.drain ??= new Promise<void>((resolve) => {
      const done = () => {
        s.off('drain', done)
        s.off('close', done)
        c.drain = undefined
        resolve()
      }
      s.on('drain', done)
      s.on('close', done)
    })
    return c.drain
  }

  private receive(c: Conn, chunk: Buffer): void {
    c.chunks.push(chunk)
    c.buffered += chunk.length
    while (c.buffered >= 4) {
      const head = c.chunks[0] as Buffer
      const first = head.length >= 4 ? head : Buffer.concat(c.chunks, c.buffered)
      if (first !== head) c.chunks = [first]
      const length = first.readUInt32BE(0)
      if (length === 0 || length - 1 > this.maxFrameBytes) {
        this.handler?.error(new Error(`tcp: a frame of ${length - 1} bytes from ${c.peer ?? 'an unidentified peer'} exceeds maxFrameBytes (${this.maxFrameBytes}) or is empty; closing that connection`))
        c.chunks = []
        c.buffered = 0
        c.socket.destroy()
        return
      }
      if (c.buffered < 4 + length) return
      const all = c.chunks.length === 1 ? first : Buffer.concat(c.chunks, c.buffered)
      const type = all[4] as number
      const payload = new Uint8Array(all.buffer, all.byteOffset + HEADER, length - 1)
      const rest = all.subarray(4 + length)
      c.chunks = rest.length ? [rest] : []
      c.buffered = rest.length
      this.dispatch(c, type, payload)
      if (c.socket.destroyed) return
    }
  }

  private dispatch(c: Conn, type: number, payload: Uint8Array): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    if (type === HELLO) {
      const peer = new TextDecoder().decode(payload)
      if (!peer || c.peer !== undefined) {
        h.error(new Error('tcp: a HELLO was empty or repeated; closing that connection'))
        c.socket.destroy()
        return
      }
      c.peer = peer
      c.greeted = true
      const old = this.byPeer.get(peer)
      this.byPeer.set(peer, c)
      if (old) {
        // The peer reconnected before we saw its old connection close: that one is stale.
        old.peer = undefined
        old.socket.destroy()
        h.peerDown(peer, 'lost')
      }
      h.peerUp(peer)
    } else if (type === FRAME && c.peer !== undefined) {
      h.message(c.peer, payload)
    } else if (type === BYE) {
      c.bye = true
    } else {
      h.error(new Error(`tcp: unexpected frame type ${type} from ${c.peer ?? 'an unidentified peer'}; closing that connection`))
      c.socket.destroy()
    }
  }
}
