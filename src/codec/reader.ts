import { UnderstudyError } from '../errors.js'

/**
 * A strict CBOR reader for Understudy's frames — the counterpart of
 * {@link CborWriter}: arrays, integers, floats, strings, byte strings,
 * booleans, null, undefined and bigints (64-bit integers and tag 2/3
 * bignums). Anything else (maps, other tags, indefinite lengths, reserved
 * values, trailing bytes) is refused, as are lengths that run past the input.
 * A property test and a differential fuzz (test/codec-fuzz.test.ts,
 * `npm run fuzz:codec`) check that whatever it accepts, cbor-x decodes to the
 * same value.
 *
 * Why not cbor-x's decoder on the hot path: its `read` is one very large
 * function whose speed depends on the shapes it has seen before (measured on
 * the same delta frames: ~165 ns per change fresh, ~640 ns after decoding other
 * frame shapes). A reader that knows only frames stays fast and is small
 * enough to audit for hostile input.
 */
/** Bytes that are not a frame's CBOR. Internal: the frame and checkpoint readers turn it into a `ProtocolError` or `CheckpointCorruptError`. */
export class CborError extends UnderstudyError {
  override name = 'CborError'
  constructor(
    readonly truncated: boolean,
    message: string,
  ) {
    super('CBOR', message)
  }
}

/** Frames nest a handful of levels; anything deeper is not a frame. */
const MAX_DEPTH = 32
const utf8 = /* @__PURE__ */ new TextDecoder()

export class CborReader {
  private buf: Uint8Array = new Uint8Array(0)
  private view: DataView = new DataView(new ArrayBuffer(0))
  private pos = 0

  /** Decodes exactly one value that spans all of `bytes`. Throws {@link CborError}. */
  decode(bytes: Uint8Array): unknown {
    this.buf = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.pos = 0
    try {
      const v = this.read(0)
      if (this.pos !== bytes.length) throw new CborError(false, `${bytes.length - this.pos} trailing bytes after the frame`)
      return v
    } finally {
      this.buf = new Uint8Array(0)
    }
  }

  private need(n: number): void {
    if (n > this.buf.length - this.pos) throw new CborError(true, `needs ${n} more bytes at offset ${this.pos}, ${this.buf.length - this.pos} left`)
  }

  /** The argument of a head byte: a length or an unsigned integer (bigint only for 8-byte integers). */
  private arg(info: number, major: number): number | bigint {
    if (info < 24) return info
    switch (info) {
      case 24:
        this.need(1)
        return this.buf[this.pos++] as number
      case 25: {
        this.need(2)
        const v = this.view.getUint16(this.pos)
        this.pos += 2
        return v
      }
      case 26: {
        this.need(4)
        const v = this.view.getUint32(this.pos)
        this.pos += 4
        return v
      }
      case 27: {
        this.need(8)
        if (major > 1) {
          if (this.view.getUint32(this.pos) !== 0) throw new CborError(true, `a length over 2^32 at offset ${this.pos}`)
          const v = this.view.getUint32(this.pos + 4)
          this.pos += 8
          return v
        }
        const v = this.view.getBigUint64(this.pos)
        this.pos += 8
        return v
      }
      default:
        throw new CborError(false, info === 31 ? 'indefinite lengths do not appear in frames' : `reserved additional information ${info}`)
    }
  }

  private read(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new CborError(false, `nested deeper than ${MAX_DEPTH}`)
    const b = this.buf
    if (this.pos >= b.length) throw new CborError(true, `needs 1 more byte at offset ${this.pos}`)
    const head = b[this.pos++] as number
    const major = head >> 5
    const info = head & 31
    // Fast paths for what frames are mostly made of: small integers, short strings and short arrays.
    if (info < 24) {
      if (major === 0) return info
      if (major === 3) {
        const start = this.pos
        if (info > b.length - start) throw new CborError(true, `needs ${info} more bytes at offset ${start}`)
        this.pos = start + info
        return cachedString(b, start, info)
      }
      if (major === 4) {
        if (info > b.length - this.pos) throw new CborError(true, `needs ${info} more bytes at offset ${this.pos}`)
        const a = new Array<unknown>(info)
        for (let i = 0; i < info; i++) a[i] = this.read(depth + 1)
        return a
      }
    } else if (major === 0 && info < 27) return this.arg(info, 0)
    switch (major) {
      case 0:
        return this.arg(info, 0)
      case 1: {
        const n = this.arg(info, 1)
        return typeof n === 'bigint' ? -1n - n : -1 - n
      }
      case 2: {
        const n = this.arg(info, 2) as number
        this.need(n)
        const b = this.buf.subarray(this.pos, this.pos + n)
        this.pos += n
        return b
      }
      case 3: {
        const n = this.arg(info, 3) as number
        this.need(n)
        const start = this.pos
        this.pos += n
        return n <= CACHED ? cachedString(this.buf, start, n) : n < 64 ? shortString(this.buf, start, n) : utf8.decode(this.buf.subarray(start, start + n))
      }
      case 4: {
        const n = this.arg(info, 4) as number
        // Every item takes at least one byte: a length beyond what is left is a lie, not an allocation.
        this.need(n)
        const a = new Array<unknown>(n)
        for (let i = 0; i < n; i++) a[i] = this.read(depth + 1)
        return a
      }
      case 5:
        throw new CborError(false, 'maps do not appear in frames')
      case 6: {
        const tag = this.arg(info, 6)
        if (tag !== 2 && tag !== 3) throw new CborError(false, `tag ${String(tag)} does not appear in frames`)
        this.need(1)
        if ((this.buf[this.pos] as number) >> 5 !== 2) throw new CborError(false, 'a bignum tag must wrap a byte string')
        const bytes = this.read(depth + 1) as Uint8Array
        let n = 0n
        for (const b of bytes) n = (n << 8n) | BigInt(b)
        return tag === 2 ? n : -1n - n
      }
      default:
        return this.simple(info)
    }
  }

