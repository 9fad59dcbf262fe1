import fc from 'fast-check'

/** A registered class used by the random graphs. */
export class Point {
  constructor(
    public x = 0,
    public y = 0,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y)
  }
}

export const PRIMITIVES = [0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -7, 2 ** 53 + 2, 'str', '', 'constructor', true, false, null, undefined, 123n, -(2n ** 70n)] as const
export const KEYS = ['a', 'b', 'c', 'constructor', 'x y', '0', 'prototype'] as const

/** One random operation: numbers that the interpreter maps onto whatever the graph holds at that moment (so shrinking works). */
export interface Op {
  kind: number
  target: number
  a: number
  b: number
  prim: number
  make: number
}

export const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.nat(40),
  target: fc.nat(10_000),
  a: fc.nat(10_000),
  b: fc.nat(10_000),
  prim: fc.nat(PRIMITIVES.length - 1),
  make: fc.nat(21),
})

/** Every object reachable from `root` (through proxies, so writes are tracked), breadth first. */
export function reachable(root: object): object[] {
  const seen = new Set<object>([root])
  const out: object[] = [root]
  const visit = (v: unknown) => {
    if (typeof v === 'object' && v !== null && !seen.has(v)) {
      seen.add(v)
      out.push(v)
    }
  }
  for (let i = 0; i < out.length; i++) {
    const o = out[i] as object
    if (o instanceof Map) for (const [k, v] of o) visit(k), visit(v)
    else if (o instanceof Set) for (const v of o) visit(v)
    else if (o instanceof Date || isTyped(o) || o instanceof ArrayBuffer) continue
    else if (Array.isArray(o)) for (let j = 0; j < o.length; j++) visit(o[j])
    else for (const k of Object.keys(o)) visit((o as Record<string, unknown>)[k])
  }
  return out
}

const TypedArray = Object.getPrototypeOf(Int8Array) as new () => ArrayBufferView
/** `ArrayBuffer.isView` checks an internal slot, which a proxy lacks: use the prototype chain. */
export const isTyped = (v: unknown): v is ArrayBufferView => v instanceof TypedArray

const typeRank = (v: unknown): number => ['undefined', 'boolean', 'number', 'bigint', 'string', 'object'].indexOf(typeof v) + (v === null ? 10 : 0)

/** Builds a value: a primitive, an existing object (shared reference / cycle), or something new of every supported kind. */
function value(op: Op, objs: object[]): unknown {
  const prim = PRIMITIVES[op.prim]
  const existing = objs[op.a % objs.length]
  const other = objs[op.b % objs.length]
  switch (op.make) {
    case 8:
    case 9:
      return existing
    case 10:
      return { p: prim, q: existing }
    case 11:
      return [prim, op.a, other]
    case 12:
      return new Map<unknown, unknown>([
        [prim, op.a],
        [existing, 'v'],
      ])
    case 13:
      return new Set([prim, existing, op.b])
    case 14:
      return new Date(op.a * 1000)
    case 15:
      return Float64Array.of(op.a, op.b, -0)
    case 16:
      return new Point(op.a, op.b)
    case 17:
      return Object.assign(Object.create(null) as object, { z: prim })
    case 18:
      return new Uint8Array([op.a & 255, op.b & 255]).buffer
    case 19:
      return [existing, other, existing]
    case 20:
      return { nested: { deeper: [prim, { leaf: op.b }] } }
    case 21:
      return new Uint16Array(3).fill(op.a & 0xffff)
    default:
      return prim
  }
}

/**
 * Applies one operation to the graph under `root` and returns true when the
 * caller should commit here (so runs mix one-batch and many-batch histories).
 */
export function applyOp(root: object, op: Op): boolean {
  if (op.kind === 40) return true
  const objs = reachable(root)
  const t = objs[op.target % objs.length] as Record<string, unknown>
  const v = () => value(op, objs)
  const key = KEYS[op.a % KEYS.length] as string
  if (Array.isArray(t)) {
    const len = t.length
    switch (op.kind % 12) {
      case 0:
        t.push(v())
        break
      case 1:
        t.pop()
        break
      case 2:
        t.shift()
        break
      case 3:
        t.unshift(v(), PRIMITIVES[op.prim])
        break
      case 4:
        t.splice(op.a % (len + 1), op.b % 3, ...(op.make % 2 ? [v()] : [v(), op.b]))
        break
      case 5:
        t.sort((x, y) => typeRank(x) - typeRank(y))
        break
      case 6:
        t.reverse()
        break
      case 7:
        t[op.a % (len + 2)] = v()
        break
      case 8:
        t.length = op.a % (len + 1)
        break
      case 9:
        t.fill(PRIMITIVES[op.prim], op.a % (len + 1), op.b % (len + 1))
        break
      case 10:
        if (len) delete t[op.a % len]
        break
      default:
        t.copyWithin(op.a % (len + 1), op.b % (len + 1))
    }
  } else if (t instanceof Map) {
    const keys = [...t.keys()]
    switch (op.kind % 4) {
      case 0:
        t.set(op.make % 2 ? PRIMITIVES[op.prim] : objs[op.b % objs.length], v())
        break
      case 1:
        if (keys.length) t.delete(keys[op.a % keys.length])
        break
      case 2:
        if (keys.length) t.set(keys[op.a % keys.length], v())
        break
      default:
        if (op.b % 5 === 0) t.clear()
    }
  } else if (t instanceof Set) {
    const members = [...t]
    switch (op.kind % 3) {
      case 0:
        t.add(v())
        break
      case 1:
        if (members.length) t.delete(members[op.a % members.length])
        break
      default:
        if (op.b % 5 === 0) t.clear()
        else t.add(PRIMITIVES[op.prim])
    }
  } else if (t instanceof Date) {
    t.setTime(op.a * 7)
  } else if (isTyped(t)) {
    const ta = t as unknown as Float64Array
    if (op.kind % 2 && ta.length) ta[op.a % ta.length] = op.b
    else ta.fill(op.b % 200)
  } else if (t instanceof ArrayBuffer) {
    // ArrayBuffers are replicated when attached; in-place bytes are not tracked.
  } else {
    switch (op.kind % 4) {
      case 0:
      case 1:
        t[key] = v()
        break
      case 2:
        delete t[key]
        break
      default: {
        // Re-parent: move a value from one object to another.
        const from = objs[op.b % objs.length] as Record<string, unknown>
        if (!Array.isArray(from) && !(from instanceof Map) && !(from instanceof Set) && !isTyped(from) && !(from instanceof Date) && !(from instanceof ArrayBuffer)) {
          const k = Object.keys(from)[0]
          if (k !== undefined) {
            t[key] = from[k]
            delete from[k]
          }
        }
      }
    }
  }
  return false
}

/** The initial graph every run starts from. */
export function initialGraph(): Record<string, unknown> {
  const shared = { shared: true }
  const root: Record<string, unknown> = {
    items: [shared, { n: 1 }, shared],
    byKey: new Map<unknown, unknown>([['k', shared]]),
    members: new Set<unknown>([shared, 1]),
    when: new Date(0),
    bytes: new Float64Array([1, 2, 3]),
    point: new Point(1, 2),
  }
  root.self = root
  return root
}

/** Applies `ops` to `root`, calling `onCommit` after each that changed something. */
export async function replay(ops: Op[], onCommit: () => Promise<unknown>, root: object): Promise<void> {
  for (const op of ops) if (applyOp(root, op)) await onCommit()
}
