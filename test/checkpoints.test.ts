import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CheckpointCorruptError, Checkpointer, MemoryCheckpointStore, Understudy } from 'understudy-ha'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import { writeDelta, writeSnapshot } from '../src/codec/frames.js'
import { canonicalDump } from './support/dump.js'
import { Point } from './support/ops.js'

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'understudy-restore-'))
}

/** An active with a standby, checkpointing to `dir`; runs `work`, then stops both. Returns the last committed state's dump. */
async function session(dir: string, work: (root: { items: unknown[]; n: number }) => Promise<void>): Promise<string> {
  const net = new MemoryNetwork()
  const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: fsCheckpoints(dir), classes: { Point } })
  const standby = await Understudy.start({ group: 'g', transport: net.join('b'), classes: { Point } })
  const root = active.register('app', { items: [] as unknown[], n: 0 })
  await work(root)
  await active.commit()
  const dump = canonicalDump(root)
  await active.close()
  await standby.close()
  return dump
}

describe('checkpoints: restore after both sides stop', () => {
  it('a node starting alone restores the last committed state; `initial` is ignored; the count continues', async () => {
    const dir = await tempDir()
    const before = await session(dir, async (root) => {
      const shared = { tag: 'shared' }
      for (let i = 0; i < 30; i++) {
        root.items.push({ i, shared, at: new Date(i), p: new Point(i, -i) })
        root.n = i
      }
    })
    const again = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a2'), role: 'active', checkpoints: fsCheckpoints(dir), classes: { Point } })
    const root = again.register('app', { items: [] as unknown[], n: -1 })
    expect(canonicalDump(root)).toBe(before)
    expect(again.restored?.corrupt).toEqual([])
    expect(again.epoch).toBe(2)
    root.n++
    await again.commit({ mode: 'async' })
    expect(root.n).toBe(30)
    await again.close()
  })

  it('compaction: the log is folded into a snapshot once it outgrows it, and restore still yields the last state', async () => {
    const dir = await tempDir()
    const before = await session(dir, async (root) => {
      for (let i = 0; i < 300; i++) {
        root.n = i
        root.items.push('x'.repeat(500))
        if (i % 3 === 0) root.items.splice(0, 1)
        await Promise.resolve()
      }
    })
    const logFiles = await readdir(join(dir, 'g', 'log')).catch(() => [] as string[])
    expect(logFiles.length).toBeLessThan(300)
    const again = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a2'), role: 'active', checkpoints: fsCheckpoints(dir) })
    expect(canonicalDump(again.register('app', { items: [], n: -1 }))).toBe(before)
    await again.close()
  })

  it('a corrupted log record: restore stops at the newest consistent state before it and names the record', async () => {
    const dir = await tempDir()
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: fsCheckpoints(dir) })
    const root = active.register('app', { n: 0 })
    await active.commit({ mode: 'async' })
    const dumps: string[] = []
    for (let i = 1; i <= 5; i++) {
      root.n = i
      await active.commit({ mode: 'async' })
      dumps.push(canonicalDump(root))
    }
    await active.close()
    const logDir = join(dir, 'g', 'log')
    const files = (await readdir(logDir)).filter((f) => f.endsWith('.v')).sort()
    const victim = files[files.length - 3] as string // the third-newest record
    const bytes = await readFile(join(logDir, victim))
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff
    await writeFile(join(logDir, victim), bytes)
    const again = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('a2'), role: 'active', checkpoints: fsCheckpoints(dir) })
    const restored = again.register('app', { n: -1 })
    expect(again.restored?.corrupt).toHaveLength(1)
    expect(again.restored?.corrupt[0]).toBeInstanceOf(CheckpointCorruptError)
    expect(again.restored?.corrupt[0]?.message).toMatch(/checksum mismatch/)
    expect(canonicalDump(restored)).toBe(dumps[dumps.length - 4]) // everything before the damaged record
    await again.close()
  })

  it('Checkpointer: deltas that do not follow the snapshot without a gap are not replayed', async () => {
    const store = new MemoryCheckpointStore()
    const c = new Checkpointer(store, 'g')
    await c.writeSnapshot(3, 10, writeSnapshot(3, 10, [['r', 1], [[1, 0, ['n', 10]]]]))
    await c.appendDelta(3, 11, writeDelta(3, 11, [[], [], [1, ['n', 11]], []]))
    await c.appendDelta(3, 13, writeDelta(3, 13, [[], [], [1, ['n', 13]], []]))
    const r = await new Checkpointer(store, 'g').restore()
    expect(r.snapshot?.seq).toBe(10)
    expect(r.deltas.map((d) => d.seq)).toEqual([11])
    expect(r.corrupt[0]?.message).toMatch(/does not follow 11/)
  })
})

