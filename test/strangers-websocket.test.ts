/**
 * A stranger on the WebSocket port: the attacks of test/strangers.test.ts,
 * spoken in the WebSocket envelope (`u8 type | payload` per message) by a raw
 * `ws` client with none of the group's keys, against a live, leased group
 * (active: `webSocketServer`, standby: `webSocket`) while a writer commits.
 * Each must be refused — the stranger's connection closed, having received at
 * most the server's handshake HELLO; roles, state and lease row unchanged;
 * commits still flowing — and after them a crash of the active still fails
 * over with every acknowledged write.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { AuthError, MemoryLeaseStore, Understudy, realClock } from 'understudy-ha'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { webSocket } from 'understudy-ha/adapters/websocket'
import { webSocketServer } from 'understudy-ha/adapters/websocket/server'
import { TEST_KEY } from './support/group-key.js'
import { foreignAuthHello, forgedSnapshot, helloFrame } from './support/stranger.js'

/** WebSocket envelope types (adapters/websocket/framing.ts). */
const WS = { HELLO: 0, DATA: 1, CHUNK: 2, BYE: 3, AUTH_HELLO: 4, AUTH_PROOF: 5, WELCOME: 6 } as const

const GROUP = 'payroll-secret-group'
const hb = { intervalMs: 50, timeoutMs: 250 }
const fast = { initialMs: 5, maxMs: 50 }
const text = (s: string) => new TextEncoder().encode(s)

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

interface WsStranger {
  /** Every message the server sent, whole. */
  received: Buffer[]
  closed(ms?: number): Promise<void>
  isClosed(): boolean
  send(type: number, payload: Uint8Array): void
  raw(bytes: Uint8Array): void
}

async function wsStranger(url: string): Promise<WsStranger> {
  const ws = new WebSocket(url)
  const received: Buffer[] = []
  let isClosed = false
  const closing = new Promise<void>((r) => ws.once('close', () => ((isClosed = true), r())))
  ws.on('message', (d: Buffer) => received.push(d))
  ws.on('error', () => {})
  await new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j)))
  return {
    received,
    isClosed: () => isClosed,
    closed: (ms = 3000) => Promise.race([closing, new Promise<void>((_, j) => setTimeout(() => j(new Error(`the server did not close the stranger's connection within ${ms} ms`)), ms).unref())]),
    send: (type, payload) => void (ws.readyState === WebSocket.OPEN && ws.send(Buffer.concat([Buffer.from([type]), payload]))),
    raw: (bytes) => void (ws.readyState === WebSocket.OPEN && ws.send(bytes)),
  }
}

interface Lab {
  a: Understudy
  b: Understudy
  lease: MemoryLeaseStore
  errors: Error[]
  peers: string[]
  writer: { ok: number; failed: Error[]; stop(): Promise<void> }
  stranger(): Promise<WsStranger>
}

async function lab(): Promise<Lab> {
  const lease = new MemoryLeaseStore(realClock)
  const ta = webSocketServer({ key: TEST_KEY, id: 'a', port: 0, handshakeTimeoutMs: 400, maxPendingConnections: 8 })
  const a = await Understudy.start({ group: GROUP, transport: ta, lease, heartbeat: hb })
  await until(() => a.role === 'active', 'a is active')
  const url = `ws://127.0.0.1:${ta.port as number}`
  const tb = webSocket(url, { key: TEST_KEY, crypto: nodeCrypto, id: 'b', backoff: fast })
  const b = await Understudy.start({ group: GROUP, transport: tb, lease, heartbeat: hb })
  const errors: Error[] = []
  const peers: string[] = []
  a.on('error', ({ error }) => errors.push(error))
  a.on('peer', ({ peer, up }) => peers.push(`${peer} ${up ? 'up' : 'down'}`))
  const root = a.register('r', { n: 0, items: [] as number[] })
  await until(() => a.stats().standbys === 1 && b.root('r') !== undefined, 'b follows a')
  let stopped = false
  const writer = { ok: 0, failed: [] as Error[], stop: async () => void (stopped = true) }
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
  return { a, b, lease, errors, peers, writer, stranger: () => wsStranger(url) }
}

/** The group is as it was: a active at its epoch and holding the lease row, b its standby with the same state, commits flowing. */
async function unharmed(l: Lab, before: { epoch: number; holder: string | undefined; ok: number }): Promise<void> {
  expect(l.a.role).toBe('active')
  expect(l.b.role).toBe('standby')
  expect(l.a.epoch).toBe(before.epoch)
  const row = await l.lease.read(GROUP)
  expect(row?.holder).toBe(before.holder)
  expect(row?.epoch).toBe(before.epoch)
  await until(() => l.writer.ok > before.ok + 5, 'commits keep flowing during the attack')
  expect(l.writer.failed).toEqual([])
  await l.a.commit()
  expect(JSON.parse(JSON.stringify(l.b.root('r')))).toEqual(JSON.parse(JSON.stringify(l.a.root('r'))))
  expect(l.peers.filter((p) => !p.startsWith('b '))).toEqual([])
  expect(l.peers).not.toContain('b down')
}

