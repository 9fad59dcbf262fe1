/**
 * One damaged checkpoint record must never cost more than what only it holds.
 * A damaged snapshot record (a flipped bit, a truncation, trailing bytes) used
 * to make a node drop the intact log after it and start empty; elected first
 * after a full restart, it then made the intact nodes resync to nothing.
 */
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CheckpointCorruptError, Checkpointer, MemoryCheckpointStore, Understudy, seededRandom, type CheckpointStore, type StoreKey } from 'understudy-ha'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { writeDelta, writeSnapshot } from '../src/codec/frames.js'
import type { DeltaBody, SnapshotBody } from '../src/graph/wire.js'
import { canonicalDump } from './support/dump.js'

const EMPTY: SnapshotBody = [[], []]
const delta = (n: number): DeltaBody => [[], [], [1, ['n', n]], []]
const LOG = 60

/** A store as the tests see it: damage goes through `poke` (the store's own save, or the file itself). */
interface Kind {
  name: string
  /** Bits flipped per record: every one in memory, a seeded sample on disk (each restore there reads 60 files). */
  flips: number
  /** Damages tried per record and crash point in the crash test. */
  perVictim: number
  /** Whether to check that a restore leaves every record as it was (a property of the checkpointer: once is enough). */
  unchanged: boolean
  /** A store holding the fixture (built once per kind, then copied). */
  open(): Promise<{ store: () => CheckpointStore; poke(key: string[], bytes: Uint8Array): Promise<void> }>
}

let memoryFixture: MemoryCheckpointStore | undefined
let fsFixture: string | undefined

const kinds: Kind[] = [
  {
    name: 'memory',
    flips: Infinity,
    perVictim: 3,
    unchanged: true,
    async open() {
      if (!memoryFixture) await fixture((memoryFixture = new MemoryCheckpointStore()))
      const s = new MemoryCheckpointStore()
      for (const e of await memoryFixture.loadRange([])) await s.save(e.key, e.value)
      return { store: () => s, poke: (key, bytes) => s.save(key, bytes) }
    },
  },
  {
    name: 'fs',
    flips: 12,
    perVictim: 1,
    unchanged: false,
    async open() {
      if (!fsFixture) await fixture(fsCheckpoints((fsFixture = await mkdtemp(join(tmpdir(), 'understudy-damage-')))))
      const dir = await mkdtemp(join(tmpdir(), 'understudy-damage-'))
      await cp(fsFixture, dir, { recursive: true })
      // The key parts used here need no escaping: a key is the path of its file.
      return { store: () => fsCheckpoints(dir), poke: (key, bytes) => writeFile(`${join(dir, ...key)}.v`, bytes) }
    },
  },
]

/**
 * Ways one record is damaged: flipped bits (every one, or a seeded sample of
 * `flips`), each truncation, trailing bytes.
 */
function damages(bytes: Uint8Array, seed = 1, flips = Infinity): { what: string; bytes: Uint8Array }[] {
  const out: { what: string; bytes: Uint8Array }[] = []
  const bits = bytes.length * 8
  const rnd = seededRandom(seed)
  const positions = bits <= flips ? Array.from({ length: bits }, (_, i) => i) : Array.from({ length: flips }, () => Math.floor(rnd() * bits))
  for (const bit of positions) {
    const b = bytes.slice()
    b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7))
    out.push({ what: `bit ${bit} flipped`, bytes: b })
  }
  const cuts = bytes.length <= 256 ? Array.from({ length: bytes.length }, (_, i) => i) : [0, 1, 2, 5, 9, ...Array.from({ length: 60 }, () => Math.floor(rnd() * bytes.length)), bytes.length - 1]
  for (const n of cuts) out.push({ what: `truncated to ${n} bytes`, bytes: bytes.slice(0, n) })
  for (const tail of [Uint8Array.of(0), Uint8Array.of(0x80, 1, 2), bytes]) {
    const b = new Uint8Array(bytes.length + tail.length)
    b.set(bytes)
    b.set(tail, bytes.length)
    out.push({ what: `${tail.length} trailing bytes`, bytes: b })
  }
  return out
}

