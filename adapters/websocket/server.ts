/**
 * WebSocket listener for Node, built on `ws`: every client that connects and
 * proves it holds the group key (or, with `insecure: true`, says HELLO) is a
 * peer. Pair it with `webSocket(url)` on the other side.
 *
 * **wss:** pass an `https.Server` (or any `tls`-backed HTTP server) as
 * `server`, and clients dial `wss://host:port/path`; the transport adds no TLS
 * of its own. TLS hides and protects the bytes from the network; the group key
 * decides who is a member (use both on an untrusted network).
 *
 * Group authentication (the default: without `key` the constructor throws
 * unless `insecure: true`): on every connection the core's handshake
 * ({@link SecureLink}, messages AUTH_HELLO and AUTH_PROOF) runs first, and the
 * client is a peer only once it has proven it holds a group key, under the id
 * it proved. The server then sends WELCOME, and every later message (DATA,
 * CHUNK, BYE, WELCOME) is sealed: tagged over a per-direction counter, or
 * encrypted with `encrypt: true`.
 *
 * Before a client is a peer, in either mode: messages of at most 4 KiB (the
 * `ws` server takes nothing larger than one chunk at all), a handshake or HELLO
 * deadline (`handshakeTimeoutMs`), and at most `maxPendingConnections` such
 * clients; one more is closed at once. A connection that claims the id of a
 * peer already up on another connection is refused unless that one is dead:
 * the server pings the old connection (WebSocket ping, answered by every
 * client's WebSocket stack) and replaces it only if no pong comes back within
 * `probeMs`.
 */
import type { Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import { WebSocketServer, type WebSocket } from 'ws'
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

  defaultRandom,
  randomId,
  realClock,
  type Clock,
  type PeerId,
  type Random,
  type Transport,
  type TransportHandler,
} from '../../src/index.js'
import { nodeCrypto } from '../node-crypto.js'
import {
  AUTH_HELLO,
  AUTH_PROOF,
  BYE,
  CLOSE_ID_IN_USE,
  CLOSE_NO_KEY,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  DEFAULT_PROBE_MS,
  HELLO,
  Reassembler,
  SEAL_OVERHEAD,
  WELCOME,
  envelope,
  messageBytes,
  parse,
  pieces,
  type Received,
} from './framing.js'

export interface WebSocketServerOptions extends TransportAuthOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** Port to listen on (0 picks a free one; read it from `transport.port`). Ignored with `server`. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /**
   * Attach to an existing HTTP server instead of listening. An `https.Server`
   * gives `wss:` (clients dial `wss://…`). The transport neither starts nor
   * closes it.
   */
  server?: HttpServer | HttpsServer
  /** URL path to accept (default: any). */
  path?: string
  /** Largest message sent; bigger frames are chunked (default 1 MiB). Clients must not use a larger one: no bigger message is accepted. */
  chunkBytes?: number
  /** Largest reassembled frame accepted (default 256 MiB). */
  maxFrameBytes?: number
  /** Most connections that have not completed their handshake (or HELLO) at once; one more is closed at once (default 64). */
  maxPendingConnections?: number
  /** How long a connected peer has to answer a ping when another connection claims its id (default 1000 ms). */
  probeMs?: number
  /** Clock for the handshake deadline and the probe (default real time). */
  clock?: Clock
  random?: Random
}

interface Client {
  ws: WebSocket
  /** The id it proved (with a key) or claimed (HELLO), once known. */
  peer: PeerId | undefined
  /** It is the connection `peer` is up on. */
  up: boolean
  bye: boolean
  inbox: Reassembler
  /** The authenticated session, with a key. */
  link: SecureLink | undefined
  /** The insecure HELLO deadline. */
  deadline: unknown
  /** Waiting for the peer's current connection to be probed. */
  waiting: boolean
  /** Called with `true` on a pong, `false` when the connection closes, while it is being probed. */
  probes: Set<(alive: boolean) => void>
  /** Resolves once a BYE has gone out (close()). */
  byeSent: (() => void) | undefined
}

const OPEN = 1
const EMPTY = new Uint8Array(0)

/** A transport that accepts WebSocket peers. */
export function webSocketServer(options: WebSocketServerOptions = {}): WebSocketServerTransport {
  return new WebSocketServerTransport(options)
}

