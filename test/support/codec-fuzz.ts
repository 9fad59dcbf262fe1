/**
 * Differential fuzz of {@link CborReader} against cbor-x, shared by
 * test/codec-fuzz.test.ts (a slice of it in every test run) and
 * scripts/fuzz-codec.ts (millions of inputs).
 *
 * Each input is a byte sequence decoded by both decoders; the outcome is one of
 * - both accept: the values must be the same (compared by {@link same});
 * - both refuse;
 * - cbor-x accepts and our reader refuses with a {@link CborError}: allowed only
 *   when the input lies outside the CBOR our frames use, as decided by
 *   {@link outsideSubset}, an independent walk of the bytes. Each reason is
 *   one of our reader's deliberate refusals, counted by name:
 *     map            — major type 5 (frames are arrays);
 *     tag N, other tag — any tag but 2 and 3 (cbor-x reads 0/1 as dates, 28/29 as
 *                      shared references, 55799 as a no-op, 64–87 as typed arrays…;
 *                      tags 0, 1, 28, 55799 and 64 are counted by number);
 *     bignum shape   — tag 2/3 around anything but a byte string;
 *     simple N       — simple values other than false, true, null, undefined
 *                      (cbor-x reads some as "packed values"), and any in the
 *                      two-byte form f8 xx (cbor-x reads f8 15 as true);
 *     indefinite     — indefinite-length arrays and maps;
 *     too deep       — nested more than 32 levels.
 *   Text that is not valid UTF-8 is inside the subset: both decoders replace
 *   the bad bytes with U+FFFD, and must do it alike.
 * - our reader accepts and cbor-x refuses, our reader throws anything but a
 *   CborError, or it refuses an input inside the subset: a disagreement.
 *
 * All of one run goes through one CborReader (and the module's one string
 * cache), with strings drawn from a small pool, so cache slots fill, collide
 * and are overwritten the way a long-lived connection's would be.
 */
import './cborx-js.js'
import { Decoder, Encoder, encode as cborxDefaultEncode, isNativeAccelerationEnabled } from 'cbor-x'
import { CborError, CborReader } from '../../src/codec/reader.js'
import { CborWriter } from '../../src/codec/writer.js'
import { type Random, seededRandom } from '../../src/random.js'

/**
 * cbor-x configured as the frames' own tests use it. In the subset the options
 * make no difference (they concern maps, records, tags and float32 rounding,
 * which is off by default); outside it our reader refuses anyway.
 */
if (isNativeAccelerationEnabled) throw new Error('cbor-x was loaded with native string extraction before the fuzz could turn it off')
const cborx = new Decoder({ useRecords: false, mapsAsObjects: false })
const frameEncoder = new Encoder({ useRecords: false, tagUint8Array: false, largeBigIntToFloat: false, pack: false })

export interface FuzzReport {
  inputs: number
  /** Both decoded, to the same value. */
  agreed: number
  /** Both refused. */
  bothRefused: number
  /** cbor-x accepted, we refused, the input is outside the subset: count by reason. */
  refusals: Record<string, number>
  /** How many inputs disagreed; the first few are in {@link disagreements}. */
  disagreed: number
  disagreements: Disagreement[]
  /** How many inputs came from each generator. */
  sources: Record<string, number>
}

export interface Disagreement {
  seed: number
  index: number
  source: string
  hex: string
  ours: string
  cborx: string
}

/** The per-input seed: inputs are independent of one another except through the string cache. */
export function inputSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ index
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}

// ---------------------------------------------------------------- values --

const int = (r: Random, n: number) => Math.floor(r() * n)
const pick = <T>(r: Random, xs: readonly T[]): T => xs[int(r, xs.length)] as T

/** Lengths around every boundary of the reader and writer: 16 (cache), 24 (head), 64 (shortString), 8/4 (chunks). */
const LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17, 22, 23, 24, 25, 31, 32, 33, 47, 48, 63, 64, 65, 70]
const length = (r: Random) => (r() < 0.7 ? pick(r, LENGTHS) : int(r, 71))

