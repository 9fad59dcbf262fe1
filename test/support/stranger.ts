/**
 * A stranger on a node's port: anything that can open a connection and write
 * bytes, with none of the group's keys — over TCP (the transport's wire,
 * `u32 length | u8 type | payload`) or WebSocket (a raw `ws` client, one
 * message `u8 type | payload` each) — and the leased group it attacks, with a
 * writer committing throughout.
 */
import { connect, type Socket } from 'node:net'
import { WebSocket } from 'ws'
import { GroupKeys, Handshake, MemoryLeaseStore, Understudy, realClock, type RoleName, type Transport } from 'understudy-ha'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { tcp } from 'understudy-ha/adapters/tcp'
import { webSocket } from 'understudy-ha/adapters/websocket'
import { webSocketServer } from 'understudy-ha/adapters/websocket/server'
import { writeHello, writeSnapshot } from '../../src/codec/frames.js'
import { TEST_KEY } from './group-key.js'

export type Kind = 'tcp' | 'websocket'

/** Message types by name, per wire (adapters/tcp.ts, adapters/websocket/framing.ts). */
const TYPES = {
  tcp: { hello: 0, frame: 1, bye: 2, use: 3, authHello: 5, authProof: 6 },
  websocket: { hello: 0, frame: 1, bye: 3, use: -1, authHello: 4, authProof: 5 },
} as const
export type MessageName = keyof (typeof TYPES)['tcp']

export interface Stranger {
  /** Sends one message of the wire's type `name` (a TCP-only type is skipped on WebSocket). */
  send(name: MessageName, payload: Uint8Array): void
  /** Sends bytes as they are: a stream chunk on TCP, one message on WebSocket. */
  raw(bytes: Uint8Array): void
  /** The types of the messages the node sent, and their payloads' total size. */
  receivedTypes(): number[]
  /** Everything the node sent, concatenated. */
  received(): Buffer
  /** Resolves once the node closed the connection (rejects after `ms`). */
  closed(ms?: number): Promise<void>
  isClosed(): boolean
}

function closedWithin(closing: Promise<void>, ms: number): Promise<void> {
  return Promise.race([closing, new Promise<void>((_, j) => setTimeout(() => j(new Error(`the node did not close the stranger's connection within ${ms} ms`)), ms).unref())])
}

export async function tcpStranger(port: number): Promise<Stranger> {
  const socket: Socket = connect({ port, host: '127.0.0.1' })
  const chunks: Buffer[] = []
  let isClosed = false
  const closing = new Promise<void>((r) => socket.once('close', () => ((isClosed = true), r())))
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  await new Promise<void>((r, j) => (socket.once('connect', () => r()), socket.once('error', j)))
  const received = () => Buffer.concat(chunks)
  return {
    send(name, payload) {
      const head = Buffer.alloc(5)
      head.writeUInt32BE(payload.length + 1, 0)
      head[4] = TYPES.tcp[name]
      if (!socket.destroyed) socket.write(Buffer.concat([head, payload]))
    },
    raw: (bytes) => void (socket.destroyed || socket.write(bytes)),
    received,
    receivedTypes() {
      const b = received()
      const types: number[] = []
      for (let at = 0; at + 5 <= b.length; at += 4 + b.readUInt32BE(at)) types.push(b[at + 4] as number)
      return types
    },
    closed: (ms = 3000) => closedWithin(closing, ms),
    isClosed: () => isClosed,
  }
}

export async function wsStranger(url: string): Promise<Stranger> {
  const ws = new WebSocket(url)
  const messages: Buffer[] = []
  let isClosed = false
  const closing = new Promise<void>((r) => ws.once('close', () => ((isClosed = true), r())))
  ws.on('message', (d: Buffer) => messages.push(d))
  ws.on('error', () => {})
  await new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j)))
  const open = () => ws.readyState === WebSocket.OPEN
  return {
    send(name, payload) {
      const type = TYPES.websocket[name]
      if (type >= 0 && open()) ws.send(Buffer.concat([Buffer.from([type]), payload]))
    },
    raw: (bytes) => void (open() && ws.send(bytes)),
    received: () => Buffer.concat(messages),
    receivedTypes: () => messages.map((m) => m[0] as number),
    closed: (ms = 3000) => closedWithin(closing, ms),
    isClosed: () => isClosed,
  }
}

