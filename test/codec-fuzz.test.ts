import { describe, expect, it } from 'vitest'
import { fuzzCodec, outsideSubset, same } from './support/codec-fuzz.js'

/**
 * The differential fuzz of the frame reader against cbor-x (see
 * test/support/codec-fuzz.ts for the generators and the rules); the same run
 * at a million inputs and any seed: `npm run fuzz:codec -- --inputs 1000000 --seed N`.
 */
describe('CborReader against cbor-x', () => {
  it('agrees with cbor-x on 100,000 well-formed, mutated and random inputs, refusing only what frames never hold', () => {
    const report = fuzzCodec({ inputs: 100_000, seed: 20261130 })
    expect(report.disagreements).toEqual([])
    expect(report.disagreed).toBe(0)
    // The run means something: most inputs decode, and every generator contributed.
    expect(report.agreed).toBeGreaterThan(50_000)
    expect(Object.keys(report.sources).sort()).toEqual(['cache twins', 'cbor-x (defaults)', 'cbor-x (frame options)', 'mutated', 'random', 'raw', 'raw + foreign', 'writer'])
    for (const why of Object.keys(report.refusals)) expect(why).toMatch(/^(map|tag \d+|other tag|bignum shape|(two-byte )?simple \d+|indefinite|too deep)$/)
  }, 60_000)

  it('the judge of the subset names the refusals and lets well-formed frame items through', () => {
    const hex = (h: string) => Buffer.from(h, 'hex')
    expect(outsideSubset(hex('8100'))).toBeUndefined()
    expect(outsideSubset(hex('7b000000000000000161'))).toBeUndefined()
    expect(outsideSubset(hex('c24100'))).toBeUndefined()
    expect(outsideSubset(hex('a0'))).toBe('map')
    expect(outsideSubset(hex('d9d9f700'))).toBe('tag 55799')
    expect(outsideSubset(hex('c200'))).toBe('bignum shape')
    expect(outsideSubset(hex('9f00ff'))).toBe('indefinite')
    expect(outsideSubset(hex('e0'))).toBe('simple 0')
    expect(outsideSubset(hex('f815'))).toBe('two-byte simple 21')
    expect(outsideSubset(hex('d90100f6'))).toBe('other tag')
    expect(outsideSubset(hex('62c328'))).toBeUndefined() // not UTF-8, but both decoders read it, with U+FFFD
    expect(same([0], 0)).toBe(false)
    expect(same(Number.NaN, Number.NaN)).toBe(true)
    expect(same(0, -0)).toBe(false)
    expect(same(new Uint8Array([1]), Buffer.from([1]))).toBe(true)
  })
})
