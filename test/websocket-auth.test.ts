/**
 * Group authentication on the WebSocket transport: real sockets on 127.0.0.1,
 * strangers played by raw `ws` clients. Waits are bounded polls on events,
 * never sleeps.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket as WsWebSocket, type ClientOptions } from 'ws'
import { AuthError, ConfigError, TransportError } from 'understudy-ha'
import { Recorder } from 'understudy-ha/testing'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { webSocket, type WebSocketConstructor, type WebSocketOptions, type WebSocketTransport } from 'understudy-ha/adapters/websocket'
import { webSocketServer, type WebSocketServerOptions, type WebSocketServerTransport } from 'understudy-ha/adapters/websocket/server'
import { TEST_KEY } from './support/group-key.js'

const OTHER_KEY = 'another-group-entirely-0123456789'
const fast = { initialMs: 10, maxMs: 100 }
const HELLO = 0
const AUTH_HELLO = 4
const text = (s: string) => new TextEncoder().encode(s)
const str = (b: Uint8Array) => new TextDecoder().decode(b)

const cleanup: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function serve(options: WebSocketServerOptions): Promise<{ s: WebSocketServerTransport; r: Recorder; url: string }> {
  const r = new Recorder()
  const s = webSocketServer({ id: 'active', port: 0, ...options })
  await s.open(r)
  cleanup.push(() => s.close())
  return { s, r, url: `ws://127.0.0.1:${s.port}` }
}

async function dial(url: string, options: WebSocketOptions): Promise<{ c: WebSocketTransport; r: Recorder }> {
  const r = new Recorder()
  const c = webSocket(url, { id: 'standby', backoff: fast, ...options })
  await c.open(r)
  cleanup.push(() => c.close())
  return { c, r }
}

/** Resolves once `p` settles, or rejects after `ms` naming `what` (a bound on waiting for I/O). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined
  return Promise.race([p, new Promise<never>((_, j) => (t = setTimeout(() => j(new Error(`timed out waiting for: ${what}`)), ms)))]).finally(() => clearTimeout(t))
}

interface Stranger {
  ws: WsWebSocket
  received: Buffer[]
  closed: Promise<void>
  isClosed(): boolean
}

/** A raw `ws` client: sends what it is told, records what it gets, completes nothing. */
async function stranger(url: string, options: ClientOptions = {}): Promise<Stranger> {
  const ws = new WsWebSocket(url, options)
  const received: Buffer[] = []
  let isClosed = false
  const closed = new Promise<void>((r) => ws.once('close', () => ((isClosed = true), r())))
  ws.on('message', (d: Buffer) => received.push(d))
  ws.on('error', () => {})
  cleanup.push(() => ws.terminate())
  await within(new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j))), 5000, 'the stranger connects')
  return { ws, received, closed, isClosed: () => isClosed }
}

const envelope = (type: number, body: Uint8Array) => Buffer.concat([Buffer.from([type]), body])

/** A TCP relay in front of `port` that records what the server sends (server-to-client WebSocket frames are not masked). */
async function tap(port: number): Promise<{ port: number; down: () => Buffer }> {
  const down: Buffer[] = []
  const sockets = new Set<Socket>()
  const relay = createNetServer((client) => {
    const server = netConnect({ port, host: '127.0.0.1' })
    for (const s of [client, server]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => (client.destroy(), server.destroy()))
    }
    server.on('data', (d: Buffer) => down.push(d))
    client.pipe(server)
    server.pipe(client)
  })
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()))
  cleanup.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), relay.close(() => r()))))
  return { port: (relay.address() as { port: number }).port, down: () => Buffer.concat(down) }
}

/** A `ws` client constructor with options (TLS, no automatic pong…), for `webSocket({ WebSocket })`. */
function wsWith(options: ClientOptions): WebSocketConstructor {
  return class extends WsWebSocket {
    constructor(url: string) {
      super(url, options)
    }
  } as unknown as WebSocketConstructor
}