function codePoint(r: Random, kind: number): number {
  switch (kind) {
    case 0: // ASCII, including controls
      return int(r, 0x80)
    case 1: // Latin-1 range: each one UTF-8-encodes to two bytes whose Latin-1 reading looks like another string
      return 0x80 + int(r, 0x80)
    case 2: {
      // BMP, no surrogates
      const c = 0x100 + int(r, 0xfffe - 0x100)
      return c >= 0xd800 && c <= 0xdfff ? c - 0x800 : c
    }
    default: // astral
      return 0x10000 + int(r, 0x10ffff - 0x10000)
  }
}

/** A string of `n` code points mixing the kinds in `kinds`. */
function stringOf(r: Random, n: number, kinds: number[]): string {
  let s = ''
  for (let i = 0; i < n; i++) s += String.fromCodePoint(codePoint(r, pick(r, kinds)))
  return s
}

const utf8 = new TextEncoder()
/** The Latin-1 reading of the string's UTF-8 bytes: "café" → "cafÃ©" (each char code is one of the bytes). */
export const mojibake = (s: string) => String.fromCharCode(...utf8.encode(s))

function freshString(r: Random): string {
  const n = length(r)
  const k = r()
  const s = k < 0.4 ? stringOf(r, n, [0]) : k < 0.6 ? stringOf(r, n, [0, 0, 0, 1]) : k < 0.75 ? stringOf(r, n, [1]) : k < 0.9 ? stringOf(r, n, [0, 1, 2]) : stringOf(r, n, [0, 1, 2, 3])
  // Trim to at most 70 UTF-16 units without splitting a pair.
  return Array.from(s).slice(0, 70).join('')
}

/**
 * The slot of the reader's 1024-slot short-string cache that `b` lands in — a
 * copy of its hash, used only to make inputs that collide there. Should the
 * reader's hash change, those inputs stay valid, they just stop colliding.
 */
function cacheSlot(prefix: Uint8Array, asciiSuffix: string): number {
  let h = prefix.length + asciiSuffix.length
  for (let i = 0; i < prefix.length; i++) h = (Math.imul(h, 31) + (prefix[i] as number)) | 0
  for (let i = 0; i < asciiSuffix.length; i++) h = (Math.imul(h, 31) + asciiSuffix.charCodeAt(i)) | 0
  return (h ^ (h >>> 10)) & 1023
}

/** Strings that repeat across inputs, and their Latin-1-looking twins: cache hits, collisions and near misses. */
class StringPool {
  private readonly items: string[] = []
  /**
   * [twin, s]: s has non-ASCII characters and at most 16 UTF-8 bytes, twin is
   * the Latin-1 reading of those bytes (as many UTF-16 units as s has bytes),
   * and both, with the same " #k" suffix, land in the same cache slot — the
   * shape of "cafÃ© #8303" and "café #8303".
   */
  readonly twins: [string, string][] = []
  constructor(r: Random, size: number) {
    for (let i = 0; i < size; i++) {
      const s = freshString(r)
      this.items.push(s)
      if (/[^\x00-\x7f]/.test(s)) this.items.push(mojibake(s), `${s} #${i}`, `${mojibake(s)} #${i}`)
    }
    while (this.twins.length < 64) {
      const base = stringOf(r, 1 + int(r, 6), [0, 1, 1, 2])
      const bytes = utf8.encode(base)
      const twinBytes = utf8.encode(mojibake(base))
      for (let k = 0; k < 10_000 && twinBytes.length + 2 + String(k).length <= 16; k++) {
        const suffix = ` #${k}`
        if (cacheSlot(bytes, suffix) === cacheSlot(twinBytes, suffix)) {
          const pair: [string, string] = [mojibake(base) + suffix, base + suffix]
          this.twins.push(pair)
          this.items.push(...pair)
          break
        }
      }
    }
  }
  draw(r: Random): string {
    return pick(r, this.items)
  }
}

