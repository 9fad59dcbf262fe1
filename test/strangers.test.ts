/**
 * A stranger on the port: a process with network access to a node's TCP (and
 * WebSocket) port but none of the group's keys. Each attack that worked before
 * group authentication is run against a live, leased group while a writer
 * commits; each must be refused — the stranger's connection closed, the nodes'
 * roles, state and lease row unchanged, the writer's commits still flowing —
 * and after the attacks, a crash of the active still fails over to the
 * standby with every acknowledged write.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AuthError, MemoryLeaseStore, Understudy, realClock, type Transport } from 'understudy-ha'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { TEST_KEY } from './support/group-key.js'
import { TCP, foreignAuthHello, forgedSnapshot, helloFrame, plainHello, tcpStranger, type Stranger } from './support/stranger.js'

const GROUP = 'payroll-secret-group'
const hb = { intervalMs: 50, timeoutMs: 250 }
const fast = { initialMs: 5, maxMs: 50 }

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

interface Lab {
  a: Understudy
  b: Understudy
  lease: MemoryLeaseStore
  port: number
  errors: Error[]
  peers: string[]
  writer: { ok: number; failed: Error[]; stop(): Promise<void> }
  stranger(): Promise<Stranger>
}

async function lab(kind: 'tcp'): Promise<Lab> {
  const lease = new MemoryLeaseStore(realClock)
  const ta = tcp({ key: TEST_KEY, id: 'a', listen: { port: 0 }, handshakeTimeoutMs: 400, maxPendingConnections: 8 })
  const a = await Understudy.start({ group: GROUP, transport: ta, lease, heartbeat: hb })
  await until(() => a.role === 'active', 'a is active')
  const port = (ta as TcpTransport).port as number
  const tb: Transport = tcp({ key: TEST_KEY, id: 'b', connect: { port }, backoff: fast })
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
  return { a, b, lease, port, errors, peers, writer, stranger: () => (kind === 'tcp' ? tcpStranger(port) : Promise.reject(new Error(kind))) }
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

const attacks: [string, (l: Lab) => Promise<Stranger[]>][] = [
  [
    'reads nothing: its plain HELLO and resync get no frame, and nothing it receives names the group',
    async (l) => {
      const s = await l.stranger()
      s.send(TCP.HELLO, plainHello('eve'))
      s.send(TCP.FRAME, helloFrame(GROUP, 'eve', 'standby', 0, -1))
      await s.closed()
      expect(s.received().includes(Buffer.from(GROUP))).toBe(false)
      expect(s.received().includes(Buffer.from('items'))).toBe(false)
      return [s]
    },
  ],
  [
    'cannot demote the active with hello(active, epoch 1e6)',
    async (l) => {
      const s = await l.stranger()
      s.send(TCP.HELLO, plainHello('eve'))
      s.send(TCP.USE, new Uint8Array(0))
      s.send(TCP.FRAME, helloFrame(GROUP, 'eve', 'active', 1e6, 1e6))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot make the standby follow it or adopt a forged snapshot',
    async (l) => {
      // The standby only dials; the stranger reaches the active's port and, failing there, has no way in.
      const s = await l.stranger()
      s.send(TCP.AUTH_HELLO, await foreignAuthHello('eve'))
      s.send(TCP.AUTH_PROOF, new Uint8Array(40))
      s.send(TCP.FRAME, helloFrame(GROUP, 'eve', 'active', 99, 1))
      s.send(TCP.FRAME, forgedSnapshot(99, 1))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot block failover by announcing hello(standby, seq 1e9)',
    async (l) => {
      const s = await l.stranger()
      s.send(TCP.HELLO, plainHello('eve'))
      s.send(TCP.FRAME, helloFrame(GROUP, 'eve', 'standby', 1, 1e9))
      await s.closed()
      return [s]
    },
  ],
  [
    "cannot take the standby's place by claiming its id, 30 times (the real standby's connection never drops)",
    async (l) => {
      const out: Stranger[] = []
      for (let i = 0; i < 30; i++) {
        const s = await l.stranger()
        s.send(i % 2 ? TCP.HELLO : TCP.AUTH_HELLO, i % 2 ? plainHello('b', `b@evil${i}`) : await foreignAuthHello('b'))
        s.send(TCP.USE, new Uint8Array(0))
        s.send(TCP.FRAME, helloFrame(GROUP, 'b', 'standby', 1, 1e9))
        out.push(s)
      }
      await Promise.all(out.map((s) => s.closed()))
      return out
    },
  ],
  [
    'cannot stall commits by connecting as a silent standby (closed at the handshake deadline)',
    async (l) => {
      // Connects and says nothing at all, like a standby that never reads: it never becomes a peer, so no commit waits for it.
      const s = await l.stranger()
      const t0 = Date.now()
      await s.closed(2000)
      expect(Date.now() - t0).toBeLessThan(1500)
      return [s]
    },
  ],
  [
    'cannot make the node buffer before saying who it is: a 128 MiB length prefix is refused at once, on each of 4 connections',
    async (l) => {
      const out = await Promise.all([0, 1, 2, 3].map(() => l.stranger()))
      for (const s of out) {
        const head = Buffer.alloc(5)
        head.writeUInt32BE(128 * 1024 * 1024, 0)
        head[4] = TCP.HELLO
        s.raw(head)
        s.raw(new Uint8Array(64 * 1024))
      }
      await Promise.all(out.map((s) => s.closed(1000)))
      return out
    },
  ],
  [
    'cannot hold more than maxPendingConnections waiting connections (the extra ones are closed at once)',
    async (l) => {
      const out = await Promise.all(Array.from({ length: 12 }, () => l.stranger()))
      await until(() => out.filter((s) => s.isClosed()).length >= 4, 'connections over the cap are closed')
      await Promise.all(out.map((s) => s.closed(2000)))
      return out
    },
  ],
]

describe('a stranger on the port (tcp)', () => {
  const open: Lab[] = []
  afterEach(async () => {
    for (const l of open.splice(0)) {
      await l.writer.stop()
      await Promise.all([l.a.close(), l.b.close()])
    }
  })

  for (const [name, attack] of attacks)
    it(name, async () => {
      const l = await lab('tcp')
      open.push(l)
      const row = await l.lease.read(GROUP)
      const before = { epoch: l.a.epoch, holder: row?.holder, ok: l.writer.ok }
      const strangers = await attack(l)
      for (const s of strangers) {
        expect(s.isClosed()).toBe(true)
        // The node sent at most its own handshake HELLO: no frame, no reply to anything the stranger said.
        const got = s.received()
        if (got.length) expect(got[4]).toBe(TCP.AUTH_HELLO)
        expect(got.length).toBeLessThanOrEqual(4 + 1 + 4096)
      }
      expect(l.errors.some((e) => e instanceof AuthError || e.name === 'TransportError')).toBe(true)
      await unharmed(l, before)
    })

  it('after the attacks, a crash of the active fails over to the standby with every acknowledged write', async () => {
    const l = await lab('tcp')
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
