/**
 * Property: whatever sequence of log appends and snapshots runs, wherever a
 * crash cuts it (after any store write), and whichever one record is then
 * damaged, a restore returns a state that was written, at least as new as the
 * last position reported durable — unless the damaged record is a log
 * record, the only copy of its batches: then the restore ends exactly before
 * that record, and names it.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Checkpointer, MemoryCheckpointStore, type CheckpointStore, type StoreKey } from 'understudy-ha'
import type { Restored } from '../src/checkpoints/checkpointer.js'
import { writeDelta, writeSnapshot } from '../src/codec/frames.js'
import type { DeltaBody, SnapshotBody } from '../src/graph/wire.js'

const RUNS = 1500

/** A store that applies its first `limit` writes (save, remove, removeRange) and drops the rest, unresolved: the process died after the `limit`-th. */
class CrashingStore implements CheckpointStore {
  writes = 0
  dropped = 0
  constructor(
    private readonly inner: CheckpointStore,
    private readonly limit: number,
  ) {}
  private write(fn: () => Promise<void>): Promise<void> {
    if (this.writes >= this.limit) {
      this.dropped++
      return new Promise<void>(() => undefined)
    }
    this.writes++
    return fn()
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

type Op = { t: 'append'; n: number } | { t: 'snapshot' } | { t: 'epoch' } | { t: 'sync' } | { t: 'tick'; n: number }
type Damage = { t: 'flip'; at: number } | { t: 'cut'; at: number } | { t: 'tail'; bytes: number[] }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'epoch' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'sync' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 6 }) }) },
)
const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ t: fc.constant('flip' as const), at: fc.nat() }),
  fc.record({ t: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ t: fc.constant('tail' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }),
)
const life = fc.record({
  ops: fc.array(op, { maxLength: 25 }),
  commits: fc.integer({ min: 1, max: 3 }),
  crashAfter: fc.integer({ min: 0, max: 60 }),
})

type Pos = [epoch: number, seq: number]
const after = (a: Pos, b: Pos) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])
const value = ([e, s]: Pos) => e * 1000 + s
const snapshotBody = (p: Pos): SnapshotBody => [[], [[1, 0, ['n', value(p)]]]]
const deltaBody = (p: Pos): DeltaBody => [[], [], [1, ['n', value(p)]], []]

/** Everything handed to the checkpointer, by position: what a restore may return. */
interface Written {
  snapshots: Set<string>
  deltas: Set<string>
}

function positionOf(r: Restored): Pos | undefined {
  const last = r.deltas.at(-1) ?? r.snapshot
  return last && [last.epoch, last.seq]
}

/** A restore returns only what was written: a snapshot and deltas each handed over at their position, with the body given there. */
function checkWritten(r: Restored, written: Written): void {
  if (!r.snapshot) return expect(r.deltas).toEqual([])
  const s = r.snapshot
  expect(written.snapshots.has(`${s.epoch}:${s.seq}`)).toBe(true)
  expect(s.body).toEqual(snapshotBody([s.epoch, s.seq]))
  r.deltas.forEach((d, i) => {
    expect([d.epoch, d.seq]).toEqual([s.epoch, s.seq + i + 1])
    expect(written.deltas.has(`${d.epoch}:${d.seq}`)).toBe(true)
    expect(d.body).toEqual(deltaBody([d.epoch, d.seq]))
  })
}

/** Runs one life: restores (as a node starting), writes a snapshot of a new epoch, then the ops; the store stops after `crashAfter` writes. */
async function runLife(store: CheckpointStore, plan: { ops: Op[]; commits: number; crashAfter: number }, written: Written) {
  let durable: Pos = [0, -1]
  const crashing = new CrashingStore(store, plan.crashAfter)
  const c = new Checkpointer(crashing, 'g', { policy: { commits: plan.commits }, onDurable: (e, s) => (durable = [e, s]) })
  const r = await c.restore()
  const start = positionOf(r) ?? [0, 0]
  let at: Pos = [start[0] + 1, start[1]]
  const snap = () => {
    written.snapshots.add(`${at[0]}:${at[1]}`)
    c.writeSnapshot(at[0], at[1], writeSnapshot(at[0], at[1], snapshotBody(at))).catch(() => undefined)
  }
  snap()
  for (const o of plan.ops) {
    if (o.t === 'append')
      for (let i = 0; i < o.n; i++) {
        at = [at[0], at[1] + 1]
        written.deltas.add(`${at[0]}:${at[1]}`)
        c.appendDelta(at[0], at[1], writeDelta(at[0], at[1], deltaBody(at))).catch(() => undefined)
      }
    else if (o.t === 'snapshot') snap()
    else if (o.t === 'epoch') {
      at = [at[0] + 1, at[1]]
      snap()
    } else if (o.t === 'sync') c.sync().catch(() => undefined)
    else for (let i = 0; i < o.n; i++) await Promise.resolve()
  }
  // The memory store settles in microtasks: one macrotask later, every write that will land has landed.
  await new Promise((resolve) => setTimeout(resolve, 0))
  c.dispose()
  return { restored: r, durable, crashed: crashing.dropped > 0 }
}

