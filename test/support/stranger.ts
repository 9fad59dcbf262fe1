/**
 * A stranger on a node's port: anything that can open a connection and write
 * bytes, with none of the group's keys. Speaks the TCP transport's wire
 * (`u32 length | u8 type | payload`) or sends raw WebSocket messages, and
 * records what the node sends back.
 */
import { connect, type Socket } from 'node:net'
import { GroupKeys, Handshake, type RoleName } from 'understudy-ha'
import { writeHello, writeSnapshot } from '../../src/codec/frames.js'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'

/** TCP transport message types (adapters/tcp.ts). */
export const TCP = { HELLO: 0, FRAME: 1, BYE: 2, USE: 3, DUPLICATE: 4, AUTH_HELLO: 5, AUTH_PROOF: 6, PING: 7, PONG: 8 } as const

export interface Stranger {
  /** Every byte the node sent. */
  readonly received: () => Buffer
  /** Resolves once the node closed the connection (or rejects after `ms`). */
  closed(ms?: number): Promise<void>
  readonly isClosed: () => boolean
  send(type: number, payload: Uint8Array): void
  raw(bytes: Uint8Array): void
  destroy(): void
}

export async function tcpStranger(port: number): Promise<Stranger> {
  const socket: Socket = connect({ port, host: '127.0.0.1' })
  const chunks: Buffer[] = []
  let isClosed = false
  const closing = new Promise<void>((r) => socket.once('close', () => ((isClosed = true), r())))
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  await new Promise<void>((r, j) => (socket.once('connect', () => r()), socket.once('error', j)))
  return {
    received: () => Buffer.concat(chunks),
    isClosed: () => isClosed,
    closed: (ms = 3000) => Promise.race([closing, new Promise<void>((_, j) => setTimeout(() => j(new Error(`the node did not close the stranger's connection within ${ms} ms`)), ms).unref())]),
    send(type, payload) {
      const head = Buffer.alloc(5)
      head.writeUInt32BE(payload.length + 1, 0)
      head[4] = type
      if (!socket.destroyed) socket.write(Buffer.concat([head, payload]))
    },
    raw: (bytes) => void (socket.destroyed || socket.write(bytes)),
    destroy: () => socket.destroy(),
  }
}

/** The plain (unauthenticated) TCP HELLO payload: `id\0incarnation`. */
export const plainHello = (id: string, incarnation = `${id}@x`) => new TextEncoder().encode(`${id}\0${incarnation}`)

/** A node-level HELLO frame claiming `role` at `epoch`/`seq`. */
export const helloFrame = (group: string, node: string, role: RoleName, epoch: number, seq: number) => writeHello({ group, node, role, epoch, seq, incarnation: `${node}@forged` })

/** A forged snapshot frame: one root `r` holding `{ forged: true }` (shape of the wire body, see src/graph/wire.ts). */
export const forgedSnapshot = (epoch: number, seq: number) => writeSnapshot(epoch, seq, [[], []] as never)

/** A handshake HELLO made with a key the group does not hold (a member of another group, or a guess). */
export async function foreignAuthHello(id: string): Promise<Uint8Array> {
  const keys = await GroupKeys.create({ key: 'not-the-group-key-at-all-0000', crypto: nodeCrypto }, 'stranger')
  return new Handshake(keys, { id, incarnation: `${id}@stranger` }).hello
}
