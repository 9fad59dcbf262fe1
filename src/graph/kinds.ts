import { ConfigError } from '../errors.js'
import { Kind } from './wire.js'

/** A class whose instances may live in a replicated graph. */
export type ClassLike = abstract new (...args: never[]) => object

/** A class that carries its replication name itself, in a static `typeName` string (minifiers keep strings). */
export type NamedClass = ClassLike & { readonly typeName: string }

/**
 * Classes to rebuild on the standby, each under a name that is the same on
 * every node and in every build: a name → class map (`{ Todo }`, or
 * `{ 'app.Todo': Todo }`), or an array of classes that each declare
 * `static readonly typeName = 'Todo'`.
 *
 * A class's own `name` is never used: minifiers rename classes, differently in
 * each bundle and each build, so a page and its worker (or yesterday's
 * checkpoint and today's build) would disagree.
 */
export type ClassList = readonly NamedClass[] | Readonly<Record<string, ClassLike>>

/** Typed-array constructors replicated by name. */
export const TYPED_ARRAYS: ReadonlyMap<string, new (buffer: ArrayBuffer) => ArrayBufferView> = /* @__PURE__ */ new Map(
  (
    [
      Int8Array,
      Uint8Array,
      Uint8ClampedArray,
      Int16Array,
      Uint16Array,
      Int32Array,
      Uint32Array,
      Float32Array,
      Float64Array,
      BigInt64Array,
      BigUint64Array,
    ] as const
  ).map((c) => [c.name, c as unknown as new (buffer: ArrayBuffer) => ArrayBufferView]),
)
const TYPED_PROTOS = /* @__PURE__ */ new Map([...TYPED_ARRAYS].map(([name, c]) => [c.prototype as object, name]))

/**
 * Names ↔ classes for instances that replicate with their prototype. Names
 * must be the same on every node; a name bound to two different classes is a
 * {@link ConfigError}.
 */
export class ClassRegistry {
  private byName = new Map<string, ClassLike>()
  private byProto = new Map<object, string>()

  /** The classes known, by name (to seed another registry). */
  list(): Record<string, ClassLike> {
    return Object.fromEntries(this.byName)
  }

  add(classes: ClassList | undefined): string[] {
    if (!classes) return []
    const entries: [string, ClassLike][] = Array.isArray(classes)
      ? (classes as readonly ClassLike[]).map((c, i) => [explicitName(c, i), c])
      : Object.entries(classes as Record<string, ClassLike>)
    const added: string[] = []
    for (const [name, ctor] of entries) {
      if (typeof ctor !== 'function' || !ctor.prototype) throw new ConfigError(`classes: "${name}" is not a class`)
      if (!name) throw new ConfigError('classes: a class needs a non-empty name; pass { Name: Class }')
      const known = this.byName.get(name)
      if (known === ctor) continue
      if (known) throw new ConfigError(`classes: the name "${name}" is already bound to another class`)
      this.byName.set(name, ctor)
      this.byProto.set(ctor.prototype as object, name)
      added.push(name)
    }
    return added
  }

  nameOf(proto: object): string | undefined {
    return this.byProto.get(proto)
  }

  prototypeOf(name: string): object | undefined {
    return this.byName.get(name)?.prototype as object | undefined
  }
}

/** An array entry's name: its own static `typeName` string, never its (minifiable) `name`. */
function explicitName(c: ClassLike, i: number): string {
  if (typeof c !== 'function') throw new ConfigError(`classes[${i}] is not a class`)
  const own = Object.getOwnPropertyDescriptor(c, 'typeName')
  if (own && typeof own.value === 'string') return own.value
  const shown = c.name ? `${c.name}` : 'Name'
  throw new ConfigError(
    `classes[${i}] (${c.name || 'an anonymous class'}) has no explicit name. A class's own name is not stable: ` +
      'minifiers rename classes, differently in each bundle and build, so nodes would not recognise each other\'s objects. ' +
      `Pass { ${shown} } (the key is the name), or give the class \`static readonly typeName = '${shown}'\`.`,
  )
}

/** The kind of a supported object, plus its tag (class or typed-array name); undefined when unsupported. */
export function classify(v: object, classes: ClassRegistry): { kind: Kind; tag?: string } | undefined {
  const proto: unknown = Object.getPrototypeOf(v)
  switch (proto) {
    case Object.prototype:
      return { kind: Kind.Object }
    case Array.prototype:
      return { kind: Kind.Array }
    case null:
      return { kind: Kind.NullProto }
    case Map.prototype:
      return { kind: Kind.Map }
    case Set.prototype:
      return { kind: Kind.Set }
    case Date.prototype:
      return { kind: Kind.Date }
    case ArrayBuffer.prototype:
      return { kind: Kind.Buffer }
  }
  const typed = TYPED_PROTOS.get(proto as object)
  if (typed) return { kind: Kind.Typed, tag: typed }
  const cls = classes.nameOf(proto as object)
  if (cls !== undefined) return { kind: Kind.Class, tag: cls }
  return undefined
}

/** What an unsupported value is, and what to do instead, for {@link UnsupportedValueError}. */
export function describeUnsupported(v: unknown): { what: string; hint: string } {
  if (typeof v === 'function') return { what: 'a function', hint: 'Keep behaviour out of replicated state: store data only.' }
  if (typeof v === 'symbol') return { what: 'a symbol', hint: 'Use a string instead.' }
  const o = v as object
  const tag = Object.prototype.toString.call(o).slice(8, -1)
  if (tag === 'WeakMap' || tag === 'WeakSet' || tag === 'WeakRef')
    return { what: `a ${tag}`, hint: 'Weak collections cannot be replicated: use a Map or Set.' }
  if (tag === 'Promise') return { what: 'a Promise', hint: 'Store the resolved value instead.' }
  if (typeof (o as { nodeType?: unknown }).nodeType === 'number' && typeof (o as { nodeName?: unknown }).nodeName === 'string')
    return { what: `a DOM node (${(o as { nodeName: string }).nodeName})`, hint: 'Keep DOM nodes out of replicated state: store an id or the data it shows.' }
  if (o instanceof DataView) return { what: 'a DataView', hint: 'Use a typed array (e.g. Uint8Array) instead.' }
  const ctor = (Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null)?.constructor
  const name = typeof ctor?.name === 'string' && ctor.name ? ctor.name : tag
  return {
    what: `an instance of unregistered class ${name}`,
    hint: `Register it on every node: register(name, initial, { classes: { ${name} } }), or store plain data.`,
  }
}