describe('websocket group authentication: configuration', () => {
  it('refuses to construct without a key unless insecure: true, and says how to set one', () => {
    expect(() => webSocketServer({ port: 0 })).toThrow(ConfigError)
    expect(() => webSocketServer({ port: 0 })).toThrow(/no group key.*key: process\.env\.UNDERSTUDY_KEY.*generateGroupKey\(\).*insecure: true/)
    expect(() => webSocket('ws://127.0.0.1:1')).toThrow(ConfigError)
    expect(() => webSocket('ws://127.0.0.1:1')).toThrow(/no group key.*generateGroupKey\(\).*insecure: true/)
    expect(() => webSocketServer({ port: 0, insecure: true })).not.toThrow()
    expect(() => webSocket('ws://127.0.0.1:1', { insecure: true })).not.toThrow()
  })

  it('refuses bad keys, and key with insecure, at construction', () => {
    expect(() => webSocketServer({ key: 'short' })).toThrow(ConfigError)
    expect(() => webSocket('ws://127.0.0.1:1', { key: new Uint8Array(8) })).toThrow(/at least 16 bytes/)
    expect(() => webSocket('ws://127.0.0.1:1', { key: [] })).toThrow(/empty list/)
    expect(() => webSocketServer({ key: TEST_KEY, insecure: true })).toThrow(/not both/)
    expect(() => webSocketServer({ key: TEST_KEY })).not.toThrow()
    expect(() => webSocket('ws://127.0.0.1:1', { key: [OTHER_KEY, TEST_KEY] })).not.toThrow()
  })
})

describe('websocket group authentication: members', () => {
  for (const mode of ['hmac', 'aes-gcm'] as const) {
    it(`keyed client and server exchange frames both ways (${mode}); ${mode === 'aes-gcm' ? 'the payload is not on the wire' : 'tagged but readable on the wire'}`, async () => {
      // HMAC: the client on WebCrypto (its default). AES-GCM: asked for by the client alone (either end's ask encrypts the session), on nodeCrypto.
      const { s, r: rs } = await serve({ key: TEST_KEY })
      const relay = await tap(s.port as number)
      const { c, r: rc } = await dial(`ws://127.0.0.1:${relay.port}`, mode === 'aes-gcm' ? { key: TEST_KEY, encrypt: true, crypto: nodeCrypto } : { key: TEST_KEY })
      await rs.until(() => rs.ups.includes('standby'), 'the server sees the client')
      await rc.until(() => rc.ups.includes('active'), 'the client sees the server')
      expect(c.connectedTo).toBe('active')
      const secret = 'THE-SECRET-PAYLOAD-'.repeat(20)
      const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i % 251)
      void s.send(text(secret), 'standby')
      void s.send(big)
      void c.send(text(`${secret}back`))
      await rc.until(() => rc.messages.length >= 2, 'the client receives both frames')
      await rs.until(() => rs.messages.length >= 1, 'the server receives')
      expect(str(rc.messages[0]?.data as Uint8Array)).toBe(secret)
      expect(Buffer.compare(Buffer.from(rc.messages[1]?.data as Uint8Array), Buffer.from(big))).toBe(0)
      expect(rs.messages.map((m) => [m.from, str(m.data)])).toEqual([['standby', `${secret}back`]])
      const wire = relay.down()
      expect(wire.includes(Buffer.from(secret))).toBe(mode === 'hmac')
      expect([...rs.errors, ...rc.errors]).toEqual([])
    })
  }

  it('a client with another key is refused: both ends report AuthError, neither sees the other come up', async () => {
    const { r: rs, url } = await serve({ key: TEST_KEY })
    const { r: rc } = await dial(url, { key: OTHER_KEY })
    await rs.until(() => rs.errors.some((e) => e instanceof AuthError), 'the server reports an AuthError')
    await rc.until(() => rc.errors.some((e) => e instanceof AuthError), 'the client reports an AuthError')
    expect((rs.errors.find((e) => e instanceof AuthError) as AuthError).reason).toBe('NO_COMMON_KEY')
    expect((rc.errors.find((e) => e instanceof AuthError) as AuthError).reason).toBe('NO_COMMON_KEY')
    expect(rs.ups).toEqual([])
    expect(rc.ups).toEqual([])
    expect(rs.messages).toEqual([])
  })

  it('during a rotation, a client holding the old and the new key meets a server holding only the new one', async () => {
    const { r: rs, url } = await serve({ key: OTHER_KEY })
    const { r: rc } = await dial(url, { key: [OTHER_KEY, TEST_KEY] })
    await rs.until(() => rs.ups.includes('standby'), 'the server sees the client')
    await rc.until(() => rc.ups.includes('active'), 'the client sees the server')
  })

  it('mixed configurations fail clearly: a keyed server and an insecure client', async () => {
    const { r: rs, url } = await serve({ key: TEST_KEY })
    const { r: rc } = await dial(url, { insecure: true })
    await rs.until(() => rs.errors.some((e) => /has no group key/.test(e.message)), 'the server says the client has no key')
    await rc.until(() => rc.errors.some((e) => /requires group authentication/.test(e.message)), 'the client says the server requires authentication')
    expect(rs.errors.find((e) => /has no group key/.test(e.message))).toBeInstanceOf(AuthError)
    expect(rc.errors.find((e) => /requires group authentication/.test(e.message))).toBeInstanceOf(AuthError)
    expect([...rs.ups, ...rc.ups]).toEqual([])
  })

  it('mixed configurations fail clearly: an insecure server and a keyed client', async () => {
    const { r: rs, url } = await serve({ insecure: true })
    const { r: rc } = await dial(url, { key: TEST_KEY })
    await rs.until(() => rs.errors.some((e) => /requires group authentication/.test(e.message)), 'the server says the client requires authentication')
    await rc.until(() => rc.errors.some((e) => /has no group key/.test(e.message)), 'the client says the server has no key')
    expect(rc.errors.find((e) => /has no group key/.test(e.message))).toBeInstanceOf(AuthError)
    expect([...rs.ups, ...rc.ups]).toEqual([])
  })
})

