/**
 * The contract every Transport adapter passes. Exported like a public helper:
 * a third party's adapter runs it with one call,
 *
 *   runTransportContract('my-adapter', async () => ({ a, b, kill, restart, garbage }))
 *
 * where the factory returns two unopened ends that find each other once both
 * are opened, plus the few adapter-specific moves the suite cannot make itself.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { seededRandom, type PeerId, type Transport, type TransportHandler } from '../src/index.js'
import { activeResources } from './resources.js'

export interface ContractPair {
  /** Opened first (the listener, where there is one). */
  a: Transport
  /** Opened second (the dialer, where there is one). Read only after `a` is open, so it can learn a's address. */
  b: Transport
  /** Ends `t` without a goodbye, as a crash would. */
  kill(t: Transport): Promise<void> | void
  /** A fresh, unopened transport with `t`'s identity and address, as after a restart (call once `t` is gone). */
  restart(t: Transport): Promise<Transport> | Transport
  /** Sends `t` bytes this adapter must reject (garbage, an oversized length…). Omit where the adapter has no framing of its own. */
  garbage?(t: Transport): Promise<void> | void
  /** Moves time on, for adapters that notice a silent peer by timers on an injected clock. */
  advance?(ms: number): void
  /** Resources the adapter still holds once everything is closed, described (timers on a virtual clock…). */
  leftovers?(): string[]
}

/** Records what a transport reports, and waits (bounded, never sleeps) for what a test expects. */
export class Recorder implements TransportHandler {
  messages: { from: PeerId; data: Uint8Array }[] = []
  ups: PeerId[] = []
  downs: [PeerId, 'closed' | 'lost'][] = []
  errors: Error[] = []
  private waiters = new Set<() => void>()

  message(from: PeerId, data: Uint8Array): void {
    this.messages.push({ from, data: new Uint8Array(data) })
    this.wake()
  }
  peerUp(peer: PeerId): void {
    this.ups.push(peer)
    this.wake()
  }
  peerDown(peer: PeerId, reason: 'closed' | 'lost'): void {
    this.downs.push([peer, reason])
    this.wake()
  }
  error(err: Error): void {
    this.errors.push(err)
    this.wake()
  }

  /** Resolves once `cond()` holds; fails after `ms` (a bound on waiting for I/O, not a timing assertion). */
  until(cond: () => boolean, what: string, ms = 10_000, tick?: () => void): Promise<void> {
    if (cond()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return
        cleanup()
        resolve()
      }
      const poke = tick ? setInterval(() => (tick(), check()), 5) : undefined
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`timed out waiting for: ${what}`))
      }, ms)
      const cleanup = () => {
        clearTimeout(timer)
        if (poke) clearInterval(poke)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
    })
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }
}

const text = (s: string) => new TextEncoder().encode(s)
const str = (b: Uint8Array) => new TextDecoder().decode(b)

/** Resource kinds that mean a leak when they outlive a closed transport. */
const LEAKY = /^(TCPSocketWrap|TCPServerWrap|TCPWRAP|Timeout|MessagePort|PipeWrap)$/

function resources(): Map<string, number> {
  const m = new Map<string, number>()
  for (const r of activeResources()) if (LEAKY.test(r)) m.set(r, (m.get(r) ?? 0) + 1)
  return m
}

/**
 * Registers (with vitest's `describe`/`it`) the contract every `Transport`
 * passes: ordering both ways, 8 MB frames, up/down on close and on an abrupt
 * kill, no send after close, reconnection after either end restarts, bad input
 * reported without breaking the link, and a teardown that leaves nothing open.
 * `factory` is called once per test and returns two unopened ends (see
 * {@link ContractPair}).
 */
