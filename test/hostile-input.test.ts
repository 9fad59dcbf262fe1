import fc from 'fast-check'
import { Encoder } from 'cbor-x'
import { describe, expect, it } from 'vitest'
import { ProtocolError, readFrame, seededRandom, Understudy, VirtualClock } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { Graph } from '../src/graph/graph.js'
import type { DeltaFrame, SnapshotFrame } from '../src/codec/frames.js'

const FUZZ = Number(process.env.FUZZ_FRAMES ?? 20_000)
const cbor = new Encoder({ useRecords: false, tagUint8Array: false })

/** Valid frames of every type, captured from a real session, to mutate. */
async function sampleFrames(): Promise<Uint8Array[]> {
  const net = new MemoryNetwork()
  const frames: Uint8Array[] = []
  const t = net.join('a')
  const send = t.send.bind(t)
  t.send = (d, to) => (frames.push(d), send(d, to))
  const tb = net.join('b')
  const sendB = tb.send.bind(tb)
  tb.send = (d, to) => (frames.push(d), sendB(d, to))
  const active = await Understudy.start({ group: 'g', transport: t, role: 'active' })
  const standby = await Understudy.start({ group: 'g', transport: tb })
  const root = active.register('r', { list: [1, { a: 'x' }], m: new Map([['k', new Set([1])]]), d: new Date(5), f: new Float32Array(3) })
  await active.commit()
  root.list.push({ a: 'y' })
  root.list.splice(0, 1)
  root.m.set('j', new Set([2]))
  root.d.setTime(9)
  root.f[1] = 2
  await active.commit()
  await active.close()
  await standby.close()
  return frames
}

function mutate(bytes: Uint8Array, rnd: () => number): Uint8Array {
  const out = new Uint8Array(bytes)
  switch (Math.floor(rnd() * 5)) {
    case 0: // flip bits
      for (let i = 0; i < 1 + rnd() * 4; i++) out[Math.floor(rnd() * out.length)]! ^= 1 << Math.floor(rnd() * 8)
      return out
    case 1: // truncate
      return out.subarray(0, Math.floor(rnd() * out.length))
    case 2: {
      // overwrite a run with random bytes
      const at = Math.floor(rnd() * out.length)
      for (let i = at; i < Math.min(out.length, at + 1 + rnd() * 8); i++) out[i] = Math.floor(rnd() * 256)
      return out
    }
    case 3: {
      // insert random bytes
      const at = Math.floor(rnd() * out.length)
      const extra = Uint8Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => Math.floor(rnd() * 256))
      return new Uint8Array([...out.subarray(0, at), ...extra, ...out.subarray(at)])
    }
    default: // random garbage
      return Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))
  }
}