describe('websocket: strangers before authentication', () => {
  for (const auth of [{ key: TEST_KEY }, { insecure: true }] as const) {
    const mode = 'key' in auth ? 'keyed' : 'insecure'

    it(`${mode}: a stranger that sends more than 4 KiB before authenticating is closed`, async () => {
      const { r: rs, url } = await serve(auth)
      const x = await stranger(url)
      x.ws.send(envelope(AUTH_HELLO, new Uint8Array(4097)))
      await within(x.closed, 5000, 'the server closes the stranger')
      await rs.until(() => rs.errors.some((e) => /before it completed its handshake/.test(e.message)), 'the server reports the oversized message')
      expect(rs.ups).toEqual([])
      // A message of exactly 4 KiB is taken (and fails the handshake on its merits, or is a plain HELLO).
      const y = await stranger(url)
      y.ws.send(envelope(HELLO, text('y'.repeat(4096))))
      if (mode === 'insecure') await rs.until(() => rs.ups.includes('y'.repeat(4096)), 'a 4 KiB HELLO is taken')
      else await within(y.closed, 5000, 'the keyed server refuses a plain HELLO')
    })

    it(`${mode}: a stranger that never completes the handshake is closed at the deadline`, async () => {
      const { r: rs, url } = await serve({ ...auth, handshakeTimeoutMs: 200 })
      const started = performance.now()
      const x = await stranger(url)
      await within(x.closed, 5000, 'the server closes the silent stranger')
      expect(performance.now() - started).toBeGreaterThanOrEqual(190)
      await rs.until(() => rs.errors.length > 0, 'the server reports the deadline')
      expect(rs.errors[0]?.message).toMatch(/within 200 ms/)
      if (mode === 'keyed') expect((rs.errors[0] as AuthError).reason).toBe('TIMEOUT')
      expect(rs.ups).toEqual([])
    })

    it(`${mode}: at most maxPendingConnections wait; one more is closed at once, and members get in once they go`, async () => {
      const { r: rs, url } = await serve({ ...auth, maxPendingConnections: 3, handshakeTimeoutMs: 15_000 })
      const waiting = [await stranger(url), await stranger(url), await stranger(url)]
      const extra = await stranger(url)
      await within(extra.closed, 5000, 'the server closes the connection over the cap')
      await rs.until(() => rs.errors.some((e) => /maxPendingConnections 3/.test(e.message)), 'the server reports the cap')
      expect(waiting.map((w) => w.isClosed())).toEqual([false, false, false])
      for (const w of waiting) w.ws.terminate()
      await Promise.all(waiting.map((w) => w.closed))
      // The server saw them go (their close completes on its side on a later turn): a member now gets in.
      const { r: rc } = await dial(url, auth)
      await rc.until(() => rc.ups.includes('active'), 'a member connects once the strangers are gone')
      await rs.until(() => rs.ups.includes('standby'), 'the server sees the member')
    })
  }

  it('keyed: a stranger that speaks DATA before the handshake is closed, and nothing reaches the node', async () => {
    const { r: rs, url } = await serve({ key: TEST_KEY })
    const x = await stranger(url)
    x.ws.send(envelope(1, text('forged frame')))
    await within(x.closed, 5000, 'the server closes the stranger')
    await rs.until(() => rs.errors.some((e) => e instanceof AuthError), 'the server reports it')
    expect(rs.messages).toEqual([])
    // What the stranger saw: the server's handshake HELLO, nothing else.
    expect(x.received.map((b) => b[0])).toEqual([AUTH_HELLO])
  })
})