/** The store the failure was found with: the start snapshot (a 17-byte record), then 60 batches, each its own log record. */
async function fixture(store: CheckpointStore): Promise<void> {
  const c = new Checkpointer(store, 'g')
  await c.writeSnapshot(1, 0, writeSnapshot(1, 0, EMPTY))
  for (let seq = 1; seq <= LOG; seq++) await c.appendDelta(1, seq, writeDelta(1, seq, delta(seq)))
}

/** Where a restore of `store` ends, and what it reported. */
async function restoreFrom(store: CheckpointStore) {
  const r = await new Checkpointer(store, 'g').restore()
  const last = r.deltas.at(-1) ?? r.snapshot
  return { r, at: last ? [last.epoch, last.seq] : undefined }
}

/** The name a snapshot record at (epoch, seq) has in the store, less its copy letter. */
const position = (epoch: number, seq: number) => `${String(epoch).padStart(16, '0')}-${String(seq).padStart(16, '0')}`

const sameEntries = async (store: CheckpointStore) => (await store.loadRange(['g'])).map((e) => [e.key.join('/'), Buffer.from(e.value).toString('hex')])

describe('a damaged snapshot record', () => {
  for (const kind of kinds) {
    it(`${kind.name}: a damaged snapshot record restores the newest whole state from its other copy, never empty`, async () => {
      const { store, poke } = await kind.open()
      const snapshots = await store().loadRange(['g', 'snapshot'])
      expect(snapshots.length).toBeGreaterThan(0)
      expect(snapshots.every((e) => e.value.length === 17)).toBe(true)
      let tried = 0
      for (const victim of snapshots) {
        for (const d of damages(victim.value, 1, kind.flips)) {
          await poke(victim.key, d.bytes)
          const before = kind.unchanged ? await sameEntries(store()) : []
          const { r, at } = await restoreFrom(store())
          const where = `${victim.key.join('/')} ${d.what}`
          expect(at, where).toEqual([1, LOG])
          expect(r.deltas.map((f) => f.body), where).toEqual(Array.from({ length: LOG }, (_, i) => delta(i + 1)))
          expect(r.corrupt.length, where).toBeGreaterThan(0)
          expect(r.corrupt[0], where).toBeInstanceOf(CheckpointCorruptError)
          expect(r.corrupt[0]?.key, where).toEqual(victim.key)
          // Restoring writes nothing: the damaged record is still there, byte for byte.
          if (kind.unchanged) expect(await sameEntries(store()), where).toEqual(before)
          tried++
        }
        await poke(victim.key, victim.value)
      }
      expect(tried).toBe(snapshots.length * (Math.min(17 * 8, kind.flips) + 17 + 3))
    })
  }
})

/** A store that applies the first `limit` writes (save, remove, removeRange) and drops the rest: a crash after the `limit`-th. */
class CrashingStore implements CheckpointStore {
  writes = 0
  /** The writes applied, for a test to wait on before it looks at what landed. */
  applied: Promise<void>[] = []
  constructor(
    private readonly inner: CheckpointStore,
    private readonly limit: number,
  ) {}
  get crashed(): boolean {
    return this.writes >= this.limit
  }
  private write(fn: () => Promise<void>): Promise<void> {
    if (this.crashed) return new Promise<void>(() => undefined) // the process is gone: nothing more lands, nothing resolves
    this.writes++
    const p = fn()
    this.applied.push(p.catch(() => undefined))
    return p
  }
  load(key: StoreKey) {
    return this.inner.load(key)
  }
  loadRange(prefix: StoreKey) {
    return this.inner.loadRange(prefix)
  }
  save(key: StoreKey, value: Uint8Array) {
    return this.write(() => this.inner.save(key, value))
  }
  remove(key: StoreKey) {
    return this.write(() => this.inner.remove(key))
  }
  removeRange(prefix: StoreKey) {
    return this.write(() => this.inner.removeRange(prefix))
  }
  close() {
    return this.inner.close()
  }
}

