/**
 * WebSocket listener for Node, built on `ws`: every client that connects and
 * says HELLO is a peer. Pair it with `webSocket(url)` on the other side.
 */
import type { Server as HttpServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { TransportError, randomId, defaultRandom, type PeerId, type Random, type Transport, type TransportHandler } from '../../src/index.js'
import { BYE, DEFAULT_CHUNK_BYTES, DEFAULT_MAX_FRAME_BYTES, HELLO, Reassembler, envelope, pieces } from './framing.js'

export interface WebSocketServerOptions {
  /** This end's peer id (default: random). */
  id?: PeerId
  /** Port to listen on (0 picks a free one; read it from `transport.port`). Ignored with `server`. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Attach to an existing HTTP server instead of listening. */
  server?: HttpServer
  /** URL path to accept (default: any). */
  path?: string
  /** Largest message sent; bigger frames are chunked (default 1 MiB). */
  chunkBytes?: number
  /** Largest reassembled frame accepted (default 256 MiB). */
  maxFrameBytes?: number
  random?: Random
}

interface Client {
  ws: WebSocket
  peer: PeerId | undefined
  bye: boolean
}

/** A transport that accepts WebSocket peers. */
export function webSocketServer(options: WebSocketServerOptions = {}): WebSocketServerTransport {
  return new WebSocketServerTransport(options)
}

export class WebSocketServerTransport implements Transport {
  readonly id: PeerId
  private readonly chunkBytes: number
  private readonly clients = new Set<Client>()
  private readonly byPeer = new Map<PeerId, Client>()
  private wss: WebSocketServer | undefined
  private handler: TransportHandler | undefined
  private state: 'new' | 'open' | 'closed' = 'new'

  constructor(private readonly options: WebSocketServerOptions = {}) {
    this.id = options.id ?? randomId(options.random ?? defaultRandom)
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES
  }

  /** The port it listens on, after `open()`. */
  get port(): number | undefined {
    const a = this.wss?.address()
    return a && typeof a === 'object' ? a.port : undefined
  }

  async open(handler: TransportHandler): Promise<void> {
    if (this.state !== 'new') throw new TransportError('webSocketServer: open() was called twice; a transport opens once (after close(), make a new one with webSocketServer(…))')
    this.handler = handler
    this.state = 'open'
    const o = this.options
    const maxPayload = this.chunkBytes + 1
    const wss = o.server
      ? new WebSocketServer({ server: o.server, path: o.path, maxPayload })
      : new WebSocketServer({ port: o.port ?? 0, host: o.host ?? '127.0.0.1', path: o.path, maxPayload })
    this.wss = wss
    wss.on('connection', (ws) => this.accept(ws))
    wss.on('error', (err) => handler.error(err))
    if (!o.server)
      await new Promise<void>((resolve, reject) => {
        wss.once('listening', resolve)
        wss.once('error', reject)
      })
  }

  send(data: Uint8Array, to?: PeerId): void {
    if (this.state !== 'open') return
    const targets = to === undefined ? this.byPeer.values() : [this.byPeer.get(to)].filter((c): c is Client => !!c)
    for (const c of targets) for (const piece of pieces(data, this.chunkBytes)) c.ws.send(piece)
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    const bye = envelope(BYE, new Uint8Array(0))
    await Promise.all(
      [...this.clients].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === c.ws.CLOSED) return resolve()
            // A peer that does not answer the close handshake is cut off after a second.
            const force = setTimeout(() => c.ws.terminate(), 1000)
            c.ws.once('close', () => {
              clearTimeout(force)
              resolve()
            })
            if (c.peer !== undefined && c.ws.readyState === c.ws.OPEN) c.ws.send(bye)
            c.ws.close(1000)
          }),
      ),
    )
    await this.closeServer()
  }

  /** Drops every connection without a goodbye, as a crash would (for tests and simulations). */
  async abort(): Promise<void> {
    this.state = 'closed'
    await Promise.all(
      [...this.clients].map((c) => new Promise<void>((resolve) => (c.ws.readyState === c.ws.CLOSED ? resolve() : (c.ws.once('close', () => resolve()), c.ws.terminate())))),
    )
    await this.closeServer()
  }

  private closeServer(): Promise<void> {
    const wss = this.wss
    this.wss = undefined
    return new Promise((resolve) => (wss ? wss.close(() => resolve()) : resolve()))
  }

  private accept(ws: WebSocket): void {
    const c: Client = { ws, peer: undefined, bye: false }
    this.clients.add(c)
    ws.binaryType = 'arraybuffer'
    const inbox = new Reassembler(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
    ws.on('message', (data: ArrayBuffer) => {
      const h = this.handler
      if (!h || this.state !== 'open') return
      const r = inbox.take(data)
      if (r.kind === 'hello') {
        if (c.peer !== undefined) return h.error(new TransportError('webSocketServer: a repeated HELLO was ignored'))
        c.peer = r.peer
        const old = this.byPeer.get(r.peer)
        this.byPeer.set(r.peer, c)
        ws.send(envelope(HELLO, new TextEncoder().encode(this.id)))
        if (old) {
          old.peer = undefined
          old.ws.terminate()
          h.peerDown(r.peer, 'lost')
        }
        h.peerUp(r.peer)
      } else if (r.kind === 'frame' && c.peer !== undefined) h.message(c.peer, r.data)
      else if (r.kind === 'bye') c.bye = true
      else if (r.kind === 'error') h.error(new TransportError(`webSocketServer: ${r.message} (from ${c.peer ?? 'an unidentified client'})`))
    })
    ws.on('error', (err) => this.handler?.error(err))
    ws.on('close', () => {
      this.clients.delete(c)
      if (c.peer !== undefined && this.byPeer.get(c.peer) === c) {
        this.byPeer.delete(c.peer)
        if (this.state === 'open') this.handler?.peerDown(c.peer, c.bye ? 'closed' : 'lost')
      }
    })
  }
}