describe('invariant 5 — bad input is an error, never a crash or a corruption', () => {
  it(`the decoder turns ${FUZZ} random and mutated frames into frames or ProtocolError, nothing else`, async () => {
    const samples = await sampleFrames()
    const rnd = seededRandom(5)
    let rejected = 0
    for (let i = 0; i < FUZZ; i++) {
      const bytes = mutate(samples[i % samples.length] as Uint8Array, rnd)
      try {
        readFrame(bytes)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
        rejected++
      }
    }
    expect(rejected).toBeGreaterThan(FUZZ / 4)
  })

  it('well-formed CBOR of the wrong shape is a ProtocolError with a code and a place', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.array(fc.anything()), fc.tuple(fc.constant(1), fc.integer({ min: 0, max: 9 }), fc.anything(), fc.anything(), fc.anything())), (v) => {
        try {
          readFrame(cbor.encode(v))
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError)
          expect((err as ProtocolError).reason).toMatch(/^[A-Z_]+$/)
          expect((err as ProtocolError).where).toBeTruthy()
        }
      }),
      { seed: 11, numRuns: 3000 },
    )
  })

  it('oversized frames are refused before decoding; other protocol versions are named', () => {
    expect(() => readFrame(new Uint8Array(1025), { maxFrameBytes: 1024 })).toThrow(/OVERSIZED/)
    expect(() => readFrame(cbor.encode([2, 3, 1, 1, []]))).toThrow(/VERSION.*protocol version 2/)
    expect(() => readFrame(new Uint8Array(0))).toThrow(/TRUNCATED/)
  })

  it('a HELLO is typed field by field: the role is the number 0–3, names are 1–256 characters, epoch and seq safe integers in range', () => {
    const hello = (fields: Partial<Record<'group' | 'node' | 'role' | 'epoch' | 'seq' | 'incarnation', unknown>>) => {
      const f = { group: 'g', node: 'n', role: 1, epoch: 3, seq: 7, incarnation: 'n@abc', ...fields }
      return cbor.encode([1, 1, f.group, f.node, f.role, f.epoch, f.seq, f.incarnation])
    }
    const refused = (bytes: Uint8Array, where: string) => {
      let err: unknown
      try {
        readFrame(bytes)
      } catch (e) {
        err = e
      }
      expect(err, `refused at ${where}`).toBeInstanceOf(ProtocolError)
      expect((err as ProtocolError).where).toBe(where)
    }
    expect(readFrame(hello({}))).toEqual({ type: 'hello', group: 'g', node: 'n', role: 'active', epoch: 3, seq: 7, incarnation: 'n@abc' })
    for (const [code, role] of [[0, 'standby'], [1, 'active'], [2, 'quiescing'], [3, 'stopped']] as const) expect(readFrame(hello({ role: code }))).toMatchObject({ role })
    // The role: a number, not "1", [1], bytes, a bigint, a fraction, a negative or an unknown code.
    for (const role of ['1', [1], new Uint8Array([1]), 1n, 1.5, -1, 4, 2 ** 53, null, true, 'active']) refused(hello({ role }), 'hello.role')
    // Names: non-empty strings of at most 256 UTF-16 code units (an incarnation: 64 more).
    for (const [field, where] of [['group', 'hello.group'], ['node', 'hello.node'], ['incarnation', 'hello.incarnation']] as const) {
      for (const bad of ['', 1, ['g'], new Uint8Array([0x67]), null, 'x'.repeat(field === 'incarnation' ? 321 : 257)]) refused(hello({ [field]: bad }), where)
      expect(readFrame(hello({ [field]: 'é'.repeat(256) }))).toMatchObject({ [field]: 'é'.repeat(256) })
    }
    expect(readFrame(hello({ node: 'x'.repeat(256), incarnation: `${'x'.repeat(256)}@0123456789` }))).toMatchObject({ type: 'hello' })
    // Epoch and seq: safe integers, epoch ≥ 0, seq ≥ −1.
    for (const epoch of [-1, 1.5, 2 ** 53, '3', [3], 3n, null]) refused(hello({ epoch }), 'hello.epoch')
    for (const seq of [-2, 0.5, 2 ** 53, '7', [7], 7n, null]) refused(hello({ seq }), 'hello.seq')
    // An older peer's HELLO without an incarnation is its node's.
    expect(readFrame(cbor.encode([1, 1, 'g', 'n', 0, 0, -1]))).toMatchObject({ incarnation: 'n' })
    refused(cbor.encode([1, 1, 'g', 'n', 0, 0, -1, 'n@a', 'extra']), 'hello')
  })

  it('every other frame is typed field by field: epochs and seqs safe integers in range, bodies arrays of the right arity', () => {
    const refused = (v: unknown, where: string) => {
      let err: unknown
      try {
        readFrame(cbor.encode(v))
      } catch (e) {
        err = e
      }
      expect(err, `${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x))} refused at ${where}`).toBeInstanceOf(ProtocolError)
      expect((err as ProtocolError).where).toBe(where)
    }
    for (const [type, name] of [[4, 'ack'], [5, 'resync'], [6, 'handover'], [7, 'persisted']] as const) {
      expect(readFrame(cbor.encode([1, type, 2, -1]))).toEqual({ type: name, epoch: 2, seq: -1 })
      for (const epoch of [-1, 0.5, 2 ** 53, '2', [2], 2n, null, new Uint8Array(1)]) refused([1, type, epoch, 0], `${name}.epoch`)
      for (const seq of [-2, 0.5, 2 ** 53, '0', [0], 0n, null]) refused([1, type, 2, seq], `${name}.seq`)
      refused([1, type, 2, 0, 0], name)
    }
    refused([1, 2, -1, 0, [[], []]], 'snapshot.epoch')
    refused([1, 2, 1, -1, [[], []]], 'snapshot.seq')
    refused([1, 2, 1, 0, 'body'], 'snapshot.body')
    refused([1, 2, 1, 0, [[], [], []]], 'snapshot.body')
    refused([1, 2, 1, 0, ['r', []]], 'snapshot.roots')
    refused([1, 3, 1, 0, [[], [], [], []]], 'delta.seq')
    refused([1, 3, 1, 1, [[], [], 'x', []]], 'delta.body[2]')
    // The frame type and version: numbers, not their strings; a long string is not echoed back whole.
    refused([1, '1', 'g', 'n', 1, 1, 0], 'frame[1]')
    refused(['1', 1, 'g', 'n', 1, 1, 0], 'frame[0]')
    expect(() => readFrame(cbor.encode(['v'.repeat(100_000), 1]))).toThrow(/string of 100000 characters/)
  })

  it('a delta is applied whole or not at all: every rejected mutation leaves the table byte-identical', async () => {
    const samples = await recordSession(120)
    const reference = new Graph(() => {})
    const victim = new Graph(() => {})
    const first = readFrame(samples[0] as Uint8Array) as SnapshotFrame
    expect(first.type).toBe('snapshot')
    reference.applySnapshot(first.body)
    victim.applySnapshot(first.body)
    const fingerprint = (g: Graph) => Buffer.from(cbor.encode(g.snapshot())).toString('base64')
    const rnd = seededRandom(21)
    let rejected = 0
    let accepted = 0
    for (const bytes of samples.slice(1)) {
      for (let k = 0; k < 48; k++) {
        const before = fingerprint(victim)
        let frame
        try {
          frame = readFrame(mutate(bytes, rnd))
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError)
          continue
        }
        if (frame.type !== 'delta') continue
        try {
          victim.applyDelta(frame.body)
          accepted++ // a mutation that is still a valid delta (say, a changed number); start over from the reference
          victim.applySnapshot(reference.snapshot())
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError)
          expect(fingerprint(victim)).toBe(before)
          rejected++
        }
      }
      const real = readFrame(bytes) as DeltaFrame
      reference.applyDelta(real.body)
      victim.applyDelta(real.body)
      expect(fingerprint(victim)).toBe(fingerprint(reference))
    }
    expect(rejected).toBeGreaterThan(50)
    expect(accepted + rejected).toBeGreaterThan(100)
  })

  it('a standby ignores replication frames from a peer that is not its active', async () => {
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('active'), role: 'active' })
    const standby = await Understudy.start({ group: 'g', transport: net.join('standby') })
    const root = active.register('r', { n: 1 })
    await active.commit()
    const evil = net.join('evil')
    evil.open({ message() {}, peerUp() {}, peerDown() {}, error() {} })
    evil.send(cbor.encode([1, 1, 'g', 'evil', 1, 1, 5]), 'standby')
    evil.send(cbor.encode([1, 2, 1, 7, [['r', 1], [[1, 0, ['n', 666]]]]]), 'standby')
    evil.send(cbor.encode([1, 3, 1, 2, [[], [], [1, ['n', 666]], []]]), 'standby')
    await new Promise((r) => setTimeout(r, 0))
    root.n = 2
    await active.commit()
    expect(standby.root('r')).toEqual({ n: 2 })
    await Promise.all([active.close(), standby.close(), evil.close()])
  })

  it("'__proto__', 'constructor' and 'prototype' keys in remote data never reach a prototype", async () => {
    const net = new MemoryNetwork()
    const standby = await Understudy.start({ group: 'g', transport: net.join('standby') })
    const errors: Error[] = []
    standby.on('error', (e) => errors.push(e.error))
    const evil = net.join('evil')
    evil.open({ message() {}, peerUp() {}, peerDown() {}, error() {} })
    const send = (v: unknown) => evil.send(cbor.encode(v), 'standby')
    send([1, 1, 'g', 'evil', 1, 1, 0])
    // Snapshot: root object 1 with keys that would pollute prototypes if assigned naively; object 2 carries the payload.
    send([1, 2, 1, 1, [['r', 1], [
      [1, 0, ['__proto__', [2], 'constructor', [2], 'prototype', [2]]],
      [2, 0, ['polluted', true]],
      [3, 8, ['x', 1], '__proto__'],
      [4, 8, ['y', 2], 'constructor'],
    ]]])
    await new Promise((r) => setTimeout(r, 0))
    const r = standby.root('r') as Record<string, unknown>
    expect(r).toBeDefined()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype)
    expect(Object.prototype.hasOwnProperty.call(r, '__proto__')).toBe(true)
    expect((Object.prototype as unknown as Record<string, unknown>).polluted).toBeUndefined()
    // Class tags no class is registered under are reported by name, and their objects kept as plain data.
    expect(errors.map((e) => [e.name, (e as { className?: string }).className])).toEqual([
      ['UnknownClassError', '__proto__'],
      ['UnknownClassError', 'constructor'],
    ])
    await standby.close()
    await evil.close()
  })

  it('a frame referring to an unknown object is refused whole, and the standby asks for a snapshot', async () => {
    const net = new MemoryNetwork()
    const standby = await Understudy.start({ group: 'g', transport: net.join('standby') })
    const errors: Error[] = []
    standby.on('error', (e) => errors.push(e.error))
    const evil = net.join('evil')
    const got: unknown[] = []
    evil.open({ message: (_f, d) => got.push(readFrame(d)), peerUp() {}, peerDown() {}, error() {} })
    const send = (v: unknown) => evil.send(cbor.encode(v), 'standby')
    send([1, 1, 'g', 'evil', 1, 1, 0])
    send([1, 2, 1, 1, [['r', 1], [[1, 0, ['a', 1]]]]])
    // seq 2 sets a, then references object 99 that does not exist: nothing of it may apply.
    send([1, 3, 1, 2, [[], [], [1, ['a', 2, 'b', [99]]], []]])
    await new Promise((r) => setTimeout(r, 0))
    expect(standby.root('r')).toEqual({ a: 1 })
    expect(errors.map((e) => (e as ProtocolError).reason)).toEqual(['UNKNOWN_OBJECT'])
    expect(got.some((f) => (f as { type: string; seq: number }).type === 'resync' && (f as { seq: number }).seq === -1)).toBe(true)
    await standby.close()
    await evil.close()
  })
})