/** The type of a handshake HELLO on each wire. */
export const authHelloType = (kind: Kind) => TYPES[kind].authHello

/** The plain (unauthenticated) HELLO payload: `id\0incarnation` on TCP, the id on WebSocket. */
export const plainHello = (kind: Kind, id: string, incarnation = `${id}@x`) => new TextEncoder().encode(kind === 'tcp' ? `${id}\0${incarnation}` : id)

/** A node-level HELLO frame claiming `role` at `epoch`/`seq`. */
export const helloFrame = (group: string, node: string, role: RoleName, epoch: number, seq: number) => writeHello({ group, node, role, epoch, seq, incarnation: `${node}@forged` })

/** A forged snapshot frame (an empty graph at `epoch`/`seq`). */
export const forgedSnapshot = (epoch: number, seq: number) => writeSnapshot(epoch, seq, [[], []] as never)

/** A handshake HELLO made with a key the group does not hold (a member of another group, or a guess). */
export async function foreignAuthHello(id: string): Promise<Uint8Array> {
  const keys = await GroupKeys.create({ key: 'not-the-group-key-at-all-0000', crypto: nodeCrypto }, 'stranger')
  return new Handshake(keys, { id, incarnation: `${id}@stranger` }).hello
}

export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export const GROUP = 'payroll-secret-group'
export const HEARTBEAT = { intervalMs: 50, timeoutMs: 250 }

/** A leased group of two under attack: `a` active (listening), `b` its standby (dialling), a writer committing on `a`. */
export interface Lab {
  kind: Kind
  a: Understudy
  b: Understudy
  lease: MemoryLeaseStore
  errors: Error[]
  peers: string[]
  writer: { ok: number; failed: Error[]; stop(): Promise<void> }
  stranger(): Promise<Stranger>
  close(): Promise<void>
}

export async function lab(kind: Kind, auth: { key: string } | { insecure: true } = { key: TEST_KEY }): Promise<Lab> {
  const lease = new MemoryLeaseStore(realClock)
  const fast = { initialMs: 5, maxMs: 50 }
  const limits = { handshakeTimeoutMs: 400, maxPendingConnections: 8 }
  const ta = kind === 'tcp' ? tcp({ ...auth, ...limits, id: 'a', listen: { port: 0 } }) : webSocketServer({ ...auth, ...limits, id: 'a', port: 0 })
  const a = await Understudy.start({ group: GROUP, transport: ta, lease, heartbeat: HEARTBEAT })
  await until(() => a.role === 'active', 'a is active')
  const port = ta.port as number
  const url = `ws://127.0.0.1:${port}`
  const tb: Transport = kind === 'tcp' ? tcp({ ...auth, id: 'b', connect: { port }, backoff: fast }) : webSocket(url, { ...auth, crypto: nodeCrypto, id: 'b', backoff: fast })
  const b = await Understudy.start({ group: GROUP, transport: tb, lease, heartbeat: HEARTBEAT })
  const errors: Error[] = []
  const peers: string[] = []
  a.on('error', ({ error }) => errors.push(error))
  a.on('peer', ({ peer, up }) => peers.push(`${peer} ${up ? 'up' : 'down'}`))
  const root = a.register('r', { n: 0, items: [] as number[] })
  await until(() => a.stats().standbys === 1 && b.root('r') !== undefined, 'b follows a')
  let stopped = false
  const writer = { ok: 0, failed: [] as Error[], stop: async () => {} }
  const loop = (async () => {
    while (!stopped) {
      root.n++
      root.items.push(root.n)
      if (root.items.length > 50) root.items.shift()
      try {
        await a.commit()
        writer.ok++
      } catch (err) {
        writer.failed.push(err as Error)
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  })()
  writer.stop = async () => {
    stopped = true
    await loop
  }
  return {
    kind,
    a,
    b,
    lease,
    errors,
    peers,
    writer,
    stranger: () => (kind === 'tcp' ? tcpStranger(port) : wsStranger(url)),
    close: async () => {
      await writer.stop()
      await Promise.all([a.close(), b.close()])
    },
  }
}
