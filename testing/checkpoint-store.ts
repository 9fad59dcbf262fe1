/**
 * The contract every CheckpointStore passes, with one call per store:
 * `runCheckpointStoreContract('name', () => store)`. Each call of the factory
 * must return an empty store.
 */
import { describe, expect, it } from 'vitest'
import { ClosedError, ConfigError, seededRandom, type CheckpointStore } from '../src/index.js'
import { activeResources } from './resources.js'

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b))

/**
 * Registers (with vitest) the contract every `CheckpointStore` passes: load,
 * save, remove, prefix ranges in key order, key validation, `ClosedError`
 * after close, and no handle left open. Each call of `make` must return an
 * empty store.
 */
export function runCheckpointStoreContract(name: string, make: () => CheckpointStore | Promise<CheckpointStore>): void {
  describe(`checkpoint store contract: ${name}`, () => {
    it('a missing key loads as undefined; a saved one loads back; an overwrite replaces it', async () => {
      const s = await make()
      expect(await s.load(['nope'])).toBeUndefined()
      await s.save(['k'], bytes('one'))
      expect(text(await s.load(['k']))).toBe('one')
      await s.save(['k'], bytes('two'))
      expect(text(await s.load(['k']))).toBe('two')
      await s.close()
    })

    it('composite keys, including keys that are prefixes of other keys', async () => {
      const s = await make()
      await s.save(['g', 'snap'], bytes('snapshot'))
      await s.save(['g', 'snap', '0001'], bytes('under it'))
      await s.save(['g'], bytes('the group itself'))
      expect(text(await s.load(['g', 'snap']))).toBe('snapshot')
      expect(text(await s.load(['g', 'snap', '0001']))).toBe('under it')
      expect(text(await s.load(['g']))).toBe('the group itself')
      await s.close()
    })

    it('parts that look like paths or escapes stay keys: "", ".", "..", "../x", "a/b", "%", "x.v", unicode', async () => {
      const s = await make()
      const awkward = ['', '.', '..', '../x', 'a/b', '%', '%2E', 'x.v', 'ünï €', 'CON']
      for (const [i, p] of awkward.entries()) await s.save(['odd', p], bytes(String(i)))
      const all = await s.loadRange(['odd'])
      expect(all.map((e) => e.key)).toEqual([...awkward].sort().map((p) => ['odd', p]))
      for (const [i, p] of awkward.entries()) expect(text(await s.load(['odd', p]))).toBe(String(i))
      // As leading and middle parts too: none may escape the store or land under another key.
      for (const [i, p] of awkward.entries()) await s.save([p, p, 'leaf'], bytes(`deep ${i}`))
      const deep = (await s.loadRange([])).filter((e) => e.key.length === 3)
      expect(deep.map((e) => e.key)).toEqual([...awkward].sort().map((p) => [p, p, 'leaf']))
      for (const [i, p] of awkward.entries()) expect((await s.loadRange([p, p])).map((e) => text(e.value))).toEqual([`deep ${i}`])
      await s.close()
    })

    it('8 MB values arrive intact', async () => {
      const s = await make()
      const big = new Uint8Array(8 * 1024 * 1024 + 5)
      const rnd = seededRandom(3)
      for (let i = 0; i < big.length; i += 997) big[i] = Math.floor(rnd() * 256)
      await s.save(['big'], big)
      const back = (await s.load(['big'])) as Uint8Array
      expect(back.length).toBe(big.length)
      expect(Buffer.compare(Buffer.from(back), Buffer.from(big))).toBe(0)
      await s.close()
    })

    it('ranges: a prefix selects whole parts only, in key order; removing a range spares its neighbours', async () => {
      const s = await make()
      for (const k of [['a', 'b', '2'], ['a', 'b', '1'], ['a', 'b'], ['a', 'bc'], ['ab'], ['a', 'c', 'x']]) await s.save(k, bytes(k.join('/')))
      expect((await s.loadRange(['a', 'b'])).map((e) => e.key)).toEqual([['a', 'b'], ['a', 'b', '1'], ['a', 'b', '2']])
      expect((await s.loadRange(['a'])).map((e) => text(e.value))).toEqual(['a/b', 'a/b/1', 'a/b/2', 'a/bc', 'a/c/x'])
      await s.removeRange(['a', 'b'])
      expect((await s.loadRange([])).map((e) => e.key)).toEqual([['a', 'bc'], ['a', 'c', 'x'], ['ab']])
      await s.remove(['ab'])
      await s.remove(['ab'])
      expect(await s.load(['ab'])).toBeUndefined()
      await s.close()
    })

    it('concurrent writers are serialised: a key holds one whole value, every key is kept', async () => {
      const s = await make()
      const values = Array.from({ length: 40 }, (_, i) => bytes(String(i).repeat(5000)))
      await Promise.all(values.map((v) => s.save(['same'], v)))
      const got = text(await s.load(['same'])) as string
      expect(values.map((v) => text(v))).toContain(got)
      await Promise.all(values.map((v, i) => s.save(['many', String(i).padStart(3, '0')], v)))
      expect((await s.loadRange(['many'])).length).toBe(40)
      await s.close()
    })

    it('bad keys are a ConfigError; after close every call is a ClosedError', async () => {
      const s = await make()
      await expect(s.save([], bytes('x'))).rejects.toBeInstanceOf(ConfigError)
      await expect(s.load([1 as unknown as string])).rejects.toBeInstanceOf(ConfigError)
      await s.close()
      await expect(s.load(['k'])).rejects.toBeInstanceOf(ClosedError)
      await expect(s.save(['k'], bytes('x'))).rejects.toBeInstanceOf(ClosedError)
    })

    it('teardown leaves no file handle or request open', async () => {
      const before = activeResources().filter((r) => /File|FSReq/.test(r)).length
      const s = await make()
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.save(['t', String(i)], bytes('x'))))
      void s.loadRange(['t'])
      await s.close()
      for (let turn = 0; turn < 1000 && activeResources().filter((r) => /File|FSReq/.test(r)).length > before; turn++)
        await new Promise((r) => setImmediate(r))
      expect(activeResources().filter((r) => /File|FSReq/.test(r)).length).toBeLessThanOrEqual(before)
    })
  })
}
