/**
 * The alphabet server of the classic pipe reader example: a TCP server on
 * 127.0.0.1. A client sends `FROM <n>\n`; the server writes the alphabet from
 * letter n to z and closes. Now and then it garbles a letter in transit
 * (seeded, so a run can be replayed): the client must notice and re-read.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { seededRandom } from 'understudy-ha'

export const ALPHABET = 'abcdefghijklmnopqrstuvwxyz'

export interface AlphabetServer {
  port: number
  /** Connections served so far. */
  connections: number
  close(): Promise<void>
}

/** Starts the server; `badRate` is the chance that a letter is garbled (default 0.1). */
export async function startAlphabetServer(options: { port?: number; badRate?: number; seed?: number; letterDelayMs?: number } = {}): Promise<AlphabetServer> {
  const random = seededRandom(options.seed ?? 26)
  const badRate = options.badRate ?? 0.1
  const sockets = new Set<Socket>()
  const state = { connections: 0 }
  const server: Server = createServer((socket) => {
    state.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let request = ''
    socket.on('data', (d) => {
      request += String(d)
      const m = /^FROM (\d+)\n/.exec(request)
      if (!m) return
      socket.removeAllListeners('data')
      const from = Number(m[1])
      let i = from
      const next = () => {
        if (socket.destroyed) return
        if (i >= ALPHABET.length) return void socket.end()
        const letter = random() < badRate ? '#' : (ALPHABET[i] as string)
        i++
        socket.write(letter)
        if (options.letterDelayMs) setTimeout(next, options.letterDelayMs)
        else setImmediate(next)
      }
      next()
    })
  })
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    get connections() {
      return state.connections
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}
