// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import { UnsupportedValueError } from 'understudy-ha'
import { expectIsomorphic } from './support/isomorphic.js'
import { startPair } from './support/pair.js'

class Unregistered {
  x = 1
}

const CASES: [string, () => unknown, RegExp][] = [
  ['a function', () => () => 1, /a function/],
  ['a symbol', () => Symbol('s'), /a symbol/],
  ['a WeakMap', () => new WeakMap(), /a WeakMap/],
  ['a WeakSet', () => new WeakSet(), /a WeakSet/],
  ['a WeakRef', () => new WeakRef({}), /a WeakRef/],
  ['a Promise', () => Promise.resolve(1), /a Promise/],
  ['an unregistered class instance', () => new Unregistered(), /unregistered class Unregistered.*classes: \{ Unregistered \}/],
  ['a DOM node', () => document.createElement('div'), /a DOM node \(DIV\)/],
  ['a frozen object', () => Object.freeze({ a: 1 }), /frozen/],
  ['a DataView', () => new DataView(new ArrayBuffer(4)), /DataView/],
]

describe('invariant 5 — unsupported values throw UnsupportedValueError at assignment, naming the path; the graph is unchanged', () => {
  for (const [name, make, message] of CASES) {
    it(`${name}: as a property, nested in a new object, in an array push, as a Map value and a Set member`, async () => {
      const c = await startPair()
      try {
        const root = c.active.register('app', { todos: [{ title: 'a', owner: null as unknown }], m: new Map<string, unknown>(), s: new Set<unknown>() })
        await c.active.commit()
        const before = c.active.stats()
        const attempts: [() => void, string][] = [
          [() => ((root.todos[0] as { owner: unknown }).owner = make()), 'app.todos[0].owner'],
          [() => ((root.todos[0] as { owner: unknown }).owner = { deep: [1, { bad: make() }] }), 'app.todos[0].owner.deep[1].bad'],
          [() => root.todos.push({ title: 'b', owner: null }, { title: 'c', owner: make() }), 'app.todos[2].owner'],
          [() => root.m.set('k', make()), 'app.m.get("k")'],
          [() => root.s.add(make()), 'app.s{member'],
        ]
        for (const [attempt, path] of attempts) {
          let err: unknown
          try {
            attempt()
          } catch (e) {
            err = e
          }
          expect(err).toBeInstanceOf(UnsupportedValueError)
          expect((err as UnsupportedValueError).code).toBe('UNSUPPORTED_VALUE')
          expect((err as Error).message).toMatch(message)
          expect((err as UnsupportedValueError).path.startsWith(path), String(err)).toBe(true)
        }
        // Nothing changed: no batch, the same objects, and the standby still equals the active.
        expect(root.todos).toHaveLength(1)
        expect(root.m.size + root.s.size).toBe(0)
        await c.active.commit()
        expect(c.active.stats().seq).toBe(before.seq)
        expect(c.active.stats().objects).toBe(before.objects)
        expectIsomorphic(root, c.standby.root('app'))
      } finally {
        await c.close()
      }
    })
  }

  it('symbol keys, accessor properties, named properties on arrays and prototype changes are refused too', async () => {
    const c = await startPair()
    try {
      const root = c.active.register('app', { list: [1], o: {} as Record<string | symbol, unknown> })
      expect(() => (root.o[Symbol('k')] = 1)).toThrow(/app\.o.*symbol-keyed/)
      expect(() => Object.defineProperty(root.o, 'g', { get: () => 1 })).toThrow(/accessor property/)
      expect(() => ((root.list as unknown as Record<string, unknown>).name = 'x')).toThrow(/app\.list\.name.*non-index property/)
      expect(() => (root.o.__proto__ = { evil: true })).toThrow(/prototype change/)
      expect(() => ({ [Symbol('x')]: 1 })).not.toThrow()
      expect(() => (root.o.withSymbol = { [Symbol('x')]: 1 })).toThrow(UnsupportedValueError)
      expect(Object.keys(root.o)).toEqual([])
    } finally {
      await c.close()
    }
  })

  it('registering a root with an unsupported value names the root path', async () => {
    const c = await startPair()
    try {
      expect(() => c.active.register('cfg', { handlers: { onSave: () => 1 } })).toThrow(/^cfg\.handlers\.onSave: cannot replicate a function/)
      expect(c.active.roots).toEqual([])
    } finally {
      await c.close()
    }
  })
})
