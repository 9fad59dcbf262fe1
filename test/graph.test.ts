import { describe, expect, it } from 'vitest'
import { NotActiveError, type ClassList } from 'understudy-ha'
import { expectIsomorphic } from './support/isomorphic.js'
import { Point } from './support/ops.js'
import { startPair } from './support/pair.js'

/** Runs `mutate` on the active's root in one batch, commits, and checks the standby converged. */
async function converges<T extends object>(initial: T, mutate: (root: T) => void, classes: ClassList = { Point }): Promise<T> {
  const c = await startPair({}, { classes })
  try {
    const root = c.active.register('r', initial)
    const mirror = c.standby.register('r', {} as T)
    await c.active.commit()
    mutate(root)
    await c.active.commit()
    expectIsomorphic(root, mirror)
    expect(c.errors).toEqual([])
    return mirror
  } finally {
    await c.close()
  }
}

describe('invariant 1 — convergence: arrays', () => {
  it('shrinking then growing an array in one batch leaves holes, not stale elements', async () => {
    await converges({ a: ['a', 'b', 'c', 'd', 'e'] }, (r) => {
      r.a.length = 1
      r.a[4] = 'z'
    })
  })

  it('pop then push, and length growth, in one batch', async () => {
    await converges({ a: [1, 2, 3] }, (r) => {
      r.a.pop()
      r.a.pop()
      r.a.push(9)
      r.a.length = 6
    })
  })

  it('splice inserts, removes and replaces references (arrays of pointers)', async () => {
    const shared = { s: 1 }
    await converges({ a: [shared, { t: 2 }, shared, 3] as unknown[] }, (r) => {
      r.a.splice(1, 1, r.a[0], r.a[0], { u: 3 })
      r.a.unshift(r.a[3])
      r.a.shift()
      r.a.splice(-1)
      r.a[1] = r
    })
  })

  it('index writes before and after a splice in one batch keep their order', async () => {
    await converges({ a: [0, 1, 2, 3, 4, 5] as unknown[] }, (r) => {
      r.a[5] = 50
      r.a[0] = 'first'
      r.a.splice(2, 0, 'x', 'y')
      r.a[3] = 'after'
      r.a.length = 5
      r.a.push('tail')
    })
  })

  it('sort, reverse, fill, copyWithin and delete (holes)', async () => {
    await converges({ a: [5, 3, 9, 1, { o: 1 }, 7] as unknown[] }, (r) => {
      r.a.sort((x, y) => (typeof x === 'number' && typeof y === 'number' ? x - y : 0))
      r.a.reverse()
      r.a.fill(0, 4)
      r.a.copyWithin(0, 3)
      delete r.a[1]
    })
  })
})

describe('reading array elements', () => {
  it('an element read after it moved, was replaced, or the array was reordered is the proxy of what is there now, on both sides', async () => {
    const c = await startPair()
    try {
      const make = (n: number) => ({ n })
      const root = c.active.register('r', { list: [make(0), make(1), make(2), make(3)] })
      const mirror = c.standby.register('r', { list: [] as { n: number }[] })
      await c.active.commit()
      const ns = (l: { n: number }[]) => Array.from({ length: l.length }, (_, i) => l[i]?.n)
      for (const l of [root.list, mirror.list]) expect(ns(l)).toEqual([0, 1, 2, 3]) // every index read once
      const first = root.list[0]
      expect(root.list[0]).toBe(first) // the same proxy each read
      root.list.splice(0, 1) // shifts every element
      root.list.reverse()
      root.list[1] = make(9)
      root.list.push(first as { n: number })
      await c.active.commit()
      for (const l of [root.list, mirror.list]) {
        expect(ns(l)).toEqual([3, 9, 1, 0])
        expect(l[3]).toBe(l[3])
      }
      expect(root.list[3]).toBe(first)
      root.list[3]!.n = 10 // writes through the re-read proxy are tracked
      await c.active.commit()
      expect(mirror.list[3]!.n).toBe(10)
      expect(c.errors).toEqual([])
    } finally {
      await c.close()
    }
  })
})