describe('a crash while a new snapshot is written, and a damaged record', () => {
  for (const kind of kinds) {
    it(`${kind.name}: at every crash point of a snapshot write, one damaged record still restores the last durable position (the other copy, or the previous snapshot plus the log)`, async () => {
      for (let k = 0; ; k++) {
        const { store, poke } = await kind.open()
        const initial = new Set((await store().loadRange(['g', 'snapshot'])).map((e) => `${e.key.join('/')} ${Buffer.from(e.value).toString('hex')}`))
        const crashing = new CrashingStore(store(), k)
        const c = new Checkpointer(crashing, 'g')
        await c.restore()
        let durable = false
        void c.writeSnapshot(1, LOG, writeSnapshot(1, LOG, [[], [[1, 0, ['n', LOG]]]])).then(() => (durable = true))
        for (let n = -1; n !== crashing.applied.length; ) {
          n = crashing.applied.length
          await Promise.all(crashing.applied)
          await new Promise((r) => setTimeout(r, 0))
        }
        const records = await store().loadRange(['g'])
        const newSnapshot = records.some((e) => e.key[1] === 'snapshot' && !initial.has(`${e.key.join('/')} ${Buffer.from(e.value).toString('hex')}`))
        // Every snapshot record, and the first, a middle and the last log record.
        const log = records.filter((e) => e.key[1] === 'log')
        const victims = [...records.filter((e) => e.key[1] !== 'log'), ...new Set([log[0], log[log.length >> 1], log.at(-1)])].filter((e) => e !== undefined)
        for (const victim of victims) {
          const all = damages(victim.value, k, 8)
          const some = [all[k % 8], all[8 + (k % victim.value.length)], all.at(-1)]
          for (const d of (kind.perVictim < some.length ? [some[k % some.length]] : some).filter((x) => x !== undefined)) {
            await poke(victim.key, d.bytes)
            const { r, at } = await restoreFrom(store())
            const where = `crash after ${k} writes, ${victim.key.join('/')} ${d.what}`
            // A log record is the only copy of its batches: unless a new snapshot already holds them, the restore stops just before it.
            if (victim.key[1] === 'log' && !newSnapshot) expect(at, where).toEqual([1, Number(victim.key[2]) - 1])
            else expect(at, where).toEqual([1, LOG])
            // It is named, unless the restore never needed it: a snapshot record older than the one restored.
            const older = victim.key[1] === 'snapshot' && r.snapshot && victim.key[2]?.slice(0, 33) !== position(r.snapshot.epoch, r.snapshot.seq)
            if (!older) expect(r.corrupt.map((e) => e.key.join('/')), where).toContain(victim.key.join('/'))
          }
          await poke(victim.key, victim.value)
        }
        if (durable) break // the snapshot write completed: every crash point was tried
        expect(k, 'a snapshot write takes a handful of store writes').toBeLessThan(20)
      }
    })
  }
})