export class WebSocketServerTransport implements Transport {
  readonly id: PeerId
  private readonly chunkBytes: number
  private readonly clock: Clock
  private readonly keys: Promise<GroupKeys> | undefined
  private groupKeys: GroupKeys | undefined
  /** Tells a restart of this end from another connection of the same run. */
  private readonly incarnation: string
  private readonly clients = new Set<Client>()
  private readonly byPeer = new Map<PeerId, Client>()
  private readonly timers = new Set<unknown>()
  private wss: WebSocketServer | undefined
  private handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(private readonly options: WebSocketServerOptions = {}) {
    const random = options.random ?? defaultRandom
    this.id = options.id ?? randomId(random)
    checkPeerId(this.id, 'webSocketServer')
    this.incarnation = `${this.id}@${randomId(random)}`
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES
    this.clock = options.clock ?? realClock
    this.keys = transportKeys(options, 'webSocketServer', 'webSocketServer({ …, key: process.env.UNDERSTUDY_KEY })', nodeCrypto)
  }

  /** Whether clients must prove they hold the group key. */
  get authenticated(): boolean {
    return this.keys !== undefined
  }

  /** The port it listens on, after `open()`. */
  get port(): number | undefined {
    const a = this.wss?.address()
    return a && typeof a === 'object' ? a.port : undefined
  }

  /** Peers that are up. */
  get peers(): PeerId[] {
    return [...this.byPeer.keys()]
  }

  async open(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new TransportError('webSocketServer: open() was called twice; a transport opens once (after close(), make a new one with webSocketServer(…))')
    this.handler = handler
    this.state = 'open'
    this.groupKeys = await this.keys
    const o = this.options
    // No message larger than one chunk (sealed) is read at all; before a client is a peer, 4 KiB (checked per message).
    const maxPayload = Math.max(this.chunkBytes + 1 + SEAL_OVERHEAD, PREAUTH_MAX_BYTES + 1)
    const wss = o.server
      ? new WebSocketServer({ server: o.server, path: o.path, maxPayload })
      : new WebSocketServer({ port: o.port ?? 0, host: o.host ?? '127.0.0.1', path: o.path, maxPayload })
    this.wss = wss
    wss.on('connection', (ws, req) => this.accept(ws, req.socket.remoteAddress))
    wss.on('error', (err) => handler.error(err))
    if (!o.server)
      await new Promise<void>((resolve, reject) => {
        wss.once('listening', resolve)
        wss.once('error', reject)
      })
  }

  send(data: Uint8Array, to?: PeerId): void {
    if (this.state !== 'open') return
    const targets = to === undefined ? [...this.byPeer.values()] : [this.byPeer.get(to)].filter((c): c is Client => !!c)
    if (targets.length === 0) return
    // Asynchronous primitives read a message after send() returns: seal a copy, so the caller may reuse `data`.
    const bytes = this.groupKeys && this.groupKeys.crypto !== nodeCrypto ? data.slice() : data
    for (const c of targets) for (const [type, body] of pieces(bytes, this.chunkBytes)) this.write(c, type, body)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.clearTimers(false)
    await Promise.all(
      [...this.clients].map(async (c) => {
        if (c.ws.readyState === c.ws.CLOSED) return
        if (c.up && c.ws.readyState === OPEN) await this.bye(c)
        await new Promise<void>((resolve) => {
          if (c.ws.readyState === c.ws.CLOSED) return resolve()
          // A peer that does not answer the close handshake is cut off after a second.
          const force = setTimeout(() => c.ws.terminate(), 1000)
          c.ws.once('close', () => {
            clearTimeout(force)
            resolve()
          })
          c.ws.close(1000)
        })
      }),
    )
    await this.closeServer()
  }

  /** Drops every connection without a goodbye, as a crash would (for tests and simulations). */
  async abort(): Promise<void> {
    this.state = 'closed'
    this.clearTimers(true)
    await Promise.all(
      [...this.clients].map((c) => new Promise<void>((resolve) => (c.ws.readyState === c.ws.CLOSED ? resolve() : (c.ws.once('close', () => resolve()), c.ws.terminate())))),
    )
    await this.closeServer()
  }

  /** Stops every timer: probes, HELLO deadlines, and the sessions of clients that are not peers (of all, with `all`; a peer's still sends its BYE). */
  private clearTimers(all: boolean): void {
    for (const t of this.timers) this.clock.clearTimeout(t)
    this.timers.clear()
    for (const c of this.clients) {
      if (all || !c.up) c.link?.close()
      this.clock.clearTimeout(c.deadline)
    }
  }

