/**
 * The TCP adapter's pair protocol on the wire, spoken by hand: the end with
 * the lower peer id picks one connection per pair (USE) and turns away a
 * second one from the same incarnation (DUPLICATE); a new incarnation
 * replaces the old connection once that one is known dead (closed, BYE, or no
 * PONG to a PING); a claimant of a live peer's id is refused; the higher end
 * takes no frame before USE.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { tcp, type TcpTransport } from 'understudy-ha/adapters/tcp'
import { Recorder } from 'understudy-ha/testing'

const HELLO = 0
const FRAME = 1
const BYE = 2
const USE = 3
const DUPLICATE = 4
const PING = 7
const PONG = 8

const encode = (type: number, payload: Uint8Array | string = new Uint8Array(0)): Buffer => {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload)
  const out = Buffer.alloc(5 + body.length)
  out.writeUInt32BE(body.length + 1, 0)
  out[4] = type
  body.copy(out, 5)
  return out
}

/** A hand-driven end of one connection: records the frames it receives and whether it closed. */
class Wire {
  frames: { type: number; payload: string }[] = []
  closed = false
  private buf = Buffer.alloc(0)
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk])
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0)
        this.frames.push({ type: this.buf[4] as number, payload: this.buf.subarray(5, 4 + n).toString() })
        this.buf = this.buf.subarray(4 + n)
      }
    })
    socket.on('error', () => undefined)
    socket.on('close', () => (this.closed = true))
  }
  send(type: number, payload?: string): void {
    this.socket.write(encode(type, payload))
  }
  types(): number[] {
    return this.frames.map((f) => f.type)
  }
}

async function dialWire(port: number): Promise<Wire> {
  const s = createConnection({ port, host: '127.0.0.1' })
  await new Promise<void>((resolve, reject) => (s.once('connect', () => resolve()), s.once('error', reject)))
  return new Wire(s)
}