function number(r: Random): number {
  switch (int(r, 10)) {
    case 0:
      return int(r, 24)
    case 1:
      return 24 + int(r, 256 - 24)
    case 2:
      return 256 + int(r, 65536 - 256)
    case 3:
      return 65536 + int(r, 2 ** 32 - 65536)
    case 4:
      return Math.floor(r() * 2 ** 53) // wider than 32 bits: a float64 on the wire
    case 5:
      return -1 - number(r)
    case 6:
      return pick(r, [0, -0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, Number.NaN, 0.5, -1.5, 1e-7])
    case 7:
      return Math.fround((r() - 0.5) * 2 ** int(r, 60)) // representable in single precision
    case 8:
      return (int(r, 2048) - 1024) / 2 ** int(r, 12) // often representable in half precision
    default:
      return new DataView(Float64Array.of(r(), r()).buffer).getFloat64(int(r, 9) & 8) // arbitrary bits, NaNs included
  }
}

function bigint(r: Random): bigint {
  let n = 0n
  const bytes = int(r, 12)
  for (let i = 0; i < bytes; i++) n = (n << 8n) | BigInt(int(r, 256))
  return r() < 0.5 ? n : -1n - n
}

function bytes(r: Random): Uint8Array {
  const b = new Uint8Array(length(r))
  for (let i = 0; i < b.length; i++) b[i] = int(r, 256)
  return b
}

function leaf(r: Random, pool: StringPool): unknown {
  const k = int(r, 20)
  if (k < 8) return pool.draw(r)
  if (k < 9) return freshString(r)
  if (k < 14) return number(r)
  if (k < 15) return bigint(r)
  if (k < 16) return bytes(r)
  return pick(r, [true, false, null, undefined])
}

function value(r: Random, pool: StringPool, depth: number): unknown {
  if (depth > 3 || r() < 0.35 + depth * 0.15) return leaf(r, pool)
  // Long arrays (around the 24-item head boundary) only near the top, so inputs stay small.
  const n = depth === 0 && r() < 0.06 ? pick(r, [23, 24, 25, 30]) : int(r, 5)
  return Array.from({ length: n }, () => value(r, pool, depth + 1))
}

/** The shape of a delta frame: [1, 3, epoch, seq, [roots, nodes, changes, freed]] with short property names. */
function frameLike(r: Random, pool: StringPool): unknown[] {
  const changes: unknown[] = []
  for (let i = 0, n = int(r, 12); i < n; i++) changes.push(int(r, 5000), pool.draw(r), leaf(r, pool))
  return [1, 3, int(r, 4), 1 + int(r, 100_000), [[], [], changes, []]]
}

// ------------------------------------------------------------ raw bytes --

/** Writes CBOR by hand: non-shortest heads, half and single floats, bignums, 8-byte lengths — all well-formed. */
class Raw {
  readonly out: number[] = []
  constructor(private readonly r: Random) {}

  head(major: number, n: number | bigint): void {
    const m = major << 5
    const v = BigInt(n)
    const min = v < 24n ? 0 : v < 0x100n ? 1 : v < 0x10000n ? 2 : v < 0x100000000n ? 4 : 8
    const widths = [0, 1, 2, 4, 8].filter((w) => w >= min)
    const w = this.r() < 0.6 ? min : pick(this.r, widths)
    if (w === 0) this.out.push(m | Number(v))
    else {
      this.out.push(m | { 1: 24, 2: 25, 4: 26, 8: 27 }[w]!)
      for (let i = w - 1; i >= 0; i--) this.out.push(Number((v >> BigInt(8 * i)) & 0xffn))
    }
  }

