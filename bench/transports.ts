/**
 * Per transport, in one run:
 * - sync commit round trip (one small change, `await commit()`), p50/p99, beside
 *   the raw transport's round trip for the same bytes (a delta-sized message out,
 *   an ack-sized message back) and the time to encode that delta;
 * - replicated property sets per second (batches of 10,000 sets, sync commit per
 *   batch), beside the raw transport moving the same frames' bytes.
 * Both nodes live in this process, so each figure includes both ends' work.
 */
import { createConnection, createServer, type Socket } from 'node:net'
import { TEST_KEY } from '../test/support/group-key.js'
import { WebSocket, WebSocketServer } from 'ws'
import { Understudy, type Transport } from '../src/index.js'
import { writeDelta } from '../src/codec/frames.js'
import { broadcastChannel } from '../adapters/broadcast-channel.js'
import { tcp, type TcpTransport } from '../adapters/tcp.js'
import { webSocket } from '../adapters/websocket/client.js'
import { webSocketServer, type WebSocketServerTransport } from '../adapters/websocket/server.js'
import { nodeCrypto } from '../adapters/node-crypto.js'

const RTT_SAMPLES = Number(process.env.RTT_SAMPLES ?? 5000)
/** Untimed commits first: V8 needs thousands of round trips to reach steady state here (measured: 55 → 21 µs per commit over 20,000). */
const RTT_WARMUP = Number(process.env.RTT_WARMUP ?? 10_000)
const BATCHES = Number(process.env.SET_BATCHES ?? 50)
const PER_BATCH = 10_000

interface Kind {
  name: string
  pair(): Promise<[Transport, Transport, () => Promise<void>]>
  raw(): Promise<Raw>
}

/** A raw echo channel: `send` bytes one way, the far end answers with `reply` bytes. */
interface Raw {
  roundTrip(out: Uint8Array, back: Uint8Array): Promise<number>
  stream(frames: Uint8Array[]): Promise<number>
  close(): Promise<void>
}

/** Waits (bounded) until the standby follows the active: a commit before that would not wait for it (a lone active is degraded). */
async function joined(active: Understudy, standby: Understudy): Promise<void> {
  for (let i = 0; i < 5000 && !(active.stats().standbys >= 1 && standby.root('r') !== undefined); i++) await new Promise((r) => setTimeout(r, 2))
  if (standby.root('r') === undefined) throw new Error('the standby did not join within 10 s')
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number

async function commitRtt(a: Transport, b: Transport): Promise<{ p50: number; p99: number; frame: Uint8Array }> {
  const active = await Understudy.start({ group: 'bench', transport: a, role: 'active' })
  const standby = await Understudy.start({ group: 'bench', transport: b })
  const root = active.register('r', { n: 0 })
  await active.commit()
  await joined(active, standby)
  const times: number[] = []
  for (let i = 0; i < RTT_SAMPLES + RTT_WARMUP; i++) {
    root.n = i
    const t = performance.now()
    await active.commit()
    if (i >= RTT_WARMUP) times.push(performance.now() - t)
  }
  if ((standby.root('r') as { n: number }).n !== RTT_SAMPLES + RTT_WARMUP - 1) throw new Error('standby did not converge')
  await active.close()
  await standby.close()
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), frame: writeDelta(1, 12345, [[], [], [1, ['n', 123456]], []]) }
}

async function setsPerSecond(a: Transport, b: Transport): Promise<{ rate: number; frames: Uint8Array[] }> {
  const frames: Uint8Array[] = []
  const send = a.send.bind(a)
  a.send = (d, to) => {
    if (d.length > 1000) frames.push(new Uint8Array(d))
    return send(d, to)
  }
  const active = await Understudy.start({ group: 'bench', transport: a, role: 'active' })
  const standby = await Understudy.start({ group: 'bench', transport: b })
  const items = Array.from({ length: PER_BATCH }, (_, i) => ({ id: i, count: 0, name: '' }))
  const root = active.register('r', { items })
  await active.commit()
  await joined(active, standby)
  const held = Array.from({ length: PER_BATCH }, (_, i) => root.items[i] as { count: number; name: string })
  const batch = async (b: number) => {
    for (let i = 0; i < PER_BATCH; i++) {
      const it = held[i] as { count: number; name: string }
      if (i % 5 < 3) it.count = b * PER_BATCH + i
      else it.name = `n${b}-${i}`
    }
    await active.commit()
  }
  // Untimed warm-up, so the JIT has optimised both ends before we measure.
  for (let b = 0; b < 2 * BATCHES; b++) await batch(b)
  frames.length = 0
  const t = performance.now()
  for (let b = 0; b < BATCHES; b++) await batch(b)
  const ms = performance.now() - t
  const last = (standby.root('r') as { items: { count: number }[] }).items[0]?.count
  if (last !== (BATCHES - 1) * PER_BATCH) throw new Error(`standby did not converge (${last})`)
  void last
  await active.close()
  await standby.close()
  return { rate: (BATCHES * PER_BATCH) / (ms / 1000), frames }
}

