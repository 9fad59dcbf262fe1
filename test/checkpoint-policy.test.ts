/**
 * Checkpoint policy (when batches reach the store), save() and load() on
 * demand, and multi-batch log records.
 */
import { describe, expect, it } from 'vitest'
import { Checkpointer, CheckpointCorruptError, ConfigError, MemoryCheckpointStore, NotActiveError, NotExistError, Understudy, VirtualClock, crc32, type StoreKey } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { canonicalDump } from './support/dump.js'

/** A memory store that counts its saves by key kind ('snapshot', 'log', 'saved'). */
class CountingStore extends MemoryCheckpointStore {
  saves: string[] = []
  override async save(key: StoreKey, value: Uint8Array): Promise<void> {
    this.saves.push(key[1] as string)
    return super.save(key, value)
  }
  logSaves(): number {
    return this.saves.filter((k) => k === 'log').length
  }
}

const settle = async () => {
  for (let i = 0; i < 50; i++) await Promise.resolve()
}

/** What a fresh node restores from `store`: the `app` root's dump and the position. */
async function restoredFrom(store: MemoryCheckpointStore): Promise<{ dump: string; seq: number | undefined }> {
  const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('r'), role: 'active', checkpoints: store })
  const dump = canonicalDump(ha.register('app', { n: -1 }))
  const seq = ha.restored?.seq
  await ha.abort()
  return { dump, seq }
}

describe('checkpoint policy', () => {
  it('commits: N — batches are written N at a time, as one record; a crash of every node loses at most N−1, and restores a consistent earlier state', async () => {
    const store = new CountingStore()
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', checkpoints: store, checkpointPolicy: { commits: 5 } })
    const root = ha.register('app', { n: 0 })
    await ha.commit({ mode: 'async' }) // seq 1 is the registration
    await settle()
    const dumps = new Map<number, string>()
    for (let i = 1; i <= 13; i++) {
      root.n = i
      const { seq } = await ha.commit({ mode: 'async' })
      dumps.set(seq, canonicalDump(root))
      await settle()
    }
    // 14 batches (seq 1..14) after the start snapshot: records at 5, 10 — 4 wait.
    expect(store.logSaves()).toBe(2)
    await ha.abort() // a crash: the waiting batches are lost
    const r = await restoredFrom(store)
    expect(r.seq).toBe(10)
    expect(r.dump).toBe(dumps.get(10))
  })

  it('ms: T — waiting batches are written T ms after the first of them (virtual clock), not before', async () => {
    const clock = new VirtualClock()
    const store = new CountingStore()
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', clock, checkpoints: store, checkpointPolicy: { commits: 1000, ms: 200 } })
    const root = ha.register('app', { n: 0 })
    await settle()
    for (let i = 1; i <= 3; i++) {
      root.n = i
      await ha.commit({ mode: 'async' })
      clock.advance(50)
      await settle()
    }
    expect(store.logSaves()).toBe(0)
    clock.advance(49) // 199 ms after the first batch
    await settle()
    expect(store.logSaves()).toBe(0)
    clock.advance(1)
    await settle()
    expect(store.logSaves()).toBe(1)
    expect((await restoredFrom(store)).dump).toBe(canonicalDump(root))
    await ha.close()
    expect(clock.pending).toBe(0)
  })

  it("close(), checkpointed() and a 'persisted' commit write what waits; abort() does not", async () => {
    const store = new CountingStore()
    const net = new MemoryNetwork()
    const ha = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: store, checkpointPolicy: { commits: 1000 } })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = ha.register('app', { n: 0 })
    root.n = 1
    await ha.commit({ mode: 'async' })
    await settle()
    expect(store.logSaves()).toBe(0)
    await ha.checkpointed()
    expect(store.logSaves()).toBe(1)
    root.n = 2
    await ha.commit({ mode: 'persisted' })
    expect(store.logSaves()).toBe(2)
    root.n = 3
    await ha.commit({ mode: 'async' })
    await ha.close()
    expect(store.logSaves()).toBe(3)
    expect((await restoredFrom(store)).dump).toBe(canonicalDump({ n: 3 }))
    await standby.close()
  })

  it("a 'persisted' commit makes a standby write what waits under its own policy, and resolves once it has", async () => {
    const net = new MemoryNetwork()
    const standbyStore = new CountingStore()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), checkpoints: standbyStore, checkpointPolicy: { commits: 1000 } })
    const root = active.register('app', { n: 0 })
    await active.commit()
    for (let i = 1; i <= 5; i++) {
      root.n = i
      await active.commit()
    }
    expect(standbyStore.logSaves()).toBe(0) // applied, waiting under the policy
    root.n = 6
    const { seq } = await active.commit({ mode: 'persisted' })
    expect(standbyStore.logSaves()).toBe(1)
    const r = await new Checkpointer(standbyStore, 'g').restore()
    expect(r.deltas.at(-1)?.seq ?? r.snapshot?.seq).toBe(seq)
    await Promise.all([active.close(), standby.close()])
  })

  it('a planned handover writes the old active’s waiting batches before it resolves', async () => {
    const net = new MemoryNetwork()
    const store = new CountingStore()
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: store, checkpointPolicy: { commits: 1000 } })
    const b = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = a.register('app', { n: 0 })
    root.n = 7
    await a.commit()
    expect(store.logSaves()).toBe(0)
    await a.handover()
    expect(store.logSaves()).toBe(1)
    expect((await restoredFrom(store)).dump).toBe(canonicalDump({ n: 7 }))
    await Promise.all([a.close(), b.close()])
  })

  it('onHandover: false leaves them waiting', async () => {
    const net = new MemoryNetwork()
    const store = new CountingStore()
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: store, checkpointPolicy: { commits: 1000, onHandover: false } })
    const b = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = a.register('app', { n: 0 })
    root.n = 7
    await a.commit()
    await a.handover()
    await settle()
    expect(store.logSaves()).toBe(0)
    await Promise.all([a.abort(), b.close()])
  })

  it('bad policies are refused with ConfigError naming the field', async () => {
    const transport = new MemoryNetwork().join('a')
    const checkpoints = new MemoryCheckpointStore()
    await expect(Understudy.start({ group: 'g', transport, checkpoints, checkpointPolicy: { commits: 0 } })).rejects.toThrow(/checkpointPolicy\.commits/)
    await expect(Understudy.start({ group: 'g', transport, checkpoints, checkpointPolicy: { ms: -5 } })).rejects.toThrow(/checkpointPolicy\.ms/)
    await expect(Understudy.start({ group: 'g', transport, checkpointPolicy: { commits: 5 } })).rejects.toThrow(ConfigError)
  })
})

