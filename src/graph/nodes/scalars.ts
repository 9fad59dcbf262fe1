/** Dates, typed arrays and ArrayBuffers: values replicated as a whole or as a byte range. */
import { ProtocolError } from '../../errors.js'
import { Node, fail, nodeOf, readerFor, toIndex, type Where } from './base.js'

const DATE_METHODS = new Map<string | symbol, unknown>()
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  const fn = (Date.prototype as unknown as Record<string, unknown>)[name]
  if (typeof fn !== 'function' || name === 'constructor') continue
  DATE_METHODS.set(
    name,
    name.startsWith('set')
      ? function (this: unknown, ...args: unknown[]) {
          const n = nodeOf<DateNode>(this)
          n.graph.guardWrite(n, name, true)
          const r = (fn as (...a: unknown[]) => unknown).apply(n.target, args)
          n.changed = true
          n.markChanged()
          return r
        }
      : readerFor(fn as (...a: unknown[]) => unknown),
  )
}
for (const sym of [Symbol.toPrimitive]) {
  const fn = (Date.prototype as unknown as Record<symbol, (...a: unknown[]) => unknown>)[sym]
  if (fn) DATE_METHODS.set(sym, readerFor(fn))
}

export class DateNode extends Node {
  changed = false

  get(t: Date, key: string | symbol): unknown {
    return DATE_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  markChanged(): void {
    this.touch()
  }

  encodeFull(): number {
    return (this.target as Date).getTime()
  }

  encodeChange(): number | undefined {
    return this.changed ? this.encodeFull() : undefined
  }

  clearChanges(): void {
    this.changed = false
  }

  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (typeof p !== 'number') fail(where(), 'a Date payload is a number')
  }

  checkChange(p: unknown, where: Where): void {
    this.checkFull(p, where)
  }

  fill(p: number): void {
    ;(this.target as Date).setTime(p)
  }

  applyChange(p: number): void {
    this.fill(p)
  }

  clear(): void {}
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

const TYPED_MUTATORS = new Set(['set', 'fill', 'copyWithin', 'reverse', 'sort'])
const TYPED_METHODS = new Map<string | symbol, unknown>()
{
  const proto = Object.getPrototypeOf(Int8Array.prototype) as Record<string | symbol, unknown>
  for (const key of [...Object.getOwnPropertyNames(proto), Symbol.iterator] as (string | symbol)[]) {
    const d = Object.getOwnPropertyDescriptor(proto, key)
    if (!d || typeof d.value !== 'function' || key === 'constructor') continue
    const fn = d.value as (...a: unknown[]) => unknown
    TYPED_METHODS.set(
      key,
      typeof key === 'string' && TYPED_MUTATORS.has(key)
        ? function (this: unknown, ...args: unknown[]) {
            const n = nodeOf<TypedNode>(this)
            n.graph.guardWrite(n, key, true)
            fn.apply(n.target, args)
            n.markRange(0, (n.target as Uint8Array).length)
            return key === 'set' ? undefined : this
          }
        : readerFor(fn),
    )
  }
}

/** Typed arrays: changes are sent as the byte range between the lowest and highest written element. */
export class TypedNode extends Node {
  lo = Infinity
  hi = -1

  get(t: Uint8Array, key: string | symbol): unknown {
    if (toIndex(key) >= 0) return t[key as unknown as number]
    return TYPED_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  override set(t: Uint8Array, key: string | symbol, value: unknown): boolean {
    this.graph.guardWrite(this, key)
    const idx = toIndex(key)
    if (idx < 0)
      throw this.graph.unsupportedKey(this, key, 'a non-index property on a typed array', 'Typed arrays replicate their elements only.')
    if (idx >= t.length) return true
    ;(t as unknown as Record<number, unknown>)[idx] = value
    this.markRange(idx, idx + 1)
    return true
  }

  markRange(from: number, to: number): void {
    if (this.id < 0) return
    if (from < this.lo) this.lo = from
    if (to > this.hi) this.hi = to
    this.touch()
  }

  private get bpe(): number {
    return (this.target as Uint8Array).BYTES_PER_ELEMENT
  }

  encodeFull(): Uint8Array {
    return bytesOf(this.target as Uint8Array)
  }

  encodeChange(): unknown[] | undefined {
    if (this.hi < 0) return undefined
    const b = this.bpe
    return [this.lo * b, bytesOf(this.target as Uint8Array).subarray(this.lo * b, this.hi * b)]
  }

  clearChanges(): void {
    this.lo = Infinity
    this.hi = -1
  }

  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (!(p instanceof Uint8Array)) fail(where(), 'a typed-array payload is a byte string')
    if (p.length !== (this.target as Uint8Array).byteLength) fail(where(), `expected ${(this.target as Uint8Array).byteLength} bytes, got ${p.length}`)
  }

  checkChange(p: unknown, where: Where): void {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'number' || !(p[1] instanceof Uint8Array))
      fail(where(), 'a typed-array change is [byteOffset, bytes]')
    const [off, bytes] = p as [number, Uint8Array]
    if (!Number.isInteger(off) || off < 0 || off + bytes.length > (this.target as Uint8Array).byteLength)
      throw new ProtocolError('OVERSIZED', where(), 'byte range outside the typed array')
  }

  fill(p: Uint8Array): void {
    bytesOf(this.target as Uint8Array).set(p)
  }

  applyChange(p: [number, Uint8Array]): void {
    bytesOf(this.target as Uint8Array).set(p[1], p[0])
  }

  clear(): void {}
}

const BUFFER_METHODS = new Map<string | symbol, unknown>(
  ['slice'].map((k) => [k, readerFor((ArrayBuffer.prototype as unknown as Record<string, (...a: unknown[]) => unknown>)[k] as (...a: unknown[]) => unknown)]),
)

/**
 * ArrayBuffers replicate their content when attached. Writes through other
 * views are invisible to a proxy, so they are not tracked: keep bytes you
 * change in a typed array.
 */
export class BufferNode extends Node {
  get(t: ArrayBuffer, key: string | symbol): unknown {
    return BUFFER_METHODS.get(key) ?? Reflect.get(t, key, t)
  }

  encodeFull(): Uint8Array {
    return bytesOf(this.target as ArrayBuffer)
  }

  encodeChange(): undefined {
    return undefined
  }

  clearChanges(): void {}
  children(): void {}

  checkFull(p: unknown, where: Where): void {
    if (!(p instanceof Uint8Array)) fail(where(), 'an ArrayBuffer payload is a byte string')
    if (p.length !== (this.target as ArrayBuffer).byteLength) fail(where(), 'ArrayBuffer size mismatch')
  }

  checkChange(p: unknown, where: Where): void {
    this.checkFull(p, where)
  }

  fill(p: Uint8Array): void {
    new Uint8Array(this.target as ArrayBuffer).set(p)
  }

  applyChange(p: Uint8Array): void {
    this.fill(p)
  }

  clear(): void {}
}

