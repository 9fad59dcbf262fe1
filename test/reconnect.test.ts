import { describe, expect, it } from 'vitest'
import { TEST_KEY } from './support/group-key.js'
import { Understudy } from 'understudy-ha'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { webSocket } from 'understudy-ha/adapters/websocket'
import { webSocketServer, type WebSocketServerTransport } from 'understudy-ha/adapters/websocket/server'
import { expectIsomorphic } from './support/isomorphic.js'

/** Cuts every socket under a transport without closing it, as a network blip would. */
function blip(t: object): void {
  const internals = t as { conns?: Set<{ socket: { destroy(): void } }>; clients?: Set<{ ws: { terminate(): void } }> }
  for (const c of internals.conns ?? []) c.socket.destroy()
  for (const c of internals.clients ?? []) c.ws.terminate()
}

describe('replication survives a connection blip', () => {
  for (const kind of ['tcp', 'websocket'] as const) {
    it(`${kind}: the dialer reconnects, the standby catches up, sync commits resume`, async () => {
      const fast = { initialMs: 5, maxMs: 50 }
      const server = kind === 'tcp' ? tcp({ key: TEST_KEY, id: 'active', listen: { port: 0 } }) : webSocketServer({ key: TEST_KEY, id: 'active', port: 0 })
      // minStandbys: 1 — commits during the blip wait for the standby to come back and catch up.
      const active = await Understudy.start({ group: 'g', transport: server, role: 'active', resyncRetryMs: 50, minStandbys: 1 })
      const port = (server as TcpTransport | WebSocketServerTransport).port as number
      const client = kind === 'tcp' ? tcp({ key: TEST_KEY, id: 'standby', connect: { port }, backoff: fast }) : webSocket(`ws://127.0.0.1:${port}`, { key: TEST_KEY, id: 'standby', backoff: fast })
      const standby = await Understudy.start({ group: 'g', transport: client, resyncRetryMs: 50 })
      const peers: string[] = []
      active.on('peer', (e) => peers.push(`${e.peer} ${e.up ? 'up' : 'down'}`))
      const root = active.register('r', { log: [] as number[] })
      for (let i = 0; i < 10; i++) {
        root.log.push(i)
        await active.commit()
      }
      blip(server)
      // Written while the link is down: must reach the standby after it reconnects.
      for (let i = 10; i < 20; i++) root.log.push(i)
      await active.commit()
      expectIsomorphic(root, standby.root('r'))
      expect(peers).toEqual(['standby up', 'standby down', 'standby up'])
      expect(standby.stats().snapshots).toBe(1)
      await Promise.all([active.close(), standby.close()])
    })
  }
})
