import { createConnection } from 'node:net'
import { TEST_KEY } from './support/group-key.js'
import { WebSocket } from 'ws'
import { seededRandom, VirtualClock, type Transport } from 'understudy-ha'
import { broadcastChannel, type BroadcastChannelTransport } from 'understudy-ha/adapters/broadcast-channel'
import { MemoryNetwork, type MemoryTransport } from 'understudy-ha/adapters/memory'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { webSocket, type WebSocketOptions, type WebSocketTransport } from 'understudy-ha/adapters/websocket'
import { webSocketServer, type WebSocketServerOptions, type WebSocketServerTransport } from 'understudy-ha/adapters/websocket/server'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { runTransportContract } from 'understudy-ha/testing'

let seq = 0
const unique = (p: string) => `${p}-${process.pid}-${++seq}-${Math.random().toString(36).slice(2)}`

runTransportContract('memory', async () => {
  const net = new MemoryNetwork({ random: seededRandom(1) })
  return {
    a: net.join('a'),
    b: net.join('b'),
    kill: (t) => net.kill(t.id),
    restart: (t) => net.join(t.id) as MemoryTransport,
  }
})

runTransportContract('broadcast-channel', async () => {
  const name = unique('bc') // a random channel per test: stale ends never interfere
  const clock = new VirtualClock()
  const make = (id: string) => broadcastChannel(name, { id, clock, pingMs: 100, timeoutMs: 300 })
  return {
    a: make('a'),
    b: make('b'),
    kill: (t) => (t as BroadcastChannelTransport).abort(),
    restart: (t) => make(t.id),
    garbage: () => {
      const stranger = new BroadcastChannel(name)
      stranger.postMessage({ not: 'an understudy frame' })
      stranger.close()
    },
    advance: (ms) => clock.advance(ms),
    leftovers: () => (clock.pending ? [`${clock.pending} timer(s) on the clock`] : []),
  }
})

runTransportContract('tcp', async () => {
  const fast = { initialMs: 10, maxMs: 200 }
  const a = tcp({ key: TEST_KEY, id: 'a', listen: { port: 0 }, backoff: fast })
  let port = 0
  return {
    a,
    get b() {
      port ||= a.port as number
      return (this as { _b?: TcpTransport })._b ??= tcp({ key: TEST_KEY, id: 'b', connect: { port }, backoff: fast })
    },
    kill: (t) => (t as TcpTransport).abort(),
    restart: (t) => (t.id === 'a' ? tcp({ key: TEST_KEY, id: 'a', listen: { port }, backoff: fast }) : tcp({ key: TEST_KEY, id: 'b', connect: { port }, backoff: fast })),
    garbage: () =>
      new Promise<void>((resolve) => {
        // A length prefix far beyond maxFrameBytes, from a stranger's socket.
        const s = createConnection({ port, host: '127.0.0.1' }, () => s.end(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3])))
        s.resume()
        s.on('close', () => resolve())
        s.on('error', () => resolve())
      }),
  }
})

/** The WebSocket pair, with a key (the client on WebCrypto, its default), encrypted (the client on nodeCrypto), or insecure. */
function webSocketPair(auth: Partial<WebSocketServerOptions & WebSocketOptions>) {
  return async () => {
    const fast = { initialMs: 10, maxMs: 200 }
    const a = webSocketServer({ ...auth, id: 'a', port: 0, chunkBytes: 64 * 1024 })
    let port = 0
    const client = () => webSocket(`ws://127.0.0.1:${port}`, { ...auth, id: 'b', backoff: fast, chunkBytes: 64 * 1024 })
    return {
      a,
      get b() {
        port ||= a.port as number
        return (this as { _b?: WebSocketTransport })._b ??= client()
      },
      kill: (t: Transport) => (t as WebSocketTransport | WebSocketServerTransport).abort(),
      restart: (t: Transport) => (t.id === 'a' ? webSocketServer({ ...auth, id: 'a', port, chunkBytes: 64 * 1024 }) : client()),
      garbage: () =>
        new Promise<void>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}`)
          ws.on('open', () => {
            ws.send('not binary')
            ws.send(Buffer.from([9, 9, 9]))
            ws.close()
          })
          ws.on('close', () => resolve())
          ws.on('error', () => resolve())
        }),
    }
  }
}

runTransportContract('websocket', webSocketPair({ key: TEST_KEY }))
runTransportContract('websocket (encrypt, nodeCrypto client)', webSocketPair({ key: TEST_KEY, encrypt: true, crypto: nodeCrypto }))
runTransportContract('websocket (insecure)', webSocketPair({ insecure: true }))