describe('websocket: a peer id is bound to its live connection', () => {
  it('keyed: a second connection claiming a live peer id is refused, and the first stays up and keeps delivering', async () => {
    const { s, r: rs, url } = await serve({ key: TEST_KEY })
    const { c: first, r: r1 } = await dial(url, { key: TEST_KEY })
    await rs.until(() => rs.ups.includes('standby'), 'the first connection is up')
    const { r: r2 } = await dial(url, { key: TEST_KEY })
    await rs.until(() => rs.errors.some((e) => /"standby"/.test(e.message) && /refused the new one/.test(e.message)), 'the server refuses the second, naming the id')
    await r2.until(() => r2.errors.some((e) => /is connected and answering on another connection/.test(e.message)), 'the refused client is told why')
    expect(r2.ups).toEqual([])
    expect(rs.ups).toEqual(['standby'])
    expect(rs.downs).toEqual([])
    void s.send(text('to the first'), 'standby')
    void first.send(text('from the first'))
    await r1.until(() => r1.messages.length > 0, 'the first still receives')
    await rs.until(() => rs.messages.length > 0, 'the server still receives from the first')
    expect(str(r1.messages[0]?.data as Uint8Array)).toBe('to the first')
    expect(rs.messages.map((m) => [m.from, str(m.data)])).toEqual([['standby', 'from the first']])
    expect(r2.messages).toEqual([])
  })

  it('insecure: a stranger that says HELLO with a connected peer id is refused; the peer is not dropped', async () => {
    const { s, r: rs, url } = await serve({ insecure: true })
    const { c: first, r: r1 } = await dial(url, { insecure: true })
    await rs.until(() => rs.ups.includes('standby'), 'the first connection is up')
    for (let i = 0; i < 5; i++) {
      const x = await stranger(url)
      x.ws.send(envelope(HELLO, text('standby')))
      await within(x.closed, 5000, `the server refuses impostor ${i}`)
      expect(x.received).toEqual([])
    }
    expect(rs.errors.filter((e) => /"standby"/.test(e.message))).toHaveLength(5)
    expect(rs.ups).toEqual(['standby'])
    expect(rs.downs).toEqual([])
    expect(r1.downs).toEqual([])
    void s.send(text('still yours'), 'standby')
    void first.send(text('still here'))
    await r1.until(() => r1.messages.length > 0, 'the first still receives')
    await rs.until(() => rs.messages.length > 0, 'the server still receives from the first')
    expect(str(r1.messages[0]?.data as Uint8Array)).toBe('still yours')
  })

  for (const auth of [{ key: TEST_KEY }, { insecure: true }] as const) {
    it(`${'key' in auth ? 'keyed' : 'insecure'}: a connection that no longer answers pings is replaced by a new one with its id after probeMs`, async () => {
      const { s, r: rs, url } = await serve({ ...auth, probeMs: 200 })
      // The first client's WebSocket never answers a ping: to the server it is a dead connection that has not closed.
      const { c: mute, r: rm } = await dial(url, { ...auth, WebSocket: wsWith({ autoPong: false }) })
      await rs.until(() => rs.ups.includes('standby'), 'the mute connection is up')
      await rm.until(() => rm.ups.includes('active'), 'the mute client is up')
      const started = performance.now()
      const { c: fresh, r: rf } = await dial(url, auth)
      await rf.until(() => rf.ups.includes('active'), 'the new connection is up once the old one failed its probe')
      expect(performance.now() - started).toBeGreaterThanOrEqual(190)
      await rs.until(() => rs.ups.length === 2, 'the server saw the peer come back')
      expect(rs.ups).toEqual(['standby', 'standby'])
      expect(rs.downs).toEqual([['standby', 'lost']])
      await rm.until(() => rm.downs.length > 0, 'the mute client lost its connection')
      // Stop the mute one from redialling (it would be refused: the fresh connection answers pings).
      await mute.close()
      void s.send(text('to the new one'), 'standby')
      await rf.until(() => rf.messages.length > 0, 'the new connection receives')
      expect(str(rf.messages[0]?.data as Uint8Array)).toBe('to the new one')
      void fresh.send(text('from the new one'))
      await rs.until(() => rs.messages.some((m) => str(m.data) === 'from the new one'), 'the server receives from the new one')
    })
  }

  it('insecure: an old connection whose client said BYE is replaced at once, without a probe', async () => {
    const { r: rs, url } = await serve({ insecure: true, probeMs: 60_000 })
    const old = await stranger(url, { autoPong: false })
    old.ws.send(envelope(HELLO, text('standby')))
    await rs.until(() => rs.ups.includes('standby'), 'the old connection is up')
    old.ws.send(envelope(3, new Uint8Array(0))) // BYE, and the socket stays open
    const fresh = await stranger(url)
    fresh.ws.send(envelope(HELLO, text('standby')))
    await rs.until(() => rs.ups.length === 2, 'the new connection is up (a probe would take a minute)')
    expect(rs.downs).toEqual([['standby', 'closed']])
    await within(old.closed, 5000, 'the old connection is closed')
    expect(fresh.isClosed()).toBe(false)
  })

  it('a client claiming the server\'s own id is refused', async () => {
    const { r: rs, url } = await serve({ key: TEST_KEY })
    const { r: rc } = await dial(url, { key: TEST_KEY, id: 'active' })
    await rs.until(() => rs.errors.some((e) => e instanceof TransportError && /own id/.test(e.message)), 'the server refuses its own id')
    expect([...rs.ups, ...rc.ups]).toEqual([])
  })
})