describe('a full restart with the damaged node first', () => {
  it('the node with a damaged snapshot restores all 60 commits and the standby that joins it keeps them', async () => {
    const dirA = await mkdtemp(join(tmpdir(), 'understudy-damage-a-'))
    const dirB = await mkdtemp(join(tmpdir(), 'understudy-damage-b-'))
    const net = new MemoryNetwork()
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: fsCheckpoints(dirA) })
    const b = await Understudy.start({ group: 'g', transport: net.join('b'), checkpoints: fsCheckpoints(dirB) })
    const root = a.register('app', { n: 0, log: [] as number[] })
    for (let i = 1; i <= LOG; i++) {
      root.n = i
      root.log.push(i)
      await a.commit()
    }
    const last = canonicalDump(root)
    await b.checkpointed()
    await a.close()
    await b.close()
    // One bit of the active's snapshot record flips on its disk.
    const victim = (await fsCheckpoints(dirA).loadRange(['g', 'snapshot']))[0] as { key: string[]; value: Uint8Array }
    const file = `${join(dirA, ...victim.key)}.v`
    const bytes = await readFile(file)
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x10
    await writeFile(file, bytes)
    // It starts first and is the active; the intact node joins it as a standby.
    const net2 = new MemoryNetwork()
    const a2 = await Understudy.start({ group: 'g', transport: net2.join('a'), role: 'active', checkpoints: fsCheckpoints(dirA) })
    expect(canonicalDump(a2.register('app', { n: -1, log: [] as number[] }))).toBe(last)
    expect(a2.restored?.corrupt.map((e) => e.key)).toEqual([victim.key])
    const b2 = await Understudy.start({ group: 'g', transport: net2.join('b'), checkpoints: fsCheckpoints(dirB) })
    await a2.commit()
    expect(canonicalDump(b2.root('app') as object)).toBe(last)
    await b2.checkpointed()
    await Promise.all([a2.close(), b2.close()])
    // Both disks still hold the 60 commits.
    for (const dir of [dirA, dirB]) {
      const again = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('x'), role: 'active', checkpoints: fsCheckpoints(dir) })
      expect(canonicalDump(again.register('app', { n: -1, log: [] as number[] }))).toBe(last)
      await again.close()
    }
  })
})

describe('a damaged log record', () => {
  it('in the middle: the restore keeps every batch before it, stops there, and names it, whatever the damage', async () => {
    const { store } = await kinds[0]!.open()
    const log = await store().loadRange(['g', 'log'])
    const victim = log[29] as { key: string[]; value: Uint8Array }
    for (const d of damages(victim.value)) {
      await store().save(victim.key, d.bytes)
      const { r, at } = await restoreFrom(store())
      expect(at, d.what).toEqual([1, 29])
      expect(r.corrupt.map((e) => e.key), d.what).toEqual([victim.key])
      expect(r.corrupt[0]?.message, d.what).toMatch(/restored the newest consistent state before it/)
    }
  })
})

describe('the layout of 0.1.0', () => {
  it('a store with one snapshot record restores, and the next snapshot replaces that record', async () => {
    const store = new MemoryCheckpointStore()
    const c = new Checkpointer(store, 'g')
    // 0.1.0 kept the snapshot under [group, 'snapshot'], in the same record format as a named save.
    await c.saveNamed('old', 1, 0, writeSnapshot(1, 0, EMPTY))
    await store.save(['g', 'snapshot'], (await store.load(['g', 'saved', 'old'])) as Uint8Array)
    await store.remove(['g', 'saved', 'old'])
    for (let seq = 1; seq <= 5; seq++) await c.appendDelta(1, seq, writeDelta(1, seq, delta(seq)))
    const again = new Checkpointer(store, 'g')
    const r = await again.restore()
    expect([r.snapshot?.seq, r.deltas.map((d) => d.seq), r.corrupt]).toEqual([0, [1, 2, 3, 4, 5], []])
    await again.writeSnapshot(2, 5, writeSnapshot(2, 5, [[], [[1, 0, ['n', 5]]]]))
    expect((await store.loadRange(['g'])).map((e) => e.key.join('/'))).toEqual(['g/snapshot/0000000000000002-0000000000000005-a', 'g/snapshot/0000000000000002-0000000000000005-b'])
    expect((await new Checkpointer(store, 'g').restore()).snapshot?.seq).toBe(5)
  })

  it('a checkpointer that never restored still finds the snapshot records already stored, and replaces them', async () => {
    const store = new MemoryCheckpointStore()
    await fixture(store)
    await new Checkpointer(store, 'g').writeSnapshot(2, LOG, writeSnapshot(2, LOG, [[], [[1, 0, ['n', LOG]]]]))
    expect((await store.loadRange(['g'])).map((e) => e.key.join('/'))).toEqual(['g/snapshot/0000000000000002-0000000000000060-a', 'g/snapshot/0000000000000002-0000000000000060-b'])
  })
})
