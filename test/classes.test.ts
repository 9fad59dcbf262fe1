import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as api from 'understudy-ha'
import { ConfigError, Understudy, UnderstudyError, UnknownClassError, type NamedClass } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

const ROOT = join(import.meta.dirname, '..')

/** Two classes that are "the same class" in two bundles a minifier renamed differently (`Q` here, `Ht` there). */
function minifiedTwice() {
  const Q = class {
    constructor(public title = '') {}
    shout() {
      return this.title.toUpperCase()
    }
  }
  const Ht = class {
    constructor(public title = '') {}
    shout() {
      return this.title.toUpperCase()
    }
  }
  return { Q, Ht }
}

async function pair(activeClasses: api.ClassList | undefined, standbyClasses: api.ClassList | undefined) {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', ...(activeClasses && { classes: activeClasses }) })
  const standby = await Understudy.start({ group: 'g', transport: net.join('b'), ...(standbyClasses && { classes: standbyClasses }) })
  const errors: Error[] = []
  standby.on('error', ({ error }) => errors.push(error))
  return { active, standby, errors, close: () => Promise.all([active.close(), standby.close()]) }
}

describe('class names are explicit, so they survive minification', () => {
  it('a name → class map replicates between bundles whose class names differ', async () => {
    const { Q, Ht } = minifiedTwice()
    const c = await pair({ Todo: Q }, { Todo: Ht })
    const root = c.active.register('app', { todos: [] as InstanceType<typeof Q>[] })
    const mirror = c.standby.register('app', { todos: [] as InstanceType<typeof Ht>[] })
    root.todos.push(new Q('write tests'))
    await c.active.commit()
    expect(mirror.todos[0]).toBeInstanceOf(Ht)
    expect(mirror.todos[0]?.shout()).toBe('WRITE TESTS')
    expect(c.errors).toEqual([])
    await c.close()
  })

  it('an array entry is named by its own static typeName', async () => {
    class Todo {
      static readonly typeName = 'Todo'
      constructor(public title = '') {}
    }
    const Renamed = class {
      static readonly typeName = 'Todo'
      constructor(public title = '') {}
    }
    const c = await pair([Todo], [Renamed as NamedClass])
    c.active.register('app', { t: new Todo('x') })
    const mirror = c.standby.register('app', { t: null as unknown })
    await c.active.commit()
    expect(mirror.t).toBeInstanceOf(Renamed)
    await c.close()
  })

  it('an array entry without an explicit name is a ConfigError that says why', async () => {
    class Todo {}
    const t = new MemoryNetwork().join('x')
    const start = Understudy.start({ group: 'g', transport: t, classes: [Todo] as never })
    await expect(start).rejects.toThrow(ConfigError)
    await expect(Understudy.start({ group: 'g', transport: new MemoryNetwork().join('y'), classes: [Todo] as never })).rejects.toThrow(
      /classes\[0\] \(Todo\) has no explicit name.*minifiers rename classes.*Pass \{ Todo \}.*static readonly typeName = 'Todo'/,
    )
    // An inherited typeName is not the subclass's own name.
    class Base {
      static readonly typeName = 'Base'
    }
    class Sub extends Base {}
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('z'), role: 'active' })
    expect(() => ha.register('app', {}, { classes: [Sub] })).toThrow(/classes\[0\] \(Sub\) has no explicit name/)
    await ha.close()
  })

  it('a class unknown to the standby is an error event naming it; its objects still replicate as data, and get their prototype once registered', async () => {
    const { Q, Ht } = minifiedTwice()
    const c = await pair({ Todo: Q }, undefined)
    const root = c.active.register('app', { todos: [] as InstanceType<typeof Q>[] })
    const mirror = c.standby.register('app', { todos: [] as InstanceType<typeof Ht>[] })
    root.todos.push(new Q('a'), new Q('b'))
    await c.active.commit()
    expect(c.errors).toHaveLength(1)
    const err = c.errors[0] as UnknownClassError
    expect(err).toBeInstanceOf(UnknownClassError)
    expect(err.code).toBe('UNKNOWN_CLASS')
    expect(err.className).toBe('Todo')
    expect(err.message).toMatch(/"Todo".*kept as plain objects.*classes: \{ Todo \}/)
    expect(mirror.todos.map((t) => t.title)).toEqual(['a', 'b'])
    expect(mirror.todos[0]).not.toBeInstanceOf(Ht)
    // Reported once per name, not once per frame.
    root.todos.push(new Q('c'))
    await c.active.commit()
    expect(c.errors).toHaveLength(1)
    c.standby.register('app', { todos: [] }, { classes: { Todo: Ht } })
    expect(mirror.todos[2]).toBeInstanceOf(Ht)
    expect(mirror.todos[2]?.shout()).toBe('C')
    await c.close()
  })
})

describe('errors', () => {
  const errorClasses = (Object.entries(api) as [string, unknown][]).filter(
    (e): e is [string, new (...args: unknown[]) => UnderstudyError] =>
      typeof e[1] === 'function' && (e[1] === UnderstudyError || (e[1] as { prototype: unknown }).prototype instanceof UnderstudyError),
  )

  it('every exported error class sets its name from a string literal (a minifier renames classes)', () => {
    expect(errorClasses.length).toBeGreaterThan(10)
    for (const [exported, C] of errorClasses) {
      const err = Reflect.construct(C, exported === 'CheckpointCorruptError' ? [['k'], 'y'] : ['x', 'y', 'z']) as UnderstudyError
      expect(err.name, exported).toBe(exported)
      expect(typeof err.code, exported).toBe('string')
    }
    // The same in source, for classes that are not exported from the root.
    for (const file of sources('src').concat(sources('adapters'))) {
      const text = readFileSync(join(ROOT, file), 'utf8')
      for (const m of text.matchAll(/class (\w+) extends (\w*Error)\b[^{]*\{\s*\n\s*(.*)/g)) {
        expect(m[3], `${file}: class ${m[1]}`).toBe(`override name = '${m[1]}'`)
      }
    }
  })

  it('the package throws and reports only UnderstudyError subclasses: no plain Error in src/ or adapters/', () => {
    for (const file of sources('src').concat(sources('adapters'))) {
      const text = readFileSync(join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1')
      expect(text, file).not.toMatch(/new (Type|Range)?Error\(/)
      if (file !== join('src', 'errors.ts')) expect(text, file).not.toMatch(/extends Error\b/)
    }
  })

  it('reusing a transport is a TransportError with a code', () => {
    const t = new MemoryNetwork().join('a')
    const h = { message() {}, peerUp() {}, peerDown() {}, error() {} }
    void t.open(h)
    expect(() => t.open(h)).toThrow(api.TransportError)
    try {
      void t.open(h)
    } catch (err) {
      expect((err as UnderstudyError).code).toBe('TRANSPORT')
      expect((err as Error).message).toMatch(/open\(\) was called twice/)
    }
  })
})

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f)
    return statSync(join(ROOT, p)).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}