/** Polls (bounded in turns and time) until `cond()` holds. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  for (let turn = 0; turn < 10_000 && !cond() && Date.now() < end; turn++) await new Promise((r) => setTimeout(r, 2))
  if (!cond()) throw new Error(`timed out waiting for: ${what}`)
}

describe('tcp pair protocol', () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  async function listener(id: string): Promise<{ t: TcpTransport; rec: Recorder; port: number }> {
    const t = tcp({ insecure: true, id, listen: { port: 0 } })
    const rec = new Recorder()
    await t.open(rec)
    cleanup.push(() => t.close())
    return { t, rec, port: t.port as number }
  }

  it('the lower id answers the first HELLO with USE and a second connection of the same incarnation with DUPLICATE, then closes it', async () => {
    const { t, rec, port } = await listener('a')
    const first = await dialWire(port)
    cleanup.push(() => first.socket.destroy())
    first.send(HELLO, 'z\0run-1')
    await until(() => first.types().includes(USE), 'USE on the first connection')
    expect(first.types()).toEqual([HELLO, USE])
    expect(rec.ups).toEqual(['z'])
    const second = await dialWire(port)
    cleanup.push(() => second.socket.destroy())
    second.send(HELLO, 'z\0run-1')
    await until(() => second.closed, 'the duplicate connection closes')
    expect(second.types()).toEqual([HELLO, DUPLICATE])
    // The pair is untouched: still up once, on the first connection, both ways.
    first.send(FRAME, 'still here')
    await rec.until(() => rec.messages.length === 1, 'a frame on the first connection')
    void t.send(new TextEncoder().encode('back'), 'z')
    await until(() => first.frames.some((f) => f.type === FRAME && f.payload === 'back'), 'a frame back on the first connection')
    expect(rec.ups).toEqual(['z'])
    expect(rec.downs).toEqual([])
    expect(first.closed).toBe(false)
    expect(rec.errors).toEqual([])
  })

  it('a HELLO from a new incarnation replaces the old connection once that one does not answer a PING: the peer goes down and comes up again', async () => {
    const { rec, port } = await listener('a')
    const old = await dialWire(port)
    cleanup.push(() => old.socket.destroy())
    old.send(HELLO, 'z\0run-1')
    await until(() => old.types().includes(USE), 'USE on the old connection')
    const fresh = await dialWire(port)
    cleanup.push(() => fresh.socket.destroy())
    fresh.send(HELLO, 'z\0run-2')
    await until(() => fresh.types().includes(USE) && old.closed, 'USE on the new connection and the old one closed')
    expect(rec.ups).toEqual(['z', 'z'])
    expect(rec.downs).toEqual([['z', 'lost']])
  })

  it('a second connection claiming the id of a peer that answers PING is refused: the first stays up and keeps its frames', async () => {
    const { rec, port } = await listener('a')
    const real = await dialWire(port)
    cleanup.push(() => real.socket.destroy())
    real.send(HELLO, 'z\0run-1')
    await until(() => real.types().includes(USE), 'USE on the real connection')
    real.socket.on('data', () => {
      if (real.types().at(-1) === PING) real.send(PONG)
    })
    const claimant = await dialWire(port)
    cleanup.push(() => claimant.socket.destroy())
    claimant.send(HELLO, 'z\0impostor')
    await until(() => claimant.closed, 'the claimant closed')
    expect(real.types()).toContain(PING)
    expect(real.closed).toBe(false)
    real.send(FRAME, 'still here')
    await rec.until(() => rec.messages.some((m) => new TextDecoder().decode(m.data) === 'still here'), 'a frame on the real connection')
    expect(rec.ups).toEqual(['z'])
    expect(rec.downs).toEqual([])
    expect(rec.errors.some((e) => /claims peer id "z"/.test(e.message))).toBe(true)
  })

  it('a peer that said BYE on its old connection is replaced at once by its new one (no probe)', async () => {
    const { rec, port } = await listener('a')
    const old = await dialWire(port)
    cleanup.push(() => old.socket.destroy())
    old.send(HELLO, 'z\0run-1')
    await until(() => old.types().includes(USE), 'USE on the old connection')
    old.send(BYE)
    const fresh = await dialWire(port)
    cleanup.push(() => fresh.socket.destroy())
    const t0 = Date.now()
    fresh.send(HELLO, 'z\0run-2')
    await until(() => fresh.types().includes(USE) && rec.ups.length === 2, 'the new connection is up')
    expect(Date.now() - t0).toBeLessThan(500)
    expect(old.types()).not.toContain(PING)
    expect(rec.downs).toEqual([['z', 'closed']])
  })

  it('a HELLO without an incarnation (an older peer) is taken at once, whichever id is lower', async () => {
    const { rec, port } = await listener('m')
    for (const id of ['b', 'z']) {
      const w = await dialWire(port)
      cleanup.push(() => w.socket.destroy())
      w.send(HELLO, id)
      await rec.until(() => rec.ups.includes(id), `${id} is up`)
      w.send(FRAME, `from ${id}`)
      await rec.until(() => rec.messages.some((m) => new TextDecoder().decode(m.data) === `from ${id}`), `a frame from ${id}`)
      expect(w.types()).toEqual([HELLO]) // no USE to a peer that would not understand it
    }
    expect(rec.errors).toEqual([])
  })

  it('the higher id is up only once USE arrives, and takes no frame before it', async () => {
    let accepted: Wire | undefined
    const server: Server = createServer((s) => (accepted = new Wire(s)))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    cleanup.push(() => new Promise((r) => server.close(r)))
    const t = tcp({ insecure: true, id: 'z', connect: { port: (server.address() as { port: number }).port } })
    const rec = new Recorder()
    await t.open(rec)
    cleanup.push(() => t.close())
    cleanup.push(() => accepted?.socket.destroy())
    await until(() => !!accepted?.types().includes(HELLO), 'HELLO from z')
    const w = accepted as Wire
    expect(w.frames[0]?.payload.startsWith('z\0')).toBe(true)
    w.send(HELLO, 'a\0run-1')
    w.send(FRAME, 'too early')
    expect(rec.ups).toEqual([])
    void t.send(new TextEncoder().encode('not yet'), 'a')
    w.send(USE)
    w.send(FRAME, 'on time')
    await rec.until(() => rec.messages.length === 1, 'the frame after USE')
    expect(rec.ups).toEqual(['a'])
    expect(rec.messages.map((m) => new TextDecoder().decode(m.data))).toEqual(['on time'])
    void t.send(new TextEncoder().encode('now'), 'a')
    await until(() => w.frames.some((f) => f.type === FRAME), 'a frame from z')
    expect(w.frames.filter((f) => f.type === FRAME).map((f) => f.payload)).toEqual(['now'])
    expect(rec.errors).toEqual([])
  })
})