export function runTransportContract(name: string, factory: () => Promise<ContractPair>): void {
  describe(`transport contract: ${name}`, () => {
    const open: Transport[] = []
    let pair: ContractPair
    let ra: Recorder
    let rb: Recorder

    /** Opens a then b and waits until each sees the other. */
    async function connect(): Promise<void> {
      pair = await factory()
      ra = new Recorder()
      rb = new Recorder()
      open.push(pair.a)
      await pair.a.open(ra)
      open.push(pair.b)
      await pair.b.open(rb)
      await ra.until(() => ra.ups.includes(pair.b.id), 'a sees b come up', 10_000, pair.advance && (() => pair.advance?.(1)))
      await rb.until(() => rb.ups.includes(pair.a.id), 'b sees a come up')
    }

    afterEach(async () => {
      // Teardown catches what a failing test leaked.
      await Promise.all(open.splice(0).map((t) => t.close().catch(() => undefined)))
    })

    it('peers see each other come up once both ends are open', async () => {
      await connect()
      expect(ra.ups).toEqual([pair.b.id])
      expect(rb.ups).toEqual([pair.a.id])
      expect(ra.errors).toEqual([])
    })

    it('delivers frames in order between two peers, both ways, unicast and broadcast', async () => {
      await connect()
      const rnd = seededRandom(1)
      const sizes = Array.from({ length: 200 }, () => Math.floor(rnd() * 3000))
      sizes.forEach((n, i) => {
        const payload = new Uint8Array(n + 4)
        new DataView(payload.buffer).setUint32(0, i)
        payload.fill(i & 255, 4)
        void (i % 2 ? pair.a.send(payload, pair.b.id) : pair.a.send(payload))
        void pair.b.send(text(`b${i}`), i % 3 ? pair.a.id : undefined)
      })
      await rb.until(() => rb.messages.length >= 200, 'b receives 200 frames')
      await ra.until(() => ra.messages.length >= 200, 'a receives 200 frames')
      rb.messages.forEach((m, i) => {
        expect(m.from).toBe(pair.a.id)
        expect(m.data.length).toBe((sizes[i] as number) + 4)
        expect(new DataView(m.data.buffer, m.data.byteOffset).getUint32(0)).toBe(i)
        expect(m.data.every((v, k) => k < 4 || v === (i & 255))).toBe(true)
      })
      expect(ra.messages.map((m) => str(m.data))).toEqual(sizes.map((_, i) => `b${i}`))
    })

    it('a pair stays up on one path: a ping-pong run arrives once and in order, and neither end goes down or comes up again', async () => {
      await connect()
      // Each frame answers the previous one, so the run spans many round trips (a flapping connection shows up here).
      const ROUNDS = 200
      for (let i = 0; i < ROUNDS; i++) {
        void pair.a.send(text(`ping${i}`), pair.b.id)
        await rb.until(() => rb.messages.length > i, `b receives ping ${i}`, 10_000, pair.advance && (() => pair.advance?.(1)))
        void pair.b.send(text(`pong${i}`), pair.a.id)
        await ra.until(() => ra.messages.length > i, `a receives pong ${i}`, 10_000, pair.advance && (() => pair.advance?.(1)))
      }
      expect(rb.messages.map((m) => str(m.data))).toEqual(Array.from({ length: ROUNDS }, (_, i) => `ping${i}`))
      expect(ra.messages.map((m) => str(m.data))).toEqual(Array.from({ length: ROUNDS }, (_, i) => `pong${i}`))
      expect(ra.ups).toEqual([pair.b.id])
      expect(rb.ups).toEqual([pair.a.id])
      expect(ra.downs).toEqual([])
      expect(rb.downs).toEqual([])
      expect([...ra.errors, ...rb.errors]).toEqual([])
    })

    it('delivers an 8 MB frame intact', async () => {
      await connect()
      const big = new Uint8Array(8 * 1024 * 1024 + 3)
      const rnd = seededRandom(2)
      for (let i = 0; i < big.length; i += 4096) big[i] = Math.floor(rnd() * 256)
      big[big.length - 1] = 7
      void pair.a.send(big, pair.b.id)
      void pair.a.send(text('after'), pair.b.id)
      await rb.until(() => rb.messages.length >= 2, 'b receives the big frame and the next one', 30_000)
      const got = rb.messages[0]?.data as Uint8Array
      expect(got.length).toBe(big.length)
      expect(Buffer.compare(Buffer.from(got), Buffer.from(big))).toBe(0)
      expect(str(rb.messages[1]?.data as Uint8Array)).toBe('after')
    })

    it('reports a peer that closes as down (closed)', async () => {
      await connect()
      await pair.b.close()
      await ra.until(() => ra.downs.length > 0, 'a sees b go down')
      expect(ra.downs).toEqual([[pair.b.id, 'closed']])
    })

    it('reports a peer that is killed without a goodbye as down (lost)', async () => {
      await connect()
      await pair.kill(pair.b)
      await ra.until(() => ra.downs.length > 0, 'a sees b lost', 10_000, pair.advance && (() => pair.advance?.(50)))
      expect(ra.downs).toEqual([[pair.b.id, 'lost']])
    })

    it('sends nothing after close, and does not throw', async () => {
      await connect()
      await pair.b.close()
      expect(() => pair.b.send(text('after close'))).not.toThrow()
      expect(() => pair.b.send(text('after close'), pair.a.id)).not.toThrow()
      const b2 = await pair.restart(pair.b)
      open.push(b2)
      const r2 = new Recorder()
      await b2.open(r2)
      await r2.until(() => r2.ups.includes(pair.a.id), 'the restarted b sees a')
      void b2.send(text('marker'), pair.a.id)
      await ra.until(() => ra.messages.some((m) => str(m.data) === 'marker'), 'a receives the marker')
      expect(ra.messages.map((m) => str(m.data))).toEqual(['marker'])
    })

    it('reconnects after the peer restarts (either end)', async () => {
      await connect()
      // Restart b.
      await pair.kill(pair.b)
      await ra.until(() => ra.downs.length > 0, 'a sees b lost', 10_000, pair.advance && (() => pair.advance?.(50)))
      const b2 = await pair.restart(pair.b)
      open.push(b2)
      const rb2 = new Recorder()
      await b2.open(rb2)
      await ra.until(() => ra.ups.filter((p) => p === pair.b.id).length === 2, 'a sees b back')
      await rb2.until(() => rb2.ups.includes(pair.a.id), 'b2 sees a')
      void pair.a.send(text('to b2'), pair.b.id)
      await rb2.until(() => rb2.messages.length > 0, 'b2 receives')
      // Restart a: b2 must find the new a by itself.
      await pair.a.close()
      await rb2.until(() => rb2.downs.some(([p]) => p === pair.a.id), 'b2 sees a go down')
      const a2 = await pair.restart(pair.a)
      open.push(a2)
      const ra2 = new Recorder()
      await a2.open(ra2)
      await rb2.until(() => rb2.ups.filter((p) => p === pair.a.id).length === 2, 'b2 sees a back', 15_000, pair.advance && (() => pair.advance?.(50)))
      void b2.send(text('to a2'), pair.a.id)
      await ra2.until(() => ra2.messages.some((m) => str(m.data) === 'to a2'), 'a2 receives')
    })

    it('reports malformed or oversized input as an error event and keeps working', async ({ skip }) => {
      await connect()
      if (!pair.garbage) return skip()
      await pair.garbage(pair.a)
      await ra.until(() => ra.errors.length > 0, 'a reports the bad input')
      // Whatever the adapter did with the offending input, the real peer still gets through.
      await rb.until(() => rb.ups.includes(pair.a.id), 'b still (or again) connected')
      void pair.b.send(text('still here'), pair.a.id)
      await ra.until(() => ra.messages.some((m) => str(m.data) === 'still here'), 'a still receives from b', 15_000)
    })

    it('teardown leaves no open sockets, servers, channels or timers', async () => {
      const before = resources()
      await connect()
      void pair.a.send(text('x'))
      await rb.until(() => rb.messages.length > 0, 'one exchange')
      await pair.b.close()
      await pair.a.close()
      open.length = 0
      const leaked = () => {
        const now = resources()
        return [...now].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k, n]) => `${k}×${n - (before.get(k) ?? 0)}`)
      }
      // Handles are released asynchronously (a socket's close completes on a later turn of the event loop):
      // give it a bounded number of turns. setImmediate is not one of the resources counted.
      for (let turn = 0; turn < 5000 && leaked().length; turn++) await new Promise((r) => setImmediate(r))
      expect(leaked()).toEqual([])
      expect(pair.leftovers?.() ?? []).toEqual([])
    })
  })
}
