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
 *
 * Group authentication (the default: a transport without `key` refuses to start
 * unless `insecure: true`): instead of HELLO each side sends AUTH_HELLO (5) and
 * AUTH_PROOF (6) — the core's handshake ({@link SecureLink}) — and the peer is
 * known only once it has proven it holds a group key; its id and incarnation
 * are the ones it proved. Every later message (FRAME, BYE, USE, DUPLICATE,
 * PING, PONG) carries a tag over a per-direction counter, or is encrypted.
 *
 * Before a peer is known, in either mode: messages of at most 4 KiB, a
 * handshake deadline, and at most `maxPendingConnections` accepted connections
 * waiting. A connection that claims the id of a peer already up on another
 * connection is refused unless that one is dead: the transport sends PING (7)
 * on the old connection and replaces it only if no PONG (8) comes back within
 * `probeMs`.
 */
import { randomUUID } from 'node:crypto'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { connect as tlsConnect, createServer as tlsCreateServer, type ConnectionOptions, type TlsOptions } from 'node:tls'
import {
  AuthError,
  ConfigError,
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
  type BackoffOptions,
  type Clock,
  type PeerId,
  type Random,
  type Transport,
  type TransportHandler,
} from '../src/index.js'
import { nodeCrypto } from './node-crypto.js'

export interface TcpAddress {
  port: number
  /** Default 127.0.0.1. */
  host?: string
}

export interface TcpOptions extends TransportAuthOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** Accept peers on this address (port 0 picks a free port; read it from `transport.port`). */
  listen?: TcpAddress
  /** Dial these peers, and keep redialling while the transport is open. */
  connect?: TcpAddress | TcpAddress[]
  /** Largest frame accepted, bytes (default 256 MiB). A larger length prefix closes that connection. */
  maxFrameBytes?: number
  /** TLS for the connections (`node:tls`): `server` options for the listener, `client` options for dialling. Composes with `key`. */
  tls?: { server?: TlsOptions; client?: ConnectionOptions }
  /** Most accepted connections that have not completed their HELLO or handshake; more are closed at once (default 64). */
  maxPendingConnections?: number
  /** How long a connected peer has to answer a PING when another connection claims its id (default 1000 ms). */
  probeMs?: number
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
/** The handshake's two messages (group authentication). */
const AUTH_HELLO = 5
const AUTH_PROOF = 6
/** Is this connection alive? (asked when another connection claims its peer's id) */
const PING = 7
const PONG = 8
const HEADER = 5
const EMPTY = new Uint8Array(0)

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
  /** The authenticated session, with a group key. */
  link: SecureLink | undefined
  /** The insecure HELLO deadline. */
  deadline: unknown
  /** Set while this connection is being asked whether it is alive: called on PONG. */
  pong: (() => void) | undefined
  /** Set on a new connection waiting for the peer's current one to be probed. */
  waiting: boolean
  /** The peer ended its side (FIN): the connection is on its way out. */
  ended: boolean
  /** Reached this node itself through someone else: redialled with backoff. */
  relayed: boolean
}