  value(v: unknown): void {
    const r = this.r
    if (typeof v === 'number') {
      if (Number.isInteger(v) && !Object.is(v, -0) && Math.abs(v) <= 2 ** 53 && r() < 0.8) {
        if (v >= 0) return this.head(0, v)
        return this.head(1, BigInt(-1 - v))
      }
      const f16 = toHalf(v)
      if (f16 !== undefined && r() < 0.7) return this.bytes([0xf9, f16 >> 8, f16 & 0xff])
      if (Object.is(Math.fround(v), v) || (Number.isNaN(v) && r() < 0.3)) {
        const dv = new DataView(new ArrayBuffer(4))
        dv.setFloat32(0, v)
        if (r() < 0.7) return this.bytes([0xfa, ...new Uint8Array(dv.buffer)])
      }
      const dv = new DataView(new ArrayBuffer(8))
      dv.setFloat64(0, v)
      return this.bytes([0xfb, ...new Uint8Array(dv.buffer)])
    }
    if (typeof v === 'string') {
      const b = utf8.encode(v)
      this.head(3, b.length)
      return this.bytes(b)
    }
    if (typeof v === 'bigint') {
      const neg = v < 0n
      const mag = neg ? -1n - v : v
      if (mag < 1n << 64n && r() < 0.5) return this.head(neg ? 1 : 0, mag)
      // Tag 2/3 with the magnitude big-endian, sometimes with leading zero bytes.
      const digits: number[] = []
      for (let m = mag; m > 0n; m >>= 8n) digits.unshift(Number(m & 0xffn))
      for (let z = r() < 0.2 ? int(r, 3) : 0; z > 0; z--) digits.unshift(0)
      this.head(6, neg ? 3 : 2)
      this.head(2, digits.length)
      return this.bytes(digits)
    }
    if (v instanceof Uint8Array) {
      this.head(2, v.length)
      return this.bytes(v)
    }
    if (Array.isArray(v)) {
      this.head(4, v.length)
      for (const x of v) this.value(x)
      return
    }
    this.out.push(v === false ? 0xf4 : v === true ? 0xf5 : v === null ? 0xf6 : 0xf7)
  }

  bytes(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.out.push(b[i] as number)
  }
}

/** The IEEE 754 half-precision bits of `v`, when it has them exactly. */
function toHalf(v: number): number | undefined {
  if (Number.isNaN(v)) return 0x7e00
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0
  const a = Math.abs(v)
  if (a === Infinity) return sign | 0x7c00
  if (a === 0) return sign
  for (let exp = -14; exp <= 15; exp++) {
    const frac = a / 2 ** exp
    if (exp === -14 && frac < 1) {
      const m = frac * 1024
      return Number.isInteger(m) ? sign | m : undefined
    }
    if (frac >= 1 && frac < 2) {
      const m = (frac - 1) * 1024
      return Number.isInteger(m) ? sign | ((exp + 15) << 10) | m : undefined
    }
  }
  return undefined
}

/** Items outside the subset, and text strings that are not UTF-8 (inside it), for the generators to splice in. */
const FOREIGN: number[][] = [
  [0xa0], // {}
  [0xa1, 0x61, 0x61, 0x01], // {a: 1}
  [0xc0, 0x60], // tag 0
  [0xc1, 0x00], // tag 1 (a date)
  [0xd9, 0xd9, 0xf7, 0x81, 0x00], // self-described [0]
  [0xd8, 0x1c, 0x81, 0x00], // tag 28 (shareable) [0]
  [0xd8, 0x40, 0x41, 0x00], // tag 64, a Uint8Array
  [0xc2, 0x00], // a bignum tag around an integer
  [0xc3, 0x81, 0x00], // … around an array
  [0x9f, 0x00, 0xff], // indefinite [0]
  [0xbf, 0xff], // indefinite {}
  [0xe0], // simple 0
  [0xf0], // simple 16
  [0xf8, 0x20], // simple 32
  [0x62, 0xc3, 0x28], // invalid UTF-8
  [0x61, 0xff],
  [0x63, 0xed, 0xa0, 0x80], // a UTF-8-encoded surrogate
  [0x64, 0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0x62, 0xc0, 0x80], // overlong
]

// -------------------------------------------------------------- verdicts --

/**
 * Why `b` is outside the CBOR our frames use, or undefined when it is inside
 * (one well-formed item of the subset, exactly spanning `b`, or malformed —
 * truncated, reserved information, trailing bytes — which cbor-x refuses too).
 */