  private simple(info: number): unknown {
    switch (info) {
      case 20:
        return false
      case 21:
        return true
      case 22:
        return null
      case 23:
        return undefined
      case 25: {
        this.need(2)
        const h = this.view.getUint16(this.pos)
        this.pos += 2
        return half(h)
      }
      case 26: {
        this.need(4)
        const v = this.view.getFloat32(this.pos)
        this.pos += 4
        return v
      }
      case 27: {
        this.need(8)
        const v = this.view.getFloat64(this.pos)
        this.pos += 8
        return v
      }
      default:
        throw new CborError(false, `simple value ${info} does not appear in frames`)
    }
  }
}

/**
 * Strings up to this many bytes go through the cache: property names and short values repeat a lot.
 * (Strings with a one-byte head, up to 23 bytes, take the read fast path into the cache as well.)
 */
const CACHED = 16
/**
 * ASCII strings only. A hit is checked by comparing the cached string's char
 * codes with the bytes, which is a proof of equality only when every char code
 * is a byte of its own UTF-8 — that is, for ASCII. (A non-ASCII string's UTF-8
 * bytes can equal another string's char codes: "café" is 63 61 66 c3 a9, the
 * char codes of "cafÃ©".)
 */
const cache: (string | undefined)[] = /* @__PURE__ */ new Array(1024)

/** A short string, from the cache when the same ASCII bytes decoded to it before (checked byte by byte). */
function cachedString(b: Uint8Array, start: number, n: number): string {
  let h = n
  let high = 0
  for (let i = start; i < start + n; i++) {
    const c = b[i] as number
    high |= c
    h = (Math.imul(h, 31) + c) | 0
  }
  if (high > 0x7f) return utf8.decode(b.subarray(start, start + n))
  const slot = (h ^ (h >>> 10)) & 1023
  const hit = cache[slot]
  if (hit !== undefined && hit.length === n) {
    let same = true
    for (let i = 0; i < n; i++)
      if (hit.charCodeAt(i) !== b[start + i]) {
        same = false
        break
      }
    if (same) return hit
  }
  const s = asciiString(b, start, n)
  cache[slot] = s
  return s
}


/** ASCII through {@link asciiString}; anything else through TextDecoder. */
function shortString(b: Uint8Array, start: number, n: number): string {
  const end = start + n
  for (let i = start; i < end; i++) if ((b[i] as number) > 0x7f) return utf8.decode(b.subarray(start, end))
  return asciiString(b, start, n)
}

/**
 * Bytes known to be ASCII, decoded up to eight characters per call (each `+=`
 * of one character would allocate an intermediate string).
 */
function asciiString(b: Uint8Array, start: number, n: number): string {
  const end = start + n
  let s = ''
  let i = start
  for (; i + 8 <= end; i += 8)
    s += String.fromCharCode(b[i] as number, b[i + 1] as number, b[i + 2] as number, b[i + 3] as number, b[i + 4] as number, b[i + 5] as number, b[i + 6] as number, b[i + 7] as number)
  for (; i + 4 <= end; i += 4) s += String.fromCharCode(b[i] as number, b[i + 1] as number, b[i + 2] as number, b[i + 3] as number)
  for (; i < end; i++) s += String.fromCharCode(b[i] as number)
  return s
}

/** IEEE 754 half precision. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024)
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * 2 ** (exp - 15) * (1 + frac / 1024)
}