describe('websocket over wss:', () => {
  const hasOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  })()

  it.skipIf(!hasOpenssl)('a keyed client reaches a keyed server behind an https.Server with a self-signed certificate it is given as ca (and a client without it is refused by TLS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-wss-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    )
    const cert = readFileSync(join(dir, 'cert.pem'))
    const https = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert })
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()))
    cleanup.push(() => new Promise<void>((r) => (https.closeAllConnections(), https.close(() => r()))))
    const url = `wss://127.0.0.1:${(https.address() as { port: number }).port}/ha`
    const rs = new Recorder()
    const s = webSocketServer({ id: 'active', server: https, path: '/ha', key: TEST_KEY })
    await s.open(rs)
    cleanup.push(() => s.close())
    // Without the certificate, TLS refuses the server (NODE_TLS_REJECT_UNAUTHORIZED is not in play).
    const refused = new WsWebSocket(url)
    const tlsError = await within(new Promise<Error>((r) => refused.once('error', r)), 5000, 'TLS rejects the self-signed certificate')
    expect(tlsError.message).toMatch(/self[- ]signed/i)
    const { c, r: rc } = await dial(url, { key: TEST_KEY, crypto: nodeCrypto, WebSocket: wsWith({ ca: cert }) })
    await rc.until(() => rc.ups.includes('active'), 'the client is up over wss')
    await rs.until(() => rs.ups.includes('standby'), 'the server sees the client over wss')
    void c.send(text('over tls'))
    void s.send(text('and back'))
    await rs.until(() => rs.messages.length > 0, 'the server receives over wss')
    await rc.until(() => rc.messages.length > 0, 'the client receives over wss')
    expect(str(rs.messages[0]?.data as Uint8Array)).toBe('over tls')
    expect(str(rc.messages[0]?.data as Uint8Array)).toBe('and back')
  })
})
