/**
 * TCP transport for Node (`node:net`): one length-prefixed stream per peer.
 *
 * Wire: `u32 length (big-endian) | u8 type | payload`, where type 0 is HELLO
 * (payload: the sender's peer id, UTF-8, then a NUL and the sender's
 * incarnation — random per transport instance), 1 is a frame, 2 is BYE, 3 is
 * USE and 4 is DUPLICATE. Each side sends HELLO first. Nagle is off. A dialer
 * reconnects with capped exponential backoff and jitter. `send()` returns a
 * promise while the socket's buffer is over its high-water mark, so an awaited
 * `commit()` waits for a slow peer instead of growing memory.
 *
 * One connection per peer pair: when both ends listen and dial each other
 * (a peer list), a pair starts with two connections. The end with the lower
 * peer id picks: the first connection on which the other's HELLO arrives gets
 * USE, and the peer is up there on both ends; a later connection from the same
 * incarnation gets DUPLICATE and is closed. The higher end sends nothing but
 * HELLO on a connection until USE arrives on it, and the lower end sends
 * frames only on the connection it picked, so no frame ever travels on a
 * connection that is dropped as a duplicate and per-pair order holds. A
 * dialled connection that closes while another connection to the same peer is
 * live is not redialled until that peer's connections are all gone, so a
 * duplicate does not come back (no flapping). A HELLO from a new incarnation
 * (the peer restarted before its old connection was seen to close) replaces
 * the old connection: the peer goes down and comes up again. A HELLO without
 * an incarnation (an older peer) is taken at once, as before. A connection
 * that reaches this transport itself (a peer list that names its own address)
 * is closed and not redialled.
 */
import { randomUUID } from 'node:crypto'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import {
  ConfigError,
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
/** From the lower peer id: this connection is the pair's one; the peer is up on it. */
const USE = 3
/** From the lower peer id: the pair already has a connection; this one closes unused. */
const DUPLICATE = 4
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
  /** The peer's incarnation from its HELLO; undefined for an older peer that sends none. */
  incarnation: string | undefined
  /** Closed unused because the pair already has a connection (sent or received DUPLICATE). */
  duplicate: boolean
  /** Reaches this transport itself (or another with its id): closed, never redialled. */
  self: boolean
}