// ---- raw baselines ----------------------------------------------------------

/** The bare ends of a transport: A sends, B counts and answers. */
interface Wire {
  sendA(d: Uint8Array): void
  sendB(d: Uint8Array): void
  /** Calls `onA` for each message at A and `onB` for each at B. */
  listen(onA: () => void, onB: () => void): void
  close(): Promise<void>
}

/** Round trips (B answers each message) and streams (B answers the last) over a wire. */
function harness(wire: Wire): Raw {
  let reply: Uint8Array = new Uint8Array(1)
  let expect = 0
  let got = 0
  let done: (() => void) | undefined
  wire.listen(
    () => done?.(),
    () => {
      if (++got === expect) wire.sendB(reply)
    },
  )
  const exchange = (frames: Uint8Array[]) =>
    new Promise<void>((r) => {
      got = 0
      expect = frames.length
      done = r
      for (const f of frames) wire.sendA(f)
    })
  return {
    async roundTrip(out, back) {
      reply = back
      const times: number[] = []
      for (let i = 0; i < RTT_SAMPLES + RTT_WARMUP; i++) {
        const t = performance.now()
        await exchange([out])
        if (i >= RTT_WARMUP) times.push(performance.now() - t)
      }
      return pct(times, 0.5)
    },
    async stream(frames) {
      await exchange(frames) // warm-up round
      const t = performance.now()
      await exchange(frames)
      return performance.now() - t
    },
    close: () => wire.close(),
  }
}

function rawBroadcastChannel(): Raw {
  const name = `raw-${Math.random()}`
  const a = new BroadcastChannel(name)
  const b = new BroadcastChannel(name)
  return harness({
    sendA: (d) => a.postMessage(new Uint8Array(d)),
    sendB: (d) => b.postMessage(new Uint8Array(d)),
    listen(onA, onB) {
      a.onmessage = onA
      b.onmessage = onB
    },
    async close() {
      a.close()
      b.close()
    },
  })
}

/** Length-prefixed writes on a socket, calling `on` per complete message. */
function framed(s: Socket, on: () => void): (d: Uint8Array) => void {
  let buf = Buffer.alloc(0)
  s.on('data', (c: Buffer) => {
    buf = (buf.length ? Buffer.concat([buf, c]) : c) as Buffer<ArrayBuffer>
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      buf = buf.subarray(4 + buf.readUInt32BE(0))
      on()
    }
  })
  return (d) => {
    const h = Buffer.allocUnsafe(4)
    h.writeUInt32BE(d.length)
    s.cork()
    s.write(h)
    s.write(d)
    s.uncork()
  }
}