describe('invariant 1 — convergence: collections, dates, typed arrays, classes', () => {
  it('Map: delete then re-add moves the key to the end on both sides', async () => {
    const mirror = await converges({ m: new Map<string, number>([['a', 1], ['b', 2], ['c', 3]]) }, (r) => {
      r.m.delete('a')
      r.m.set('a', 10)
      r.m.set('d', 4)
    })
    expect([...mirror.m.keys()]).toEqual(['b', 'c', 'a', 'd'])
  })

  it('Map with object keys and Set with object members keep identity', async () => {
    const k = { key: true }
    await converges({ m: new Map<unknown, unknown>([[k, 'v']]), s: new Set<unknown>([k]), k }, (r) => {
      r.m.set(r.k, r.s)
      r.s.add(r.m)
      r.s.delete(r.k)
      r.s.add(r.k)
    })
  })

  it('Map and Set clear followed by adds', async () => {
    await converges({ m: new Map([[1, 1]]), s: new Set([1, 2]) }, (r) => {
      r.m.clear()
      r.m.set(2, 2)
      r.s.clear()
      r.s.add(3)
    })
  })

  it('Date setters and typed-array writes replicate; typed arrays send only the written range', async () => {
    await converges({ d: new Date(0), f: new Float64Array(8), u: new Uint8Array(4), big: new BigInt64Array(2) }, (r) => {
      r.d.setUTCFullYear(2030)
      r.f[3] = -0
      r.f[5] = Number.NaN
      r.u.fill(7, 1, 3)
      r.big[1] = -5n
    })
  })

  it('class instances keep their prototype, and setters and methods on them are tracked', async () => {
    class Account {
      balance = 0
      #audit = 0
      get audited(): number {
        return this.#audit
      }
      set amount(v: number) {
        this.balance = v
      }
      deposit(n: number): void {
        this.balance += n
      }
    }
    const mirror = await converges(
      { acct: new Account(), p: new Point(3, 4) },
      (r) => {
        r.acct.deposit(5)
        r.acct.amount = 42
        r.p.x = 6
      },
      { Point, Account },
    )
    expect(mirror.acct).toBeInstanceOf(Account)
    expect(mirror.acct.balance).toBe(42)
    expect(mirror.p.norm()).toBe(Math.hypot(6, 4))
  })

  it('undefined vs absent, null, NaN, -0, bigint and null-prototype objects', async () => {
    const mirror = await converges({ o: {} as Record<string, unknown> }, (r) => {
      r.o.u = undefined
      r.o.n = null
      r.o.nan = Number.NaN
      r.o.nz = -0
      r.o.big = 2n ** 80n
      r.o.np = Object.assign(Object.create(null) as object, { k: 1 })
    })
    expect('u' in mirror.o).toBe(true)
    expect(Object.is(mirror.o.nz, -0)).toBe(true)
    expect(Object.getPrototypeOf(mirror.o.np)).toBe(null)
  })

  it("a JSON-parsed own '__proto__' key replicates as an own property, never as a prototype", async () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}') as object
    const mirror = await converges({ o: {} as Record<string, unknown> }, (r) => {
      r.o.data = parsed
    })
    const data = mirror.o.data as Record<string, unknown>
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype)
    expect(Object.prototype.hasOwnProperty.call(data, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

describe('standby mirror', () => {
  it('register on a standby returns the live mirror; writes throw NotActiveError naming the path', async () => {
    const c = await startPair()
    try {
      const root = c.active.register('app', { todos: [{ title: 'a' }] })
      await c.active.commit()
      const mirror = c.standby.register('app', { todos: [] as { title: string }[] })
      expect(mirror.todos[0]?.title).toBe('a')
      expect(() => {
        ;(mirror.todos[0] as { title: string }).title = 'x'
      }).toThrow(NotActiveError)
      expect(() => mirror.todos.push({ title: 'y' })).toThrow(/cannot call push\(\) on app\.todos/)
      expect(() => {
        ;(mirror.todos[0] as { title: string }).title = 'x'
      }).toThrow(/app\.todos\[0\]\.title/)
      expect(root.todos).toHaveLength(1)
    } finally {
      await c.close()
    }
  })

  it('a placeholder registered on the standby before the root arrives is filled in place (references stay valid)', async () => {
    const c = await startPair()
    try {
      const early = c.standby.register('app', { count: 0, items: [] as number[] })
      expect(early.count).toBe(0)
      const roots: string[] = []
      c.standby.on('root', (e) => roots.push(e.name))
      const root = c.active.register('app', { count: 7, items: [1, 2] })
      await c.active.commit()
      expect(early.count).toBe(7)
      expect(early.items).toEqual([1, 2])
      expect(roots).toEqual(['app'])
      root.count++
      await c.active.commit()
      expect(early.count).toBe(8)
    } finally {
      await c.close()
    }
  })

  it('objects of a class the standby registers only later get their prototype when it does', async () => {
    const c = await startPair()
    try {
      const root = c.active.register('app', { p: null as Point | null }, { classes: { Point } })
      root.p = new Point(3, 4)
      await c.active.commit()
      const early = c.standby.root('app') as { p: Point }
      expect(early.p).not.toBeInstanceOf(Point)
      const mirror = c.standby.register('app', { p: null as Point | null }, { classes: { Point } })
      expect(mirror.p).toBeInstanceOf(Point)
      expect(mirror.p?.norm()).toBe(5)
    } finally {
      await c.close()
    }
  })

  it('promotion makes the same objects writable; the old references keep working', async () => {
    const c = await startPair()
    try {
      const root = c.active.register('app', { n: 1, list: [{ v: 1 }] })
      await c.active.commit()
      const mirror = c.standby.register('app', { n: 0, list: [] as { v: number }[] })
      const item = mirror.list[0] as { v: number }
      root.n = 2
      await c.active.commit()
      await c.active.close()
      c.standby.promote()
      expect(c.standby.role).toBe('active')
      expect(c.standby.epoch).toBe(2)
      item.v = 99
      mirror.n++
      expect(mirror.list[0]?.v).toBe(99)
      expect(mirror.n).toBe(3)
    } finally {
      await c.standby.close()
    }
  })
})