export class TcpTransport implements Transport {
  readonly id: PeerId
  private readonly clock: Clock
  private readonly random: Random
  private readonly maxFrameBytes: number
  private readonly conns = new Set<Conn>()
  /** The one connection each peer is up on: the only one frames are sent on or taken from. */
  private readonly byPeer = new Map<PeerId, Conn>()
  /** Addresses whose dialled connection closed while another connection to that peer was live: redialled once none is. */
  private readonly parked = new Map<PeerId, TcpAddress[]>()
  /** Tells a restart of this end from a second connection of the same run. */
  private readonly incarnation = randomUUID()
  private readonly timers = new Set<unknown>()
  private server: Server | undefined
  private handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(private readonly options: TcpOptions) {
    this.random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(this.random)
    this.clock = options.clock ?? realClock
    this.maxFrameBytes = options.maxFrameBytes ?? 256 * 1024 * 1024
    if (!options.listen && !options.connect) throw new ConfigError('tcp: give `listen`, `connect`, or both')
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
    if (this.state !== 'new') throw new TransportError('tcp: open() was called twice; a transport opens once (after close(), make a new one with tcp(…))')
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
    const c: Conn = { socket, peer: undefined, bye: false, chunks: [], buffered: 0, drain: undefined, dial, greeted: false, incarnation: undefined, duplicate: false, self: false }
    this.conns.add(c)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.receive(c, chunk))
    socket.on('error', () => {
      /* surfaced through 'close': refused or reset connections are expected while a peer is down */
    })
    socket.on('close', () => {
      this.conns.delete(c)
      const peer = c.peer
      if (peer !== undefined && this.byPeer.get(peer) === c) {
        this.byPeer.delete(peer)
        if (this.state === 'open') this.handler?.peerDown(peer, c.bye ? 'closed' : 'lost')
      }
      if (this.state !== 'open') return
      if (c.dial && !c.self) {
        if (peer !== undefined && this.live(peer)) {
          // The pair has another connection (this one was a duplicate, or replaced): redialling now would only
          // make a new duplicate. Dial again once that peer has no connection left.
          const addrs = this.parked.get(peer) ?? []
          addrs.push(c.dial.addr)
          this.parked.set(peer, addrs)
        } else this.redial(c.dial.addr, c.greeted && !c.duplicate ? 0 : c.dial.attempt + 1) // a peer that still holds an old connection: back off
      }
      if (peer !== undefined && !this.live(peer)) {
        const addrs = this.parked.get(peer)
        this.parked.delete(peer)
        for (const addr of addrs ?? []) this.redial(addr, 0)
      }
    })
    const hello = () => this.write(c, HELLO, new TextEncoder().encode(`${this.id}\0${this.incarnation}`))
    if (socket.connecting) socket.once('connect', hello)
    else hello()
  }

  /** Redials `addr` after a backoff: quickly after a working connection dropped, backing off while the peer stays unreachable. */
  private redial(addr: TcpAddress, attempt: number): void {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t)
      this.dial(addr, attempt)
    }, backoffDelay(attempt, this.options.backoff, this.random))
    this.timers.add(t)
  }

  /** Whether some connection to `peer` is open and not on its way out as a duplicate. */
  private live(peer: PeerId): boolean {
    for (const c of this.conns) if (c.peer === peer && !c.duplicate && !c.socket.destroyed) return true
    return false
  }

  /** Makes `c` the connection `c.peer` is up on; a connection it replaces is stale (the peer restarted). */
  private choose(c: Conn, h: TransportHandler): void {
    const peer = c.peer as PeerId
    const old = this.byPeer.get(peer)
    this.byPeer.set(peer, c)
    if (old) {
      // The peer reconnected before we saw its old connection close: that one is stale.
      old.socket.destroy()
      h.peerDown(peer, 'lost')
    }
    h.peerUp(peer)
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
        this.handler?.error(new TransportError(`tcp: a frame of ${length - 1} bytes from ${c.peer ?? 'an unidentified peer'} exceeds maxFrameBytes (${this.maxFrameBytes}) or is empty; closing that connection`))
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
      const text = new TextDecoder().decode(payload)
      const cut = text.indexOf('\0')
      const peer = cut < 0 ? text : text.slice(0, cut)
      const incarnation = cut < 0 ? undefined : text.slice(cut + 1)
      if (!peer || c.peer !== undefined) {
        h.error(new TransportError('tcp: a HELLO was empty or repeated; closing that connection'))
        c.socket.destroy()
        return
      }
      c.peer = peer
      c.greeted = true
      c.incarnation = incarnation
      if (peer === this.id) {
        // This transport reached itself (its own address is in `connect`), or another end uses its id.
        c.self = true
        if (incarnation !== this.incarnation) h.error(new TransportError(`tcp: a peer uses this end's own id ${peer}; closing that connection`))
        c.socket.destroy()
        return
      }
      if (incarnation === undefined) return this.choose(c, h) // an older peer: no USE, the latest connection wins
      if (peer < this.id) return // the peer picks: wait for USE or DUPLICATE on this connection
      const current = this.byPeer.get(peer)
      if (current && current.incarnation === incarnation) {
        // The same run of the peer is already up on another connection (both ends dialled): close this one unused.
        c.duplicate = true
        this.write(c, DUPLICATE, new Uint8Array(0))
        void this.end(c)
        return
      }
      this.write(c, USE, new Uint8Array(0))
      this.choose(c, h)
    } else if (type === FRAME && c.peer !== undefined) {
      // Frames count only on the connection the peer is up on (none are sent on another).
      if (this.byPeer.get(c.peer) === c) h.message(c.peer, payload)
    } else if ((type === USE || type === DUPLICATE) && c.peer !== undefined && c.incarnation !== undefined && c.peer < this.id && !c.duplicate && this.byPeer.get(c.peer) !== c) {
      if (type === USE) this.choose(c, h)
      else c.duplicate = true // the peer closes it
    } else if (type === BYE) {
      c.bye = true
    } else {
      h.error(new TransportError(`tcp: unexpected frame type ${type} from ${c.peer ?? 'an unidentified peer'}; closing that connection`))
      c.socket.destroy()
    }
  }
}