describe('multi-batch log records', () => {
  it('restore replays every batch of a record; a damaged record is skipped whole and the state before it kept', async () => {
    const store = new MemoryCheckpointStore()
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', checkpoints: store, checkpointPolicy: { commits: 3 } })
    const root = ha.register('app', { n: 0 })
    await ha.commit({ mode: 'async' })
    const dumps = new Map<number, string>()
    for (let i = 1; i <= 8; i++) {
      root.n = i
      const { seq } = await ha.commit({ mode: 'async' })
      dumps.set(seq, canonicalDump(root))
    }
    await ha.close() // records: [1..3], [4..6], [7..9]
    const log = await store.loadRange(['g', 'log'])
    expect(log.map((e) => e.key[2])).toEqual(['000000000001', '000000000004', '000000000007'])
    expect((await new Checkpointer(store, 'g').restore()).deltas.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    const second = log[1] as { key: string[]; value: Uint8Array }
    second.value[second.value.length - 2] = (second.value[second.value.length - 2] as number) ^ 0x55
    await store.save(second.key, second.value)
    const r = await new Checkpointer(store, 'g').restore()
    expect(r.corrupt).toHaveLength(1)
    expect(r.corrupt[0]).toBeInstanceOf(CheckpointCorruptError)
    expect(r.corrupt[0]?.key).toEqual(second.key)
    expect(r.deltas.map((d) => d.seq)).toEqual([1, 2, 3])
    expect((await restoredFrom(store)).dump).toBe(dumps.get(3))
  })

  it('the CRC continues across frames exactly as zlib’s does, and the fs store offers zlib’s', async () => {
    const { crc32: z } = await import('node:zlib')
    const a = Uint8Array.from({ length: 37 }, (_, i) => i * 7)
    const b = Uint8Array.from({ length: 91 }, (_, i) => i * 13)
    expect(crc32(b, crc32(a))).toBe(z(b, z(a)))
    const fs = fsCheckpoints(await mkdtemp(join(tmpdir(), 'understudy-crc-')))
    expect(fs.checksum?.(b, 12345)).toBe(crc32(b, 12345))
  })
})

describe('save() and load() on demand', () => {
  it('save() writes the whole state as one snapshot the log starts from', async () => {
    const store = new CountingStore()
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', checkpoints: store })
    const root = ha.register('app', { n: 0, items: [] as number[] })
    for (let i = 0; i < 10; i++) {
      root.items.push(i)
      await ha.commit({ mode: 'async' })
    }
    expect((await store.loadRange(['g', 'log'])).length).toBeGreaterThan(0)
    const at = await ha.save()
    expect(at.seq).toBe(ha.stats().seq)
    expect(await store.loadRange(['g', 'log'])).toEqual([])
    expect((await restoredFrom(store)).dump).toBe(canonicalDump(root))
    await ha.close()
  })

  it('load({ name }) returns to a named save: roots keep their identity, the change replicates, later checkpoints hold it', async () => {
    const net = new MemoryNetwork()
    const store = new MemoryCheckpointStore()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: store })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = active.register('app', { n: 1, items: [{ k: 'a' }] as { k: string }[], tags: new Set(['x']), by: new Map([['a', 1]]) })
    const other = active.register('other', { untouched: 1 })
    await active.commit()
    const saved = canonicalDump(root)
    await active.save({ name: 'before-migration' })
    root.n = 2
    root.items.push({ k: 'b' })
    root.items[0]!.k = 'changed'
    root.tags.add('y')
    root.by.set('b', 2)
    ;(root as { extra?: number }).extra = 5
    other.untouched = 2
    const later = active.register('later', { v: 1 })
    await active.commit()
    expect(canonicalDump(root)).not.toBe(saved)
    await active.load({ name: 'before-migration' })
    expect(active.root('app')).toBe(root)
    expect(canonicalDump(root)).toBe(saved)
    expect(other.untouched).toBe(1) // every root the save holds goes back
    expect(later.v).toBe(1) // a root it does not hold is left alone
    expect(active.root('later')).toBe(later)
    expect(canonicalDump(standby.root('app') as object)).toBe(saved)
    await active.checkpointed()
    expect((await restoredFrom(store)).dump).toBe(saved)
    await Promise.all([active.close(), standby.close()])
  })

  it('load() with a policy drops the changes made since the last checkpoint', async () => {
    const store = new MemoryCheckpointStore()
    const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a'), role: 'active', commitMode: 'async', checkpoints: store, checkpointPolicy: { commits: 1000 } })
    const root = ha.register('app', { n: 0 })
    root.n = 1
    await ha.save()
    root.n = 2
    await ha.commit({ mode: 'async' })
    root.n = 3
    await ha.commit({ mode: 'async' })
    expect((await ha.load()).seq).toBe(4)
    expect(root.n).toBe(1)
    await ha.checkpointed()
    expect((await restoredFrom(store)).dump).toBe(canonicalDump({ n: 1 }))
    await ha.close()
  })

  it('errors: load on a standby, an unknown name, no store, a bad name', async () => {
    const net = new MemoryNetwork()
    const store = new MemoryCheckpointStore()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: store })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), checkpoints: new MemoryCheckpointStore() })
    active.register('app', { n: 0 })
    await active.commit()
    await expect(standby.load()).rejects.toThrow(NotActiveError)
    await expect(active.load({ name: 'nope' })).rejects.toThrow(NotExistError)
    await expect(active.load({ name: 'nope' })).rejects.toThrow(/"nope"/)
    await expect(active.save({ name: '' })).rejects.toThrow(ConfigError)
    const bare = await Understudy.start({ group: 'h', transport: net.join('c'), role: 'active' })
    await expect(bare.save()).rejects.toThrow(/no "checkpoints" store/)
    // A synced standby saves what it holds.
    const at = await standby.save({ name: 'standby-copy' })
    expect(at.seq).toBe(active.stats().seq)
    await Promise.all([active.close(), standby.close(), bare.close()])
  })
})