function damaged(bytes: Uint8Array, d: Damage): Uint8Array {
  if (d.t === 'flip') {
    const b = bytes.slice()
    if (b.length) b[(d.at >> 3) % b.length] = (b[(d.at >> 3) % b.length] as number) ^ (1 << (d.at & 7))
    return b
  }
  if (d.t === 'cut') return bytes.slice(0, d.at % Math.max(1, bytes.length))
  return Uint8Array.from([...bytes, ...d.bytes])
}

describe('checkpoints under crashes and one damaged record (property)', () => {
  it(`restore never goes back past the last durable position unless the damaged record was the only copy (${RUNS} runs)`, async () => {
    const stats = { runs: 0, lives: 0, crashed: 0, damagedSnapshot: 0, damagedLog: 0, lostToLog: 0, twin: 0, fellBack: 0 }
    await fc.assert(
      fc.asyncProperty(fc.array(life, { minLength: 1, maxLength: 3 }), fc.option(fc.record({ which: fc.nat(), how: damage }), { freq: 4 }), async (lives, hit) => {
        const store = new MemoryCheckpointStore()
        const written: Written = { snapshots: new Set(), deltas: new Set() }
        let durable: Pos = [0, -1]
        for (const plan of lives) {
          const { restored, durable: d, crashed } = await runLife(store, plan, written)
          // Every restart before the last crash restores, undamaged, at least what was durable.
          checkWritten(restored, written)
          expect(restored.corrupt).toEqual([])
          expect(after(durable, positionOf(restored) ?? [0, -1])).toBe(false)
          durable = after(d, durable) ? d : durable
          stats.lives++
          if (crashed) stats.crashed++
        }
        const entries = await store.loadRange(['g'])
        let victim: string[] | undefined
        if (hit && entries.length) {
          const e = entries[hit.which % entries.length] as { key: string[]; value: Uint8Array }
          victim = e.key
          await store.save(e.key, damaged(e.value, hit.how))
          if (e.key[1] === 'log') stats.damagedLog++
          else stats.damagedSnapshot++
        }
        const r = await new Checkpointer(store, 'g').restore()
        checkWritten(r, written)
        const at = positionOf(r) ?? [0, -1]
        if (after(durable, at)) {
          // The only exception: the damaged record was a log record, the one copy of its batches; the restore ends just before it and names it.
          expect(victim?.[1]).toBe('log')
          expect(r.corrupt.map((e) => e.key)).toContainEqual(victim)
          expect(at).toEqual([r.snapshot?.epoch, Number(victim?.[2]) - 1])
          stats.lostToLog++
        }
        if (victim?.[1] === 'snapshot' && r.corrupt.some((e) => e.key.join('/') === victim.join('/'))) {
          // A damaged snapshot record was read: the restore took its other copy, or the older snapshot and the log after it.
          const same = r.snapshot && victim[2]?.startsWith(`${String(r.snapshot.epoch).padStart(16, '0')}-${String(r.snapshot.seq).padStart(16, '0')}`)
          if (same) stats.twin++
          else stats.fellBack++
        }
        stats.runs++
      }),
      { seed: 20261130, numRuns: RUNS },
    )
    console.log(`checkpoint crash property: ${JSON.stringify(stats)}`)
    expect(stats.runs).toBe(RUNS)
    expect(stats.lostToLog).toBeGreaterThan(0)
    expect(stats.twin).toBeGreaterThan(0)
    expect(stats.fellBack).toBeGreaterThan(0)
  }, 30_000)
})