  /** Sends BYE and resolves once it is on its way (sealing may be asynchronous), within a second. */
  private bye(c: Client): Promise<void> {
    if (!c.link) {
      c.ws.send(envelope(BYE, []))
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, 1000)
      function done() {
        clearTimeout(t)
        c.byeSent = undefined
        resolve()
      }
      c.byeSent = done
      c.ws.once('close', done)
      c.link?.send(BYE, EMPTY)
    })
  }

  private closeServer(): Promise<void> {
    const wss = this.wss
    this.wss = undefined
    return new Promise((resolve) => (wss ? wss.close(() => resolve()) : resolve()))
  }

  /** Writes one message to `c`: sealed with a key, as is without. */
  private write(c: Client, type: number, body: Uint8Array): void {
    if (c.ws.readyState !== OPEN) return
    if (c.link) c.link.send(type, body)
    else c.ws.send(envelope(type, [body]))
  }

  /**
   * Ends a connection, reporting why: at once, or with a close code and
   * reason the client reports (a client that does not finish the close
   * handshake is cut off after a second).
   */
  private refuse(c: Client, err: Error, code?: number, reason?: string): void {
    this.handler?.error(err)
    c.link?.close()
    if (code === undefined || c.ws.readyState !== OPEN) return void c.ws.terminate()
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t)
      c.ws.terminate()
    }, 1000)
    this.timers.add(t)
    c.ws.once('close', () => {
      this.clock.clearTimeout(t)
      this.timers.delete(t)
    })
    c.ws.close(code, reason)
  }

  private accept(ws: WebSocket, from: string | undefined): void {
    const h = this.handler
    if (!h || this.state !== 'open') return void ws.terminate()
    const where = from ?? 'an unknown address'
    const cap = this.options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS
    let pending = 0
    for (const c of this.clients) if (!c.up) pending++
    if (pending >= cap) {
      ws.terminate()
      h.error(new TransportError(`webSocketServer: ${pending} connections have not completed their handshake (maxPendingConnections ${cap}); refused one more from ${where}`))
      return
    }
    const c: Client = {
      ws,
      peer: undefined,
      up: false,
      bye: false,
      inbox: new Reassembler(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
      link: undefined,
      deadline: undefined,
      waiting: false,
      probes: new Set(),
      byeSent: undefined,
    }
    this.clients.add(c)
    ws.binaryType = 'arraybuffer'
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
    const keys = this.groupKeys
    if (keys) {
      c.link = new SecureLink({
        keys,
        self: { id: this.id, incarnation: this.incarnation },
        dialer: false,
        types: { hello: AUTH_HELLO, proof: AUTH_PROOF },
        clock: this.clock,
        handshakeTimeoutMs: timeoutMs,
        write: (type, parts) => {
          if (ws.readyState === OPEN) ws.send(envelope(type, parts))
          if (type === BYE) c.byeSent?.()
        },
        established: (peer) => this.greet(c, peer.id),
        message: (type, payload) => (type === HELLO ? this.refuse(c, new TransportError(`webSocketServer: peer ${JSON.stringify(c.peer)} sent a second HELLO; closed`)) : this.handle(c, c.inbox.take(type, payload))),
        failed: (error) => this.refuse(c, new AuthError(error.reason, `webSocketServer: ${error.message} (a connection from ${where}); closed`)),
      })
    } else
      c.deadline = this.clock.setTimeout(() => {
        if (c.peer === undefined && ws.readyState <= OPEN) this.refuse(c, new TransportError(`webSocketServer: a connection from ${where} sent no HELLO within ${timeoutMs} ms; closed`))
      }, timeoutMs)
    ws.on('message', (data: ArrayBuffer, isBinary: boolean) => {
      if (!this.handler || this.state !== 'open') return
      const known = c.link ? c.link.established : c.peer !== undefined
      if (!known && messageBytes(data) > PREAUTH_MAX_BYTES + 1)
        return this.refuse(c, new TransportError(`webSocketServer: a message of ${messageBytes(data)} bytes from ${where} before it completed its handshake (at most ${PREAUTH_MAX_BYTES + 1}); closed`))
      const m = isBinary ? parse(data) : parse(undefined)
      if (typeof m === 'string') {
        const err = new TransportError(`webSocketServer: ${m} (from ${c.peer ?? `an unidentified client at ${where}`})`)
        return known ? this.handler.error(err) : this.refuse(c, err)
      }
      if (c.link) {
        if (m.type === HELLO && !c.link.established)
          return this.refuse(c, new AuthError('UNAUTHENTICATED', `webSocketServer: a client at ${where} has no group key (it said a plain HELLO: an insecure transport, or a stranger); give it the group's key. Closed`))
        c.link.receive(m.type, m.body)
      } else {
        if (m.type === AUTH_HELLO || m.type === AUTH_PROOF)
          return this.refuse(
            c,
            new AuthError('REFUSED', `webSocketServer: a client at ${where} requires group authentication, but this server has no key (insecure: true); give it the group's key. Closed`),
            CLOSE_NO_KEY,
            'this server has no group key (insecure)',
          )
        this.handle(c, c.inbox.take(m.type, m.body))
      }
    })
    ws.on('pong', () => {
      for (const p of [...c.probes]) p(true)
    })
    ws.on('error', (err) => this.handler?.error(err))
    ws.on('close', () => {
      this.clients.delete(c)
      c.link?.close()
      this.clock.clearTimeout(c.deadline)
      c.byeSent?.()
      if (c.up && c.peer !== undefined && this.byPeer.get(c.peer) === c) {
        c.up = false
        this.byPeer.delete(c.peer)
        if (this.state === 'open') this.handler?.peerDown(c.peer, c.bye ? 'closed' : 'lost')
      }
      // A connection that claims this one's id need not wait for the probe.
      for (const p of [...c.probes]) p(false)
    })
    c.link?.start()
  }

  private handle(c: Client, r: Received): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    if (r.kind === 'hello') {
      if (c.peer !== undefined) return this.refuse(c, new TransportError(`webSocketServer: peer ${JSON.stringify(c.peer)} sent a second HELLO; closed`))
      this.greet(c, r.peer)
    } else if (r.kind === 'frame') {
      if (c.up) h.message(c.peer as PeerId, r.data)
    } else if (r.kind === 'bye') {
      if (c.up) c.bye = true
    } else if (r.kind === 'error') h.error(new TransportError(`webSocketServer: ${r.message} (from ${c.peer ?? 'an unidentified client'})`))
  }

  /** The client on `c` is `peer` (proven with a key, claimed without). */
  private greet(c: Client, peer: PeerId): void {
    const h = this.handler
    if (!h || this.state !== 'open') return
    this.clock.clearTimeout(c.deadline)
    c.peer = peer
    if (peer === this.id) return this.refuse(c, new TransportError(`webSocketServer: a client uses this server's own id ${JSON.stringify(peer)}; closed`))
    this.choose(c, h)
  }

  /**
   * Makes `c` the connection `c.peer` is up on. Another connection the peer is
   * already up on is replaced at once if it is closing or its client said BYE;
   * otherwise only once it is known dead (a restarted client whose old
   * connection has not closed yet): it is pinged, and `c` is refused if it
   * answers within `probeMs` — an id is bound to its live session.
   */
  private choose(c: Client, h: TransportHandler): void {
    const peer = c.peer as PeerId
    const old = this.byPeer.get(peer)
    // Known dead: closed or closing, or its client said goodbye.
    if (!old || old.ws.readyState !== OPEN || old.bye) {
      if (old) {
        this.byPeer.delete(peer)
        old.up = false
        old.ws.terminate()
        h.peerDown(peer, old.bye ? 'closed' : 'lost')
      }
      return this.welcome(c, h)
    }
    if (old === c || c.waiting) return
    c.waiting = true
    const probeMs = this.options.probeMs ?? DEFAULT_PROBE_MS
    const decide = (alive: boolean) => {
      this.clock.clearTimeout(t)
      this.timers.delete(t)
      old.probes.delete(decide)
      c.waiting = false
      if (this.state !== 'open' || c.ws.readyState !== OPEN) return
      if (alive && old.ws.readyState === OPEN && this.byPeer.get(peer) === old)
        return this.refuse(
          c,
          new TransportError(`webSocketServer: a second connection claims peer id ${JSON.stringify(peer)}, which is connected and answering on another; refused the new one`),
          CLOSE_ID_IN_USE,
          'this peer id is connected and answering on another connection',
        )
      if (this.byPeer.get(peer) === old) {
        // No answer: the old connection is dead (its client restarted or vanished).
        this.byPeer.delete(peer)
        old.up = false
        old.ws.terminate()
        h.peerDown(peer, 'lost')
      }
      this.choose(c, h)
    }
    old.probes.add(decide)
    const t = this.clock.setTimeout(() => decide(false), probeMs)
    this.timers.add(t)
    try {
      old.ws.ping()
    } catch {
      decide(false)
    }
  }

  /** `c` is the connection its peer is up on: tell the client, then the node. */
  private welcome(c: Client, h: TransportHandler): void {
    const peer = c.peer as PeerId
    c.up = true
    this.byPeer.set(peer, c)
    if (c.link) this.write(c, WELCOME, EMPTY)
    else this.write(c, HELLO, new TextEncoder().encode(this.id))
    h.peerUp(peer)
  }
}