/** One socket pair: length-prefixed frames over TCP, or messages over WebSocket. */
async function rawSocket(kind: 'tcp' | 'ws'): Promise<Raw> {
  const relay = { a: () => {}, b: () => {} }
  if (kind === 'tcp') {
    const server = createServer({ noDelay: true })
    const accepted = new Promise<Socket>((r) => server.once('connection', r))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const client = createConnection({ port: (server.address() as { port: number }).port, host: '127.0.0.1', noDelay: true })
    await new Promise((r) => client.once('connect', r))
    const side = await accepted
    side.setNoDelay(true)
    const sendA = framed(client, () => relay.a())
    const sendB = framed(side, () => relay.b())
    return harness({
      sendA,
      sendB,
      listen: (onA, onB) => Object.assign(relay, { a: onA, b: onB }),
      async close() {
        client.destroy()
        side.destroy()
        await new Promise<void>((r) => server.close(() => r()))
      },
    })
  }
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((r) => wss.once('listening', r))
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', r))
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`)
  await new Promise((r) => client.once('open', r))
  const side = await accepted
  return harness({
    sendA: (d) => client.send(d),
    sendB: (d) => side.send(d),
    listen(onA, onB) {
      client.on('message', onA)
      side.on('message', onB)
    },
    async close() {
      client.terminate()
      side.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    },
  })
}

const KINDS: Kind[] = [
  {
    name: 'broadcast-channel',
    async pair() {
      const name = `bench-${Math.random()}`
      return [broadcastChannel(name, { id: 'a' }), broadcastChannel(name, { id: 'b' }), async () => {}]
    },
    raw: async () => rawBroadcastChannel(),
  },
  ...(['insecure', 'hmac', 'aes-gcm'] as const).map(
    (auth): Kind => ({
      name: auth === 'hmac' ? 'tcp' : `tcp (${auth})`,
      async pair() {
        const opts = auth === 'insecure' ? { insecure: true } : { key: TEST_KEY, encrypt: auth === 'aes-gcm' }
        const a = tcp({ ...opts, id: 'a', listen: { port: 0 } })
        await a.open({ message() {}, peerUp() {}, peerDown() {}, error() {} })
        const port = a.port as number
        await a.close()
        return [tcp({ ...opts, id: 'a', listen: { port } }), tcp({ ...opts, id: 'b', connect: { port } }), async () => {}]
      },
      raw: () => rawSocket('tcp'),
    }),
  ),
  ...(['insecure', 'hmac', 'aes-gcm'] as const).map(
    (auth): Kind => ({
      name: auth === 'hmac' ? 'websocket' : `websocket (${auth})`,
      async pair() {
        // The client in Node on nodeCrypto, as the adapter's docs advise (its default, WebCrypto, is for browsers).
        const opts = auth === 'insecure' ? { insecure: true } : { key: TEST_KEY, encrypt: auth === 'aes-gcm', crypto: nodeCrypto }
        const s = webSocketServer({ ...opts, id: 'a', port: 0 })
        await s.open({ message() {}, peerUp() {}, peerDown() {}, error() {} })
        const port = (s as WebSocketServerTransport).port as number
        await s.close()
        return [webSocketServer({ ...opts, id: 'a', port }), webSocket(`ws://127.0.0.1:${port}`, { ...opts, id: 'b' }), async () => {}]
      },
      raw: () => rawSocket('ws'),
    }),
  ),
]
void (null as unknown as TcpTransport)

function encodeMicros(frame: Uint8Array): number {
  const body: Parameters<typeof writeDelta>[2] = [[], [], [1, ['n', 123456]], []]
  const n = 20_000
  const t = performance.now()
  for (let i = 0; i < n; i++) writeDelta(1, i, body)
  void frame
  return ((performance.now() - t) / n) * 1000
}

export interface TransportFigures {
  name: string
  p50: number
  p99: number
  rawRtt: number
  encodeUs: number
  setsPerSec: number
  rawBytesPerSec: number
  rawSetsPerSec: number
}

/** Measures one transport in this process (run in a fresh process per round by `runTransports`). */
export async function measureTransport(name: string): Promise<TransportFigures> {
  const k = KINDS.find((x) => x.name === name)
  if (!k) throw new Error(`unknown transport ${name}`)
  const [a1, b1] = await k.pair()
  const rtt = await commitRtt(a1, b1)
  const [a2, b2] = await k.pair()
  const sets = await setsPerSecond(a2, b2)
  const raw = await k.raw()
  const rawRtt = await raw.roundTrip(rtt.frame, new Uint8Array(7))
  const rawMs = await raw.stream(sets.frames)
  await raw.close()
  const bytes = sets.frames.reduce((s, f) => s + f.length, 0)
  return {
    name,
    p50: rtt.p50,
    p99: rtt.p99,
    rawRtt,
    encodeUs: encodeMicros(rtt.frame),
    setsPerSec: sets.rate,
    rawBytesPerSec: bytes / (rawMs / 1000),
    rawSetsPerSec: (BATCHES * PER_BATCH) / (rawMs / 1000),
  }
}

export const TRANSPORTS = KINDS.map((k) => k.name)
