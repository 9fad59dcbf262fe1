/**
 * A stranger on the port: a process with network access to a node's TCP or
 * WebSocket port but none of the group's keys. Each attack that worked before
 * group authentication is run against a live, leased group while a writer
 * commits; each must be refused — the stranger's connection closed, having
 * received at most the node's handshake HELLO; the nodes' roles, state and
 * lease row unchanged; the writer's commits still flowing — and after the
 * attacks, a crash of the active still fails over to the standby with every
 * acknowledged write. (With `insecure: true` the read, demote, forge and
 * block-failover attacks succeed; the id binding, size limit, deadline and
 * connection cap hold in both modes.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AuthError } from 'understudy-ha'
import { GROUP, HEARTBEAT, authHelloType, foreignAuthHello, forgedSnapshot, helloFrame, lab, plainHello, until, type Kind, type Lab, type Stranger } from './support/stranger.js'

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
      s.send('hello', plainHello(l.kind, 'eve'))
      s.send('frame', helloFrame(GROUP, 'eve', 'standby', 0, -1))
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
      s.send('hello', plainHello(l.kind, 'eve'))
      s.send('use', new Uint8Array(0))
      s.send('frame', helloFrame(GROUP, 'eve', 'active', 1e6, 1e6))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot make the group follow it or adopt a forged snapshot (a handshake with another key, a forged proof)',
    async (l) => {
      const s = await l.stranger()
      s.send('authHello', await foreignAuthHello('eve'))
      s.send('authProof', new Uint8Array(40))
      s.send('frame', helloFrame(GROUP, 'eve', 'active', 99, 1))
      s.send('frame', forgedSnapshot(99, 1))
      await s.closed()
      return [s]
    },
  ],
  [
    'cannot block failover by announcing hello(standby, seq 1e9)',
    async (l) => {
      const s = await l.stranger()
      s.send('hello', plainHello(l.kind, 'eve'))
      s.send('frame', helloFrame(GROUP, 'eve', 'standby', 1, 1e9))
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
        if (i % 2) s.send('hello', plainHello(l.kind, 'b', `b@evil${i}`))
        else s.send('authHello', await foreignAuthHello('b'))
        s.send('use', new Uint8Array(0))
        s.send('frame', helloFrame(GROUP, 'b', 'standby', 1, 1e9))
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
    'cannot make the node hold memory before saying who it is: a 128 MiB length prefix, or a message over 4 KiB, is refused at once, on each of 4 connections',
    async (l) => {
      const out = await Promise.all([0, 1, 2, 3].map(() => l.stranger()))
      out.forEach((s, i) => {
        if (l.kind === 'tcp') {
          const head = Buffer.alloc(5)
          head.writeUInt32BE(128 * 1024 * 1024, 0)
          s.raw(head)
          s.raw(new Uint8Array(64 * 1024))
        } else s.raw(new Uint8Array(i % 2 ? 2 * 1024 * 1024 : 64 * 1024))
      })
      await Promise.all(out.map((s) => s.closed(1000)))
      return out
    },
  ],
  [
    'cannot hold more than maxPendingConnections waiting connections (the extra ones are closed at once)',
    async (l) => {
      const out = (await Promise.all(Array.from({ length: 12 }, () => l.stranger().catch(() => undefined)))).filter((s): s is Stranger => s !== undefined)
      await until(() => out.filter((s) => s.isClosed()).length >= 4, 'connections over the cap are closed')
      await Promise.all(out.map((s) => s.closed(2000)))
      return out
    },
  ],
]

for (const kind of ['tcp', 'websocket'] as Kind[])
  describe(`a stranger on the port (${kind})`, () => {
    const open: Lab[] = []
    afterEach(async () => {
      for (const l of open.splice(0)) await l.close()
    })

    for (const [name, attack] of attacks)
      it(name, async () => {
        const l = await lab(kind)
        open.push(l)
        const row = await l.lease.read(GROUP)
        const before = { epoch: l.a.epoch, holder: row?.holder, ok: l.writer.ok }
        const strangers = await attack(l)
        for (const s of strangers) {
          expect(s.isClosed()).toBe(true)
          // The node sent at most its own handshake HELLO: no frame, no reply to anything the stranger said.
          expect(s.receivedTypes().filter((t) => t !== authHelloType(kind))).toEqual([])
          expect(s.received().length).toBeLessThanOrEqual(5 + 4096)
        }
        expect(l.errors.some((e) => e instanceof AuthError || e.name === 'TransportError')).toBe(true)
        await unharmed(l, before)
      })

    it('after the attacks, a crash of the active fails over to the standby with every acknowledged write', async () => {
      const l = await lab(kind)
      open.push(l)
      for (const [, attack] of attacks.slice(1, 5)) await attack(l)
      await l.writer.stop()
      const acked = (l.a.root('r') as { n: number }).n
      const t0 = Date.now()
      await l.a.abort()
      await until(() => l.b.role === 'active', 'b takes over')
      expect(Date.now() - t0).toBeLessThan(HEARTBEAT.timeoutMs * 3 + 500)
      expect((l.b.root('r') as { n: number }).n).toBe(acked)
    })
  })