export function outsideSubset(b: Uint8Array): string | undefined {
  let p = 0
  let reason: string | undefined
  const arg = (info: number): number | undefined => {
    if (info < 24) return info
    const w = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
    if (w === 0 || p + w > b.length) return undefined
    let n = 0
    for (let i = 0; i < w; i++) n = n * 256 + (b[p + i] as number)
    p += w
    return n
  }
  const item = (depth: number): boolean => {
    if (reason !== undefined || p >= b.length) return false
    if (depth > 32) {
      reason = 'too deep'
      return false
    }
    const h = b[p++] as number
    const major = h >> 5
    const info = h & 31
    if (info === 31 && (major === 4 || major === 5)) {
      reason = 'indefinite'
      return false
    }
    if (major === 7) {
      if (info >= 20 && info <= 23) return true
      if (info >= 25 && info <= 27) return (p += 1 << (info - 24)) <= b.length
      // f8 xx: RFC 8949 calls xx < 32 not well-formed; cbor-x reads f8 15 as true.
      reason = info === 24 ? `two-byte simple ${b[p]}` : `simple ${info}`
      return false
    }
    const n = arg(info)
    if (n === undefined) return false
    switch (major) {
      case 2:
      case 3:
        if (p + n > b.length) return false
        p += n
        return true
      case 4:
        for (let i = 0; i < n; i++) if (!item(depth + 1)) return false
        return true
      case 5:
        reason = 'map'
        return false
      case 6:
        if (n !== 2 && n !== 3) {
          reason = [0, 1, 28, 55799, 64].includes(n) ? `tag ${n}` : 'other tag'
          return false
        }
        if (p >= b.length) return false
        if ((b[p] as number) >> 5 !== 2) {
          reason = 'bignum shape'
          return false
        }
        return item(depth + 1)
      default:
        return true
    }
  }
  item(0)
  return reason
}

/** Same value: numbers by Object.is (NaN equals NaN, 0 is not −0), byte strings by content, arrays element by element. */
export function same(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false
  if (typeof a === 'number') return Object.is(a, b)
  if (a === null || b === null || typeof a !== 'object') return a === b
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!(i in a) || !(i in b) || !same(a[i], b[i])) return false
    return true
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array && !Array.isArray(b)) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  return false
}

export function show(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) =>
    typeof x === 'bigint' ? `${x}n` : typeof x === 'number' && !Number.isFinite(x) ? String(x) : Object.is(x, -0) ? '-0' : x instanceof Uint8Array ? `h'${Buffer.from(x).toString('hex')}'` : x === undefined ? 'undefined' : x,
  ) ?? String(v)
}

// ---------------------------------------------------------------- inputs --

/** One input: its bytes and the generator that made them. */
function input(r: Random, pool: StringPool, writer: CborWriter): [string, Uint8Array] {
  const k = int(r, 100)
  if (k < 3) {
    // Cache twins, the Latin-1-looking one first, in one input or in two consecutive ones.
    const [twin, s] = pick(r, pool.twins)
    return ['cache twins', r() < 0.5 ? writer.encode([twin, s, [twin], s]) : writer.encode(r() < 0.5 ? twin : s)]
  }
  if (k < 22) return ['writer', writer.encode(r() < 0.3 ? frameLike(r, pool) : value(r, pool, 0))]
  if (k < 34) return ['cbor-x (frame options)', frameEncoder.encode(value(r, pool, 0))]
  if (k < 40) {
    // The default encoder: tags byte strings as typed arrays and writes objects as maps.
    const v = value(r, pool, 0)
    return ['cbor-x (defaults)', cborxDefaultEncode(r() < 0.2 ? { k: v, [pool.draw(r)]: v } : v)]
  }
  if (k < 62) {
    const raw = new Raw(r)
    raw.value(value(r, pool, 0))
    return ['raw', Uint8Array.from(raw.out)]
  }
  if (k < 70) {
    // A foreign item spliced into an array of well-formed ones.
    const raw = new Raw(r)
    const n = 1 + int(r, 4)
    raw.head(4, n)
    const at = int(r, n)
    for (let i = 0; i < n; i++) i === at ? raw.bytes(pick(r, FOREIGN)) : raw.value(leaf(r, pool))
    return ['raw + foreign', Uint8Array.from(raw.out)]
  }
  if (k < 95) {
    // Mutations of a well-formed input: byte flips, a cut, an inserted or deleted byte.
    const [, base] = input(r, pool, writer)
    const b = Array.from(base)
    for (let m = 1 + int(r, 3); m > 0; m--) {
      const op = int(r, 4)
      const at = int(r, b.length + 1)
      if (op === 0 && b.length) b[at % b.length] = int(r, 256)
      else if (op === 1 && b.length) b[at % b.length] = (b[at % b.length] as number) ^ (1 << int(r, 8))
      else if (op === 2) b.splice(at, 0, int(r, 256))
      else b.splice(at, 1)
    }
    if (r() < 0.2) b.length = int(r, b.length + 1)
    return ['mutated', Uint8Array.from(b)]
  }
  // Short random bytes, biased to the heads the subset uses.
  const b = new Uint8Array(1 + int(r, 12))
  for (let i = 0; i < b.length; i++) b[i] = r() < 0.5 ? pick(r, [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x20, 0x38, 0x3b, 0x40, 0x41, 0x60, 0x61, 0x62, 0x80, 0x81, 0x82, 0x98, 0xc2, 0xc3, 0xf4, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb]) : int(r, 256)
  return ['random', b]
}

