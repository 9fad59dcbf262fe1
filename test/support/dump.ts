/**
 * A canonical, JSON-portable form of an object graph: objects are numbered in
 * the order a deterministic walk meets them (object keys sorted, arrays by
 * index, Map/Set in insertion order), so two graphs are isomorphic — identity,
 * cycles, prototypes and all — exactly when their dumps are equal. Lets a test
 * compare graphs that live in different processes, workers or browser pages.
 */
const TypedArray = Object.getPrototypeOf(Int8Array) as new () => ArrayBufferView

export function canonicalDump(root: unknown): string {
  const ids = new Map<object, number>()
  const queue: object[] = []
  const enc = (v: unknown): unknown => {
    switch (typeof v) {
      case 'number':
        return Object.is(v, -0) ? ['-0'] : Number.isFinite(v) ? v : [String(v)]
      case 'bigint':
        return ['bigint', v.toString()]
      case 'undefined':
        return ['undefined']
      case 'object': {
        if (v === null) return null
        let id = ids.get(v)
        if (id === undefined) {
          id = ids.size
          ids.set(v, id)
          queue.push(v)
        }
        return ['#', id]
      }
      default:
        return v
    }
  }
  const bytes = (v: ArrayBufferView | ArrayBuffer) =>
    Array.from(v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
  enc(root)
  const out: unknown[] = []
  for (let i = 0; i < queue.length; i++) {
    const o = queue[i] as object
    const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null
    const cls = proto === null ? null : (proto.constructor?.name ?? '?')
    if (o instanceof Date) out.push(['Date', o.getTime()])
    else if (o instanceof TypedArray) out.push([cls, bytes(o)])
    else if (o instanceof ArrayBuffer) out.push(['ArrayBuffer', bytes(o)])
    else if (o instanceof Map) out.push(['Map', [...o].map(([k, v]) => [enc(k), enc(v)])])
    else if (o instanceof Set) out.push(['Set', [...o].map(enc)])
    else if (Array.isArray(o)) out.push(['Array', Array.from({ length: o.length }, (_, k) => (k in o ? enc(o[k]) : ['hole']))])
    else out.push([cls, Object.keys(o).sort().map((k) => [k, enc((o as Record<string, unknown>)[k])])])
  }
  return JSON.stringify(out)
}
