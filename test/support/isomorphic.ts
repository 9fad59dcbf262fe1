/**
 * Structural equality with identity: two graphs are isomorphic when a
 * one-to-one mapping between their objects makes every property, element,
 * entry, member, prototype and byte agree. Shared references and cycles must
 * correspond exactly (two paths to one object on one side ⇔ on the other).
 * Map and Set order counts; plain-object key order does not.
 */
const TypedArray = Object.getPrototypeOf(Int8Array) as new () => ArrayBufferView

export function isomorphismDiff(a: unknown, b: unknown): string | undefined {
  const ab = new Map<object, object>()
  const ba = new Map<object, object>()
  const stack: [unknown, unknown, string][] = [[a, b, '$']]
  while (stack.length) {
    const [x, y, path] = stack.pop() as [unknown, unknown, string]
    const tx = typeof x
    if (tx !== typeof y) return `${path}: ${tx} vs ${typeof y}`
    if (x === null || y === null || tx !== 'object') {
      if (!Object.is(x, y)) return `${path}: ${show(x)} vs ${show(y)}`
      continue
    }
    const ox = x as object
    const oy = y as object
    const mx = ab.get(ox)
    const my = ba.get(oy)
    if (mx || my) {
      if (mx !== oy || my !== ox) return `${path}: identity differs (shared reference or cycle not preserved)`
      continue
    }
    ab.set(ox, oy)
    ba.set(oy, ox)
    const px = Object.getPrototypeOf(ox) as object | null
    const py = Object.getPrototypeOf(oy) as object | null
    if (px !== py && (px?.constructor?.name ?? null) !== (py?.constructor?.name ?? null))
      return `${path}: prototype ${px?.constructor?.name ?? 'null'} vs ${py?.constructor?.name ?? 'null'}`
    if (ox instanceof Date) {
      if (!Object.is(ox.getTime(), (oy as Date).getTime())) return `${path}: date ${ox.getTime()} vs ${(oy as Date).getTime()}`
      continue
    }
    if (ox instanceof TypedArray || ox instanceof ArrayBuffer) {
      const bx = bytes(ox)
      const by = bytes(oy as ArrayBufferView)
      if (bx.length !== by.length || bx.some((v, i) => v !== by[i])) return `${path}: bytes differ`
      continue
    }
    if (ox instanceof Map) {
      const ex = [...ox]
      const ey = [...(oy as Map<unknown, unknown>)]
      if (ex.length !== ey.length) return `${path}: Map size ${ex.length} vs ${ey.length}`
      ex.forEach(([k, v], i) => {
        const [k2, v2] = ey[i] as [unknown, unknown]
        stack.push([k, k2, `${path}.key#${i}`], [v, v2, `${path}.get(#${i})`])
      })
      continue
    }
    if (ox instanceof Set) {
      const ex = [...ox]
      const ey = [...(oy as Set<unknown>)]
      if (ex.length !== ey.length) return `${path}: Set size ${ex.length} vs ${ey.length}`
      ex.forEach((v, i) => stack.push([v, ey[i], `${path}{#${i}}`]))
      continue
    }
    if (Array.isArray(ox)) {
      const ay = oy as unknown[]
      if (!Array.isArray(ay)) return `${path}: array vs non-array`
      if (ox.length !== ay.length) return `${path}: length ${ox.length} vs ${ay.length}`
      for (let i = 0; i < ox.length; i++) {
        if (i in ox !== i in ay) return `${path}[${i}]: hole vs value`
        stack.push([ox[i], ay[i], `${path}[${i}]`])
      }
      continue
    }
    const kx = Object.keys(ox).sort()
    const ky = Object.keys(oy).sort()
    if (kx.join('\u0000') !== ky.join('\u0000')) return `${path}: keys [${kx}] vs [${ky}]`
    for (const k of kx) stack.push([(ox as Record<string, unknown>)[k], (oy as Record<string, unknown>)[k], `${path}.${k}`])
  }
  return undefined
}

function bytes(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`
  if (Object.is(v, -0)) return '-0'
  return typeof v === 'string' ? JSON.stringify(v) : String(v)
}

/** Throws with the first difference when `a` and `b` are not isomorphic. */
export function expectIsomorphic(a: unknown, b: unknown): void {
  const d = isomorphismDiff(a, b)
  if (d) throw new Error(`graphs differ: ${d}`)
}