/** The frames (a snapshot, then deltas) a standby received over `rounds` varied commits. */
async function recordSession(rounds: number): Promise<Uint8Array[]> {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'g', transport: net.join('active'), role: 'active' })
  const root = active.register('r', { n: 0, list: [] as unknown[], m: new Map<string, unknown>(), s: new Set<unknown>(), f: new Float64Array(4) })
  await active.commit({ mode: 'async' })
  const tb = net.join('standby')
  const frames: Uint8Array[] = []
  const open = tb.open.bind(tb)
  tb.open = (h) =>
    open({
      ...h,
      message: (from, d) => {
        const f = readFrame(d)
        if (f.type === 'delta' || f.type === 'snapshot') frames.push(d)
        h.message(from, d)
      },
    })
  const standby = await Understudy.start({ group: 'g', transport: tb })
  await active.commit()
  const rnd = seededRandom(3)
  for (let i = 0; i < rounds; i++) {
    root.n = i
    if (rnd() < 0.5) root.list.push({ i, tags: [root.list.at(-1)] })
    if (rnd() < 0.3) root.list.splice(Math.floor(rnd() * root.list.length), 1, -i)
    if (rnd() < 0.4) root.m.set(`k${i % 9}`, rnd() < 0.5 ? root.list[0] : new Date(i))
    if (rnd() < 0.3) root.s.add(i % 5 ? i : root.m)
    if (rnd() < 0.2) root.f[i % 4] = i / 3
    await active.commit()
  }
  await active.close()
  await standby.close()
  return frames
}
