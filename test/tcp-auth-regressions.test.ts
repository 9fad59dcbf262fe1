/**
 * Attacks an adversarial review found against the first cut of TCP group
 * authentication, each pinned by a test named after it (each failed then).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AuthError, GroupKeys, Handshake } from 'understudy-ha'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { Recorder } from 'understudy-ha/testing'
import { TEST_KEY } from './support/group-key.js'
import { tcpStranger, until } from './support/stranger.js'

const fast = { initialMs: 10, maxMs: 50 }

describe('tcp authentication: regressions from an adversarial review', () => {
  const cleanup: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  async function member(options: Parameters<typeof tcp>[0]): Promise<{ t: TcpTransport; rec: Recorder }> {
    const t = tcp(options)
    const rec = new Recorder()
    await t.open(rec)
    cleanup.push(() => t.close())
    return { t, rec }
  }
  const raw = (port: number) => {
    const s = connect({ port, host: '127.0.0.1' })
    s.on('error', () => {})
    cleanup.push(() => s.destroy())
    return s
  }

  it('a stranger that joins two listening members to each other (a relay between two accepted connections) is refused by both', async () => {
    const a = await member({ key: TEST_KEY, id: 'a', listen: { port: 0 } })
    const b = await member({ key: TEST_KEY, id: 'b', listen: { port: 0 } })
    const toA = raw(a.t.port as number)
    const toB = raw(b.t.port as number)
    toA.pipe(toB)
    toB.pipe(toA)
    const refused = (r: Recorder) => r.errors.some((e) => e instanceof AuthError && e.reason === 'REFUSED')
    await until(() => refused(a.rec) && refused(b.rec), 'both members refuse the relay')
    expect(a.rec.ups).toEqual([])
    expect(b.rec.ups).toEqual([])
  })

  it('a proven connection that never gets USE or DUPLICATE is closed at the handshake deadline (it cannot park a redial or pile up)', async () => {
    const a = await member({ key: TEST_KEY, id: 'm', listen: { port: 0 }, handshakeTimeoutMs: 300 })
    // An insider (it holds the key) with a lower id: the listener waits for its USE, which never comes.
    const s = await tcpStranger(a.t.port as number)
    const hs = new Handshake(await GroupKeys.create({ key: TEST_KEY, crypto: nodeCrypto }, 'insider'), { id: 'a', incarnation: 'a@insider' }, true)
    s.send('authHello', hs.hello)
    await until(() => s.receivedTypes().length >= 1, "the member's HELLO")
    const theirs = s.received().subarray(5, 4 + s.received().readUInt32BE(0))
    s.send('authProof', await hs.receiveHello(theirs))
    const t0 = Date.now()
    await s.closed(3000)
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(a.rec.errors.some((e) => /neither USE nor DUPLICATE/.test(e.message))).toBe(true)
    expect(a.rec.ups).toEqual([])
  })

  it('a dial that a stranger reflects back to the dialling node is reported and redialled with backoff, never taken for its own loop', async () => {
    // The stranger holds the address b dials and joins each dial back to b's own listener.
    let dials = 0
    const server: Server = createServer((s: Socket) => {
      dials++
      s.on('error', () => {})
      const back = raw(port)
      s.pipe(back)
      back.pipe(s)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    cleanup.push(() => new Promise((r) => server.close(r)))
    const target = (server.address() as { port: number }).port
    const nb = await member({ key: TEST_KEY, id: 'b', listen: { port: 0 }, connect: { port: target }, backoff: fast })
    const port = nb.t.port as number
    await until(() => dials >= 3, 'b keeps redialling the reflected address')
    expect(nb.rec.errors.some((e) => /through a relay/.test(e.message))).toBe(true)
    expect(nb.rec.ups).toEqual([])
  })

  it('with tls, connections stalled inside the TLS handshake count toward maxPendingConnections and are closed at the deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-tls-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
    const a = await member({ key: TEST_KEY, id: 'a', listen: { port: 0 }, tls: { server: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) } }, handshakeTimeoutMs: 300, maxPendingConnections: 4 })
    const closed: boolean[] = []
    for (let i = 0; i < 12; i++) {
      const s = raw(a.t.port as number)
      const k = closed.push(false) - 1
      s.on('close', () => (closed[k] = true))
      s.write(Buffer.from([0x16, 0x03, 0x01])) // the start of a TLS record, then silence
    }
    await until(() => closed.filter(Boolean).length >= 8, 'connections over the cap are closed at once')
    await until(() => closed.every(Boolean), 'the rest are closed at the deadline', 3000)
    expect(a.rec.errors.some((e) => /did not complete TLS within 300 ms/.test(e.message))).toBe(true)
  })

  it('a peer id over 256 bytes is refused by tcp() (it would have crashed the process on the first connection)', () => {
    expect(() => tcp({ key: TEST_KEY, id: 'x'.repeat(2000), listen: { port: 0 } })).toThrow(/1 to 256 UTF-8 bytes/)
  })

  it('two members claiming a live peer\'s id at once: both refused, the live peer stays up (the second does not overwrite the first\'s probe)', async () => {
    const m = await member({ key: TEST_KEY, id: 'm', listen: { port: 0 } })
    const port = m.t.port as number
    await member({ key: TEST_KEY, id: 'z', connect: { port } })
    await m.rec.until(() => m.rec.ups.includes('z'), 'the real z is up')
    const claimants = await Promise.all([0, 1].map(() => member({ key: TEST_KEY, id: 'z', connect: { port }, backoff: { initialMs: 2000, maxMs: 2000 } })))
    await until(() => m.rec.errors.filter((e) => /claims peer id "z"/.test(e.message)).length >= 2, 'both claims refused', 5000)
    expect(m.rec.downs).toEqual([])
    expect(m.rec.ups).toEqual(['z'])
    void claimants
  })
})