describe('standby checkpoints', () => {
  it('the active’s disk is lost and both stop: the standby’s own checkpoint restores the last acknowledged state', async () => {
    const activeDir = await tempDir()
    const standbyDir = await tempDir()
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active', checkpoints: fsCheckpoints(activeDir) })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), checkpoints: fsCheckpoints(standbyDir) })
    const root = active.register('app', { log: [] as string[] })
    for (let i = 0; i < 200; i++) {
      root.log.push(`entry ${i} `.repeat(20))
      if (i % 10 === 0) await active.commit()
    }
    await active.commit()
    const last = canonicalDump(root)
    await standby.checkpointed()
    await active.abort()
    await standby.close()
    // Only the standby's directory survives.
    const again = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join('b2'), role: 'active', checkpoints: fsCheckpoints(standbyDir) })
    expect(canonicalDump(again.register('app', { log: [] as string[] }))).toBe(last)
    expect(again.restored?.corrupt).toEqual([])
    await again.close()
  })
})

describe('crc32', () => {
  it('agrees with zlib at every length and alignment', async () => {
    const { crc32: reference } = await import('node:zlib')
    const { crc32 } = await import('understudy-ha')
    for (let len = 0; len < 70; len++) {
      const b = Uint8Array.from({ length: len }, (_, i) => (i * 131 + len * 7) & 255)
      expect(crc32(b)).toBe(reference(b))
    }
    expect(crc32(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926')
  })
})

describe('opening the store', () => {
  it('never grows it: twenty restarts without changes leave the same amount stored', async () => {
    const dir = await tempDir()
    await session(dir, async (root) => {
      for (let i = 0; i < 50; i++) root.items.push({ i })
    })
    const sizes: number[] = []
    for (let k = 0; k < 20; k++) {
      const ha = await Understudy.start({ group: 'g', transport: new MemoryNetwork().join(`r${k}`), role: 'active', checkpoints: fsCheckpoints(dir) })
      ha.register('app', { items: [], n: 0 })
      await ha.close()
      const all = await fsCheckpoints(dir).loadRange([])
      sizes.push(all.reduce((s, e) => s + e.value.length, 0))
    }
    expect(new Set(sizes.slice(1)).size).toBe(1) // the first restart folds the old log into a snapshot; after that, nothing grows
  })
})

describe("commit mode 'persisted'", () => {
  /** A store whose saves wait until the test opens the gate. */
  class GatedStore extends MemoryCheckpointStore {
    private gateOpen = false
    private waiting: (() => void)[] = []
    override async save(key: readonly string[], value: Uint8Array): Promise<void> {
      if (!this.gateOpen) await new Promise<void>((r) => this.waiting.push(r))
      return super.save(key, value)
    }
    release(): void {
      this.gateOpen = true
      for (const r of this.waiting.splice(0)) r()
    }
  }

  it('resolves only once the standby’s checkpoints hold the batch, not when it has merely applied it', async () => {
    const net = new MemoryNetwork()
    const gate = new GatedStore()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b'), checkpoints: gate })
    const root = active.register('app', { n: 0 })
    await active.commit() // applied by the standby (sync)
    root.n = 1
    let persisted = false
    const p = active.commit({ mode: 'persisted' }).then(() => (persisted = true))
    await active.commit() // the standby has applied n = 1 ...
    expect((standby.root('app') as { n: number }).n).toBe(1)
    for (let i = 0; i < 20; i++) await Promise.resolve()
    expect(persisted).toBe(false) // ... but its disk does not have it yet
    gate.release()
    await p
    expect(persisted).toBe(true)
    // What the standby's store holds now restores to n = 1.
    const r = await new Checkpointer(gate, 'g').restore()
    expect(r.snapshot).toBeDefined()
    expect(r.deltas.at(-1)?.seq ?? r.snapshot?.seq).toBeGreaterThanOrEqual(2)
    await Promise.all([active.close(), standby.close()])
  })

  it('with standbys that keep no checkpoints, it is the same as sync', async () => {
    const net = new MemoryNetwork()
    const active = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const standby = await Understudy.start({ group: 'g', transport: net.join('b') })
    const root = active.register('app', { n: 0 })
    root.n = 2
    await active.commit({ mode: 'persisted' })
    expect((standby.root('app') as { n: number }).n).toBe(2)
    await Promise.all([active.close(), standby.close()])
  })
})
