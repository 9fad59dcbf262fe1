import { describe, expect, it } from 'vitest'
import { CborReader } from '../src/codec/reader.js'
import { CborWriter } from '../src/codec/writer.js'

const writer = new CborWriter()
const utf8 = new TextEncoder()
/** The Latin-1 reading of a string's UTF-8 bytes: "café" → "cafÃ©". Its char codes are the string's bytes. */
const latin1Twin = (s: string) => String.fromCharCode(...utf8.encode(s))

describe('CborReader regressions', () => {
  it('decodes "café #8303" after "cafÃ© #8303" was decoded: the short-string cache never confuses UTF-16 code units with UTF-8 bytes', () => {
    const reader = new CborReader()
    expect(latin1Twin('café #8303')).toBe('cafÃ© #8303')
    expect(reader.decode(writer.encode('cafÃ© #8303'))).toBe('cafÃ© #8303')
    expect(reader.decode(writer.encode('café #8303'))).toBe('café #8303')
    // Both in one frame, either order.
    expect(reader.decode(writer.encode(['cafÃ© #8303', 'café #8303']))).toEqual(['cafÃ© #8303', 'café #8303'])
    expect(reader.decode(writer.encode(['café #8303', 'cafÃ© #8303']))).toEqual(['café #8303', 'cafÃ© #8303'])
  })

  it('decodes "Müller #3083" after "MÃ¼ller #3083" was decoded', () => {
    const reader = new CborReader()
    expect(reader.decode(writer.encode(['MÃ¼ller #3083', 'Müller #3083']))).toEqual(['MÃ¼ller #3083', 'Müller #3083'])
  })

  it('decodes every short non-ASCII string exactly after its Latin-1 twin, for thousands of suffixes (whatever cache slot they land in)', () => {
    const reader = new CborReader()
    const wrong: string[] = []
    for (const base of ['café', 'Müller', 'ñ', 'Ω', '€', '😀', 'aé€', 'ÿ']) {
      for (let k = 0; k < 3000; k++) {
        const s = `${base} #${k}`
        if (utf8.encode(s).length > 16) break
        const twin = latin1Twin(s)
        for (const x of [twin, s, twin]) {
          const back = reader.decode(writer.encode(x))
          if (back !== x) wrong.push(`${x} came back as ${String(back)}`)
        }
      }
    }
    expect(wrong).toEqual([])
  })

  it('decodes [0] as [0] and 0 as 0, in any order, short arrays and small integers through every head width', () => {
    const reader = new CborReader()
    const cases: [string, unknown][] = [
      ['8100', [0]],
      ['00', 0],
      ['980100', [0]],
      ['99000100', [0]],
      ['9a0000000100', [0]],
      ['9b000000000000000100', [0]],
      ['8181' + '00', [[0]]],
      ['1800', 0],
      ['190000', 0],
      ['1a00000000', 0],
      ['1b0000000000000000', 0n],
      ['8100', [0]],
      ['820000', [0, 0]],
      ['00', 0],
    ]
    for (let round = 0; round < 3; round++)
      for (const [hex, v] of cases) expect(reader.decode(Buffer.from(hex, 'hex')), hex).toEqual(v)
  })
})