describe('record layout', () => {
  it('a record is exactly the CBOR of [epoch, seq, crc, ...frames], as cbor-x encodes it', async () => {
    const { encode } = await import('cbor-x')
    const saved: Uint8Array[] = []
    const store = new (class extends MemoryCheckpointStore {
      override async save(key: StoreKey, value: Uint8Array): Promise<void> {
        saved.push(new Uint8Array(value))
        return super.save(key, value)
      }
    })()
    const sizes = [0, 1, 23, 24, 255, 256, 65535, 65536, 70000]
    const frames = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255))
    for (const [i, epoch, seq] of [[0, 1, 1], [1, 2 ** 31, 2 ** 40], [2, 7, 123456]] as const) {
      const c = new Checkpointer(store, 'g', { policy: { commits: frames.length - i } })
      for (const f of frames.slice(i)) void c.appendDelta(epoch, seq, f)
      await c.flushed()
      let crc = 0
      for (const f of frames.slice(i)) crc = crc32(f, crc)
      expect(saved.at(-1)).toEqual(new Uint8Array(encode([epoch, seq, crc, ...frames.slice(i).map((f) => Buffer.from(f))])))
    }
    const many = Array.from({ length: 300 }, (_, i) => Uint8Array.of(i & 255, 1, 2))
    const c = new Checkpointer(store, 'g', { policy: { commits: many.length } })
    for (const f of many) void c.appendDelta(3, 9, f)
    await c.flushed()
    let crc = 0
    for (const f of many) crc = crc32(f, crc)
    expect(saved.at(-1)).toEqual(new Uint8Array(encode([3, 9, crc, ...many.map((f) => Buffer.from(f))])))
  })
})