const attacks: [string, (l: Lab) => Promise<WsStranger[]>][] = [
  [
    'reads nothing: its plain HELLO and resync get no frame, and nothing it receives names the group',
    async (l) => {
      const s = await l.stranger()
      s.send(WS.HELLO, text('eve'))
      s.send(WS.DATA, helloFrame(GROUP, 'eve', 'standby', 0, -1))
      await s.closed()
      const got = Buffer.concat(s.received)
      expect(got.includes(Buffer.from(GROUP))).toBe(false)
      expect(got.includes(Buffer.from('items'))).toBe(false)
      return [s]
    },
  ],
  [
    'cannot demote the active with hello(active, epoch 1e6)',
    async (l) => {
      const s = await l.stranger()
      s.send(WS.HELLO, text('eve'))
      s.send(WS.DATA, helloFrame(GROUP, 'eve', 'active', 1e6, 1e6))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot make the group follow it or adopt a forged snapshot (a handshake with another key, a forged proof)',
    async (l) => {
      const s = await l.stranger()
      s.send(WS.AUTH_HELLO, await foreignAuthHello('eve'))
      s.send(WS.AUTH_PROOF, new Uint8Array(40))
      s.send(WS.DATA, helloFrame(GROUP, 'eve', 'active', 99, 1))
      s.send(WS.DATA, forgedSnapshot(99, 1))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot block failover by announcing hello(standby, seq 1e9)',
    async (l) => {
      const s = await l.stranger()
      s.send(WS.HELLO, text('eve'))
      s.send(WS.DATA, helloFrame(GROUP, 'eve', 'standby', 1, 1e9))
      await s.closed()
      return [s]
    },
  ],
  [
    "cannot take the standby's place by claiming its id, 30 times (the real standby's connection never drops)",
    async (l) => {
      const out: WsStranger[] = []
      for (let i = 0; i < 30; i++) {
        const s = await l.stranger()
        s.send(i % 2 ? WS.HELLO : WS.AUTH_HELLO, i % 2 ? text('b') : await foreignAuthHello('b'))
        s.send(WS.DATA, helloFrame(GROUP, 'b', 'standby', 1, 1e9))
        out.push(s)
      }
      await Promise.all(out.map((s) => s.closed()))
      return out
    },
  ],
  [
    'cannot stall commits by connecting as a silent standby (closed at the handshake deadline)',
    async (l) => {
      const s = await l.stranger()
      const t0 = Date.now()
      await s.closed(2000)
      expect(Date.now() - t0).toBeLessThan(1500)
      return [s]
    },
  ],
  [
    'cannot make the node hold large messages before saying who it is: over 4 KiB, or over one chunk, is refused, on each of 4 connections',
    async (l) => {
      const out = await Promise.all([0, 1, 2, 3].map(() => l.stranger()))
      out.forEach((s, i) => s.raw(new Uint8Array(i % 2 ? 2 * 1024 * 1024 : 64 * 1024)))
      await Promise.all(out.map((s) => s.closed(1000)))
      return out
    },
  ],
  [
    'cannot hold more than maxPendingConnections waiting connections (the extra ones are closed at once)',
    async (l) => {
      const out = await Promise.all(Array.from({ length: 12 }, () => l.stranger().catch(() => undefined)))
      const opened = out.filter((s): s is WsStranger => s !== undefined)
      await until(() => opened.filter((s) => s.isClosed()).length >= 4, 'connections over the cap are closed')
      await Promise.all(opened.map((s) => s.closed(2000)))
      return opened
    },
  ],
]

describe('a stranger on the port (websocket)', () => {
  const open: Lab[] = []
  afterEach(async () => {
    for (const l of open.splice(0)) {
      await l.writer.stop()
      await Promise.all([l.a.close(), l.b.close()])
    }
  })

  for (const [name, attack] of attacks)
    it(name, async () => {
      const l = await lab()
      open.push(l)
      const row = await l.lease.read(GROUP)
      const before = { epoch: l.a.epoch, holder: row?.holder, ok: l.writer.ok }
      const strangers = await attack(l)
      for (const s of strangers) {
        expect(s.isClosed()).toBe(true)
        // The server sent at most its own handshake HELLO: no frame, no reply to anything the stranger said.
        expect(s.received.length).toBeLessThanOrEqual(1)
        for (const m of s.received) {
          expect(m[0]).toBe(WS.AUTH_HELLO)
          expect(m.length).toBeLessThanOrEqual(1 + 4096)
        }
      }
      expect(l.errors.some((e) => e instanceof AuthError || e.name === 'TransportError')).toBe(true)
      await unharmed(l, before)
    })

  it('after the attacks, a crash of the active fails over to the standby with every acknowledged write', async () => {
    const l = await lab()
    open.push(l)
    for (const [, attack] of attacks.slice(1, 5)) await attack(l)
    await l.writer.stop()
    const acked = (l.a.root('r') as { n: number }).n
    const t0 = Date.now()
    await l.a.abort()
    await until(() => l.b.role === 'active', 'b takes over')
    expect(Date.now() - t0).toBeLessThan(hb.timeoutMs * 3 + 500)
    expect((l.b.root('r') as { n: number }).n).toBe(acked)
  })
})
