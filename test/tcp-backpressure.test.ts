import { createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Understudy } from 'understudy-ha'
import { tcp } from 'understudy-ha/adapters/tcp'
import { Recorder } from 'understudy-ha/testing'

/** A peer that says HELLO and then stops reading: a stalled standby. */
async function stalledPeer(): Promise<{ port: number; resume(): void; close(): Promise<void> }> {
  const sockets: Socket[] = []
  const server = createServer((s) => {
    sockets.push(s)
    const id = Buffer.from('slow')
    const hello = Buffer.alloc(5 + id.length)
    hello.writeUInt32BE(id.length + 1, 0)
    hello[4] = 0
    id.copy(hello, 5)
    s.write(hello)
    s.pause()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    resume: () => sockets.forEach((s) => s.resume()),
    close: () =>
      new Promise<void>((r) => {
        sockets.forEach((s) => s.destroy())
        server.close(() => r())
      }),
  }
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

describe('tcp backpressure', () => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  it('send() returns a pending promise once a slow peer stops reading, and it resolves when the peer catches up', async () => {
    const peer = await stalledPeer()
    cleanup.push(peer.close)
    const t = tcp({ insecure: true, id: 'a', connect: { port: peer.port } })
    const rec = new Recorder()
    await t.open(rec)
    cleanup.push(() => t.close())
    await rec.until(() => rec.ups.includes('slow'), 'the slow peer is up')
    const frame = new Uint8Array(1024 * 1024)
    // The kernel absorbs a few MB first; push until a send stays pending.
    let pending: Promise<void> | undefined
    let drained = false
    for (let sent = 0; sent < 256 && !pending; sent++) {
      const r = t.send(frame)
      if (!r) continue
      let done = false
      void r.then(() => (done = true))
      await turns(50)
      if (!done) {
        pending = r
        void r.then(() => (drained = true))
      }
    }
    expect(pending, 'send() never pushed back').toBeDefined()
    await turns(50)
    expect(drained).toBe(false)
    peer.resume()
    await pending
    expect(drained).toBe(true)
  })

  it('an async commit never waits on a peer that stopped reading, and nothing piles up for a peer that never said it is a standby', async () => {
    const peer = await stalledPeer()
    cleanup.push(peer.close)
    const transport = tcp({ insecure: true, id: 'a', connect: { port: peer.port } })
    const ha = await Understudy.start({ group: 'g', transport, role: 'active', commitMode: 'async' })
    cleanup.push(() => ha.close())
    const root = ha.register('r', { blob: '' })
    await ha.commit()
    const rss = process.memoryUsage().rss
    for (let i = 0; i < 256; i++) {
      root.blob = String(i).padEnd(1024 * 1024, 'x')
      let done = false
      const c = ha.commit().then(() => (done = true))
      await turns(2)
      expect(done, `async commit ${i} waited`).toBe(true)
      await c
    }
    // 256 MiB were committed; the silent peer is no standby, so none of it was queued for it.
    expect(ha.stats()).toMatchObject({ standbys: 0, queuedBytes: 0 })
    expect(process.memoryUsage().rss - rss).toBeLessThan(128 * 2 ** 20)
  })

})