export class TcpTransport implements Transport {
  readonly id: PeerId
  private readonly clock: Clock
  private readonly random: Random
  private readonly maxFrameBytes: number
  private readonly keys: Promise<GroupKeys> | undefined
  private groupKeys: GroupKeys | undefined
  private readonly conns = new Set<Conn>()
  /** The one connection each peer is up on: the only one frames are sent on or taken from. */
  private readonly byPeer = new Map<PeerId, Conn>()
  /** Addresses whose dialled connection closed while another connection to that peer was live: redialled once none is. */
  private readonly parked = new Map<PeerId, TcpAddress[]>()
  /** `address:port` of the dialling ends of this transport's own loops (connections it accepted from itself). */
  private readonly loopPorts = new Set<string>()
  /** TLS connections accepted whose handshake (TLS, then the group's) has not reached `adopt` yet. */
  private readonly tlsPending = new Set<Socket>()
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
    checkPeerId(this.id, 'tcp')
    this.keys = transportKeys(options, 'tcp', 'tcp({ …, key: process.env.UNDERSTUDY_KEY })', nodeCrypto)
  }

  /** Whether peers must prove they hold the group key. */
  get authenticated(): boolean {
    return this.keys !== undefined
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
    this.groupKeys = await this.keys
    const { listen, connect, tls } = this.options
    if (listen) {
      const accept = (socket: Socket) => this.accept(socket)
      const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
      const server = tls ? tlsCreateServer({ handshakeTimeout: timeoutMs, ...tls.server }, accept) : createServer({ noDelay: true }, accept)
      if (tls)
        // The cap counts TLS handshakes in progress too: a connection is seen here before TLS completes.
        server.on('connection', (raw: Socket) => {
          if (this.refuseOverCap(raw)) return
          this.tlsPending.add(raw)
          const t = this.clock.setTimeout(() => {
            if (!this.tlsPending.delete(raw)) return
            handler.error(new TransportError(`tcp: a connection from ${raw.remoteAddress ?? 'an unknown address'} did not complete TLS within ${timeoutMs} ms; closed`))
            raw.destroy()
          }, timeoutMs)
          raw.once('close', () => {
            this.clock.clearTimeout(t)
            this.tlsPending.delete(raw)
          })
        })
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
    const host = addr.host ?? '127.0.0.1'
    const tls = this.options.tls
    const socket = tls ? tlsConnect({ servername: host, ...tls.client, port: addr.port, host }) : createConnection({ port: addr.port, host, noDelay: true })
    this.adopt(socket, { addr, attempt })
  }

  /** A connection from the listener: refused at once while too many others have not said who they are. */
  private accept(socket: Socket): void {
    if (this.state !== 'open') return void socket.destroy()
    if (this.options.tls) {
      // TLS is done: this connection moves from the TLS count to the group handshake's.
      for (const raw of this.tlsPending) if (raw.remotePort === socket.remotePort && raw.remoteAddress === socket.remoteAddress) this.tlsPending.delete(raw)
    } else if (this.refuseOverCap(socket)) return
    this.adopt(socket, undefined)
  }

  /** Closes `socket` when `maxPendingConnections` accepted connections are already waiting to become peers. */
  private refuseOverCap(socket: Socket): boolean {
    if (this.state !== 'open') return socket.destroy(), true
    const cap = this.options.maxPendingConnections ?? 64
    let pending = this.tlsPending.size
    for (const c of this.conns) if (!c.dial && this.pending(c)) pending++
    if (pending < cap) return false
    socket.destroy()
    this.handler?.error(new TransportError(`tcp: ${pending} connections have not completed their handshake (maxPendingConnections ${cap}); refused one more from ${socket.remoteAddress ?? 'an unknown address'}`))
    return true
  }

  private adopt(socket: Socket, dial: Conn['dial']): void {
    const c: Conn = {
      socket,
      peer: undefined,
      bye: false,
      chunks: [],
      buffered: 0,
      drain: undefined,
      dial,
      greeted: false,
      incarnation: undefined,
      duplicate: false,
      self: false,
      link: undefined,
      deadline: undefined,
      pong: undefined,
      waiting: false,
      ended: false,
      relayed: false,
    }
    this.conns.add(c)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.receive(c, chunk))
    socket.on('end', () => (c.ended = true))
    socket.on('error', () => {
      /* surfaced through 'close': refused or reset connections are expected while a peer is down */
    })
    socket.on('close', () => {
      this.conns.delete(c)
      c.link?.close()
      this.clock.clearTimeout(c.deadline)
      const peer = c.peer
      if (peer !== undefined && this.byPeer.get(peer) === c) {
        this.byPeer.delete(peer)
        if (this.state === 'open') this.handler?.peerDown(peer, c.bye ? 'closed' : 'lost')
      }
      if (this.state !== 'open') return
      if (c.dial && c.relayed) this.redial(c.dial.addr, c.dial.attempt + 1)
      else if (c.dial && !c.self) {
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
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
    const keys = this.groupKeys
    if (keys)
      c.link = new SecureLink({
        keys,
        self: { id: this.id, incarnation: this.incarnation },
        dialer: dial !== undefined,
        types: { hello: AUTH_HELLO, proof: AUTH_PROOF },
        clock: this.clock,
        handshakeTimeoutMs: timeoutMs,
        write: (type, parts) => void this.writeParts(c, type, parts),
        established: (peer) => this.greet(c, peer.id, peer.incarnation),
        message: (type, payload) => this.dispatch(c, type, payload),
        failed: (error) => {
          this.handler?.error(error)
          c.socket.destroy()
        },
      })
    else
      c.deadline = this.clock.setTimeout(() => {
        if (c.greeted || c.socket.destroyed) return
        this.handler?.error(new TransportError(`tcp: a connection from ${socket.remoteAddress ?? 'an unknown address'} sent no HELLO within ${timeoutMs} ms; closed`))
        socket.destroy()
      }, timeoutMs)
    const hello = () => (c.link ? c.link.start() : this.write(c, HELLO, new TextEncoder().encode(`${this.id}\0${this.incarnation}`)))
    const connectEvent = this.options.tls ? 'secureConnect' : 'connect'
    if (dial) socket.once(connectEvent, hello)
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
  /** Not yet a peer's connection: no HELLO or handshake yet, or (proven) still waiting for USE or for its probe. */
  private pending(c: Conn): boolean {
    return !c.greeted || (!c.self && !c.duplicate && c.peer !== undefined && this.byPeer.get(c.peer) !== c)
  }

  private live(peer: PeerId): boolean {
    for (const c of this.conns) if (c.peer === peer && !c.duplicate && !c.socket.destroyed) return true
    return false
  }

  /**
   * Makes `c` the connection `c.peer` is up on. Another connection the peer is
   * already up on is replaced only once it is known dead (a restarted peer whose
   * old connection has not closed yet): it is sent PING, and `c` is refused if
   * a PONG comes back within `probeMs` — an id is bound to its live session.
   */
  private choose(c: Conn, h: TransportHandler): void {
    const peer = c.peer as PeerId
    const old = this.byPeer.get(peer)
    // Known dead: closed, or its peer said goodbye or ended its side.
    if (!old || old.socket.destroyed || old.bye || old.ended) {
      this.clock.clearTimeout(c.deadline)
      if (old && !old.socket.destroyed) old.socket.destroy()
      this.byPeer.set(peer, c)
      if (old) h.peerDown(peer, old.bye ? 'closed' : 'lost')
      h.peerUp(peer)
      return
    }
    if (old === c || c.waiting) return
    if (old.pong) {
      // Another claimant is already waiting on this peer's probe: one at a time.
      h.error(new TransportError(`tcp: a second connection claims peer id ${JSON.stringify(peer)} while another claim is being checked; refused the new one`))
      c.socket.destroy()
      return
    }
    c.waiting = true
    const probeMs = this.options.probeMs ?? 1000
    let answered = false
    const decide = () => {
      this.clock.clearTimeout(t)
      this.timers.delete(t)
      old.pong = undefined
      c.waiting = false
      if (this.state !== 'open' || c.socket.destroyed) return
      if (answered && !old.socket.destroyed && this.byPeer.get(peer) === old) {
        h.error(new TransportError(`tcp: a second connection claims peer id ${JSON.stringify(peer)}, which is connected and answering on another; refused the new one`))
        c.socket.destroy()
        return
      }
      if (this.byPeer.get(peer) === old) {
        // No answer: the old connection is dead (its peer restarted or vanished).
        this.byPeer.delete(peer)
        old.socket.destroy()
        h.peerDown(peer, 'lost')
      }
      this.choose(c, h)
    }
    old.pong = () => {
      answered = true
      decide()
    }
    const t = this.clock.setTimeout(decide, probeMs)
    this.timers.add(t)
    this.write(old, PING, EMPTY)
  }

  private write(c: Conn, type: number, data: Uint8Array): Promise<void> | undefined {
    if (!c.link) return this.writeParts(c, type, [data])
    if (!c.link.established || c.socket.destroyed || !c.socket.writable) return undefined
    c.link.send(type, data)
    return c.socket.writableNeedDrain ? this.drained(c) : c.drain
  }

  private writeParts(c: Conn, type: number, parts: readonly Uint8Array[]): Promise<void> | undefined {
    const s = c.socket
    if (s.destroyed || !s.writable) return undefined
    let length = 1
    for (const p of parts) length += p.length
    const header = Buffer.allocUnsafe(HEADER)
    header.writeUInt32BE(length, 0)
    header[4] = type
    s.cork()
    let ok = s.write(header)
    for (const p of parts) ok = s.write(p)
    s.uncork()
    return ok ? c.drain : this.drained(c)
  }

  /** Resolves once `c`'s socket drains (or closes). */
  private drained(c: Conn): Promise<void> {
    const s = c.socket
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
      // Until the peer is known (HELLO, or a completed handshake), nothing larger than a handshake message is taken.
      const known = c.link ? c.link.established : c.greeted
      const limit = known ? this.maxFrameBytes + (c.link ? 32 : 0) : PREAUTH_MAX_BYTES
      if (length === 0 || length - 1 > limit) {
        this.handler?.error(
          new TransportError(
            `tcp: a frame of ${length - 1} bytes from ${c.peer ?? 'an unidentified peer'} exceeds ${known ? `maxFrameBytes (${this.maxFrameBytes})` : `${PREAUTH_MAX_BYTES} bytes before the peer is known`} or is empty; closing that connection`,
          ),
        )
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
      this.receiveMessage(c, type, payload)
      if (c.socket.destroyed) return
    }
  }

  private receiveMessage(c: Conn, type: number, payload: Uint8Array): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    if (!c.link) {
      if (type === AUTH_HELLO || type === AUTH_PROOF) {
        h.error(new AuthError('REFUSED', 'tcp: a peer requires group authentication, but this transport has no key (insecure: true); closing that connection'))
        c.socket.destroy()
        return
      }
      if (type !== HELLO) return this.dispatch(c, type, payload)
      const text = new TextDecoder().decode(payload)
      const cut = text.indexOf('\0')
      return this.hello(c, cut < 0 ? text : text.slice(0, cut), cut < 0 ? undefined : text.slice(cut + 1))
    }
    if (type === HELLO && !c.link.established) {
      h.error(new AuthError('UNAUTHENTICATED', `tcp: a peer without a group key (an insecure transport, or a stranger) tried to connect from ${c.socket.remoteAddress ?? 'an unknown address'}; refused`))
      c.socket.destroy()
      return
    }
    c.link.receive(type, payload)
  }

  /** An insecure peer's HELLO (id and incarnation as claimed). */
  private hello(c: Conn, peer: string, incarnation: string | undefined): void {
    if (!peer || c.peer !== undefined) {
      this.handler?.error(new TransportError('tcp: a HELLO was empty or repeated; closing that connection'))
      c.socket.destroy()
      return
    }
    this.greet(c, peer, incarnation)
  }

  /** The peer on `c` is `peer` (proven, with a key; claimed, without): settle which connection the pair uses. */
  private greet(c: Conn, peer: PeerId, incarnation: string | undefined): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    this.clock.clearTimeout(c.deadline)
    c.peer = peer
    c.greeted = true
    c.incarnation = incarnation
    if (peer === this.id) return this.reachedSelf(c, incarnation, h)
    if (incarnation === undefined) return this.choose(c, h) // an older peer: no USE
    if (peer < this.id) {
      // The peer picks: wait for USE or DUPLICATE on this connection — for as long as a handshake may take, no longer.
      const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
      c.deadline = this.clock.setTimeout(() => {
        if (c.socket.destroyed || c.duplicate || this.byPeer.get(peer) === c) return
        h.error(new TransportError(`tcp: peer ${JSON.stringify(peer)} sent neither USE nor DUPLICATE within ${timeoutMs} ms; closing that connection`))
        c.socket.destroy()
      }, timeoutMs)
      return
    }
    const current = this.byPeer.get(peer)
    if (current && current.incarnation === incarnation) {
      // The same run of the peer is already up on another connection (both ends dialled): close this one unused.
      c.duplicate = true
      this.write(c, DUPLICATE, EMPTY)
      void this.end(c)
      return
    }
    this.write(c, USE, EMPTY)
    this.choose(c, h)
  }

  /**
   * A connection reached this transport itself. When it is this transport's own loop — a dialled socket whose
   * other end is one this transport accepted (a peer list naming its own address) — it is closed and never
   * redialled, quietly. Otherwise someone relayed it (a stranger holding a peer's address joined it back to this
   * node, or another node uses this id): reported, and a dialled address is redialled with backoff.
   */
  private reachedSelf(c: Conn, incarnation: string | undefined, h: TransportHandler): void {
    const s = c.socket
    const loop =
      incarnation === this.incarnation &&
      (c.dial
        ? this.loopPorts.has(`${s.localAddress}:${s.localPort}`) || [...this.conns].some((x) => !x.dial && x.socket.remotePort === s.localPort && x.socket.remoteAddress === s.localAddress)
        : true)
    if (!c.dial && incarnation === this.incarnation) {
      this.loopPorts.add(`${s.remoteAddress}:${s.remotePort}`)
      if (this.loopPorts.size > 64) this.loopPorts.delete(this.loopPorts.values().next().value as string)
    }
    c.self = loop
    c.relayed = !loop
    if (!loop) h.error(new TransportError(`tcp: a connection ${c.dial ? `to ${c.dial.addr.host ?? '127.0.0.1'}:${c.dial.addr.port}` : 'from a peer'} reached this node's own id ${JSON.stringify(this.id)} ${incarnation === this.incarnation ? 'through a relay' : 'from another node using it'}; closing it`))
    s.destroy()
  }

  /** A message from a known peer (authenticated, with a key). */
  private dispatch(c: Conn, type: number, payload: Uint8Array): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    if (type === FRAME && c.peer !== undefined) {
      // Frames count only on the connection the peer is up on (none are sent on another).
      if (this.byPeer.get(c.peer) === c) h.message(c.peer, payload)
    } else if ((type === USE || type === DUPLICATE) && c.peer !== undefined && c.incarnation !== undefined && c.peer < this.id && !c.duplicate && this.byPeer.get(c.peer) !== c) {
      if (type === USE) this.choose(c, h)
      else c.duplicate = true // the peer closes it
    } else if (type === BYE && c.peer !== undefined) {
      c.bye = true
    } else if (type === PING && c.peer !== undefined) {
      this.write(c, PONG, EMPTY)
    } else if (type === PONG && c.peer !== undefined) {
      c.pong?.()
    } else {
      h.error(new TransportError(`tcp: unexpected frame type ${type} from ${c.peer ?? 'an unidentified peer'}; closing that connection`))
      c.socket.destroy()
    }
  }
}