/** Runs `inputs` inputs from `seed`; `onProgress` is called every 2^16 inputs. */
export function fuzzCodec(opts: { inputs: number; seed: number; maxDisagreements?: number; onProgress?: (done: number, report: FuzzReport) => void }): FuzzReport {
  const report: FuzzReport = { inputs: 0, agreed: 0, bothRefused: 0, refusals: {}, disagreed: 0, disagreements: [], sources: {} }
  const reader = new CborReader()
  const writer = new CborWriter()
  const pool = new StringPool(seededRandom(opts.seed), 3000)
  const max = opts.maxDisagreements ?? 20
  for (let i = 0; i < opts.inputs; i++) {
    const [source, bytes] = input(seededRandom(inputSeed(opts.seed, i)), pool, writer)
    report.inputs++
    report.sources[source] = (report.sources[source] ?? 0) + 1
    const problem = judge(reader, bytes)
    if (problem === 'agreed') report.agreed++
    else if (problem === 'both refused') report.bothRefused++
    else if (problem.startsWith('refused: ')) {
      const why = problem.slice(9)
      report.refusals[why] = (report.refusals[why] ?? 0) + 1
    } else if (report.disagreed++ < max) {
      const [ours, theirs] = problem.split('\u0000') as [string, string]
      report.disagreements.push({ seed: opts.seed, index: i, source, hex: Buffer.from(bytes).toString('hex'), ours, cborx: theirs })
    }
    if (opts.onProgress && (i & 0xffff) === 0xffff) opts.onProgress(i + 1, report)
  }
  return report
}

/** 'agreed', 'both refused', 'refused: <reason>', or a disagreement as "ours\0cbor-x". */
function judge(reader: CborReader, bytes: Uint8Array): string {
  let ours: unknown
  let oursError: unknown
  try {
    ours = reader.decode(bytes)
  } catch (e) {
    oursError = e
  }
  let theirs: unknown
  let theirsError: unknown
  try {
    theirs = cborx.decode(bytes)
  } catch (e) {
    theirsError = e
  }
  if (oursError !== undefined && !(oursError instanceof CborError)) return `threw ${String(oursError)}\u0000${theirsError ? `threw ${String(theirsError)}` : show(theirs)}`
  if (oursError && theirsError) return 'both refused'
  if (oursError) {
    const why = outsideSubset(bytes)
    if (why !== undefined) return `refused: ${why}`
    return `refused (${(oursError as Error).message}) inside the subset\u0000${show(theirs)}`
  }
  if (theirsError) return `${show(ours)}\u0000threw ${String(theirsError)}`
  if (same(ours, theirs)) return 'agreed'
  return `${show(ours)}\u0000${show(theirs)}`
}
