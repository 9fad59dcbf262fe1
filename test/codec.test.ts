import fc from 'fast-check'
import { Decoder, Encoder } from 'cbor-x'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../src/errors.js'
import { CborReader, CborError } from '../src/codec/reader.js'
import { CborWriter } from '../src/codec/writer.js'

const cbor = new Encoder({ useRecords: false, tagUint8Array: false, largeBigIntToFloat: false, pack: false })
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false })

/** Every kind of value a frame can hold, nested in arrays. */
const frameValue = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.integer({ min: -(2 ** 33), max: 2 ** 33 }),
    fc.double(),
    fc.constantFrom(0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -(2 ** 32) - 1, 2 ** 53 + 2, Number.MAX_VALUE),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 20, maxLength: 300 }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    fc.uint8Array({ maxLength: 300 }),
  ),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 30 })),
})).node

describe('CborWriter', () => {
  it('writes exactly the bytes cbor-x writes, for every kind of value a frame holds', () => {
    fc.assert(
      fc.property(frameValue, (v) => {
        expect(Buffer.from(new CborWriter(16).encode(v)).toString('hex')).toBe(Buffer.from(cbor.encode(v)).toString('hex'))
      }),
      { seed: 3, numRuns: 3000 },
    )
  })

  it('round-trips through the cbor-x decoder, bigints staying bigints', () => {
    fc.assert(
      fc.property(frameValue, (v) => {
        const back = decoder.decode(new CborWriter(16).encode(v))
        // CBOR integers carry no sign for zero, so -0 comes back as 0 (cells escape it as [0, 0]).
        const noNegZero = (x: unknown): unknown => (Array.isArray(x) ? x.map(noNegZero) : Object.is(x, -0) ? 0 : x)
        expect(back).toEqual(noNegZero(v))
      }),
      { seed: 4, numRuns: 2000 },
    )
  })

  it('grows past its initial buffer and returns a tight, independent copy', () => {
    const w = new CborWriter(8)
    const big = Array.from({ length: 10_000 }, (_, i) => [i, `s${i}`])
    const a = w.encode(big)
    const b = w.encode([1])
    expect(a.byteOffset).toBe(0)
    expect(a.buffer.byteLength).toBe(a.length)
    expect(decoder.decode(a)).toEqual(big)
    expect(decoder.decode(b)).toEqual([1])
  })

  it('refuses values a frame never holds', () => {
    expect(() => new CborWriter().encode([{}])).toThrow(ProtocolError)
    expect(() => new CborWriter().encode(new Map())).toThrow(/cannot encode \[object Map\]/)
  })
})

describe('CborReader', () => {
  it('decodes what the writer writes to the same value cbor-x decodes', () => {
    fc.assert(
      fc.property(frameValue, (v) => {
        const bytes = new CborWriter(16).encode(v)
        expect(new CborReader().decode(bytes)).toEqual(decoder.decode(bytes))
      }),
      { seed: 5, numRuns: 3000 },
    )
  })

  it('decodes ASCII and non-ASCII strings of every short length exactly (the chunked fast path and its fallback)', () => {
    const reader = new CborReader()
    for (let n = 0; n <= 70; n++) {
      const ascii = Array.from({ length: n }, (_, i) => String.fromCharCode(33 + ((i * 7 + n) % 94))).join('')
      const wide = ascii.slice(0, Math.max(0, n - 1)) + (n ? 'é' : '')
      for (const s of [ascii, wide]) expect(reader.decode(new CborWriter(16).encode([s, s]))).toEqual([s, s])
    }
  })

  it('never accepts what cbor-x reads differently: on random and mutated bytes it agrees or refuses', () => {
    const reader = new CborReader()
    const samples = fc.sample(frameValue, { seed: 6, numRuns: 300 }).map((v) => new CborWriter(16).encode(v))
    fc.assert(
      fc.property(fc.nat(samples.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat(), (i, flips, cut) => {
        const bytes = new Uint8Array(samples[i] as Uint8Array)
        for (const [at, v] of flips) if (bytes.length) bytes[at % bytes.length] = v
        const input = bytes.subarray(0, bytes.length ? cut % (bytes.length + 1) : 0)
        let ours: unknown
        try {
          ours = reader.decode(input)
        } catch (err) {
          expect(err).toBeInstanceOf(CborError)
          return
        }
        expect(ours).toEqual(decoder.decode(input))
      }),
      { seed: 7, numRuns: 20_000 },
    )
  })

  it('refuses maps, foreign tags, indefinite lengths, lying lengths and trailing bytes', () => {
    const r = new CborReader()
    const bad = (hex: string, truncated: boolean) => {
      let err: unknown
      try {
        r.decode(Buffer.from(hex, 'hex'))
      } catch (e) {
        err = e
      }
      expect(err, hex).toBeInstanceOf(CborError)
      expect((err as CborError).truncated, hex).toBe(truncated)
    }
    bad('a0', false) // {}
    bad('c1 00'.replace(' ', ''), false) // tag 1 (a date)
    bad('9f01ff', false) // indefinite array
    bad('9affffffff', true) // 4 billion items promised, none given
    bad('0000', false) // trailing byte
    bad('7a00100000', true) // a 1 MB string that is not there
    bad('8' + '1'.repeat(1) + '8181818181818181818181818181818181818181818181818181818181818181818100', false) // too deep
    expect(r.decode(Buffer.from('f93e00', 'hex'))).toBe(1.5) // half-precision float
  })
})
