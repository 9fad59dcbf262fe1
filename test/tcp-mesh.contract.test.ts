/**
 * The transport contract for TCP ends that both listen and dial each other
 * (a peer list): each pair starts with two connections and must behave like
 * one.
 */
import { createConnection, createServer, type Server } from 'node:net'
import { TEST_KEY } from './support/group-key.js'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { runTransportContract } from 'understudy-ha/testing'

/** Two free ports on 127.0.0.1, picked by the kernel (port 0) and released, so each end can name the other's before either opens. */
async function freePorts(): Promise<[number, number]> {
  const servers: Server[] = [createServer(), createServer()]
  for (const s of servers) await new Promise<void>((resolve, reject) => (s.once('error', reject), s.listen(0, '127.0.0.1', () => resolve())))
  const ports = servers.map((s) => (s.address() as { port: number }).port) as [number, number]
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

for (const [first, second] of [
  ['a', 'b'],
  ['b', 'a'],
] as const) {
  // Both orders of ids: the end with the lower id picks the connection, whichever end opens first.
  runTransportContract(`tcp, both ends listen and dial (${first} opens first)`, async () => {
    const fast = { initialMs: 10, maxMs: 200 }
    const ports = await freePorts()
    const make = (id: string) => {
      const i = id === first ? 0 : 1
      return tcp({ key: TEST_KEY, id, listen: { port: ports[i] }, connect: { port: ports[1 - i] as number }, backoff: fast })
    }
    return {
      a: make(first),
      b: make(second),
      kill: (t) => (t as TcpTransport).abort(),
      restart: (t) => make(t.id),
      garbage: () =>
        new Promise<void>((resolve) => {
          // A length prefix far beyond maxFrameBytes, from a stranger's socket, to the end opened first.
          const s = createConnection({ port: ports[0], host: '127.0.0.1' }, () => s.end(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3])))
          s.resume()
          s.on('close', () => resolve())
          s.on('error', () => resolve())
        }),
    }
  })
}
