/**
 * Simulated storage with explicit await points, so a pause or a crash can land
 * between the read and the write of any operation.
 *
 * - {@link SimDisk}: one node's disk, kept across its incarnations. A save is
 *   first written (visible to the same disk), then made durable; a crash keeps
 *   or loses each write that was not yet durable, and a damage fault flips a
 *   bit in, or truncates, a stored value.
 * - {@link SimLeaseTable}: the heartbeat table every node shares. Each client
 *   reads the row, may stop, then compares-and-sets against what it read (the
 *   version-numbered file lease's protocol), or — the `locked` model of the
 *   old file lease — writes back unconditionally under a lock that a waiting
 *   node breaks once it is older than `lockStaleMs`. The `etcd` model runs the
 *   real etcd store (adapters/etcd.ts) over {@link SimEtcd}: transactions
 *   compared on mod revision, applied atomically by the server, whose request
 *   or reply can be lost or late (an unknown outcome), and freshness judged on
 *   each client's own clock, which starts at an offset of its own.
 */
import { checkKey, compareKeys, decideHeartbeat, isExpired, releasedRow, hasPrefix, type CheckpointStore, type LeaseRow, type LeaseStore, type StoreEntry, type StoreKey } from 'understudy-ha'
import { EtcdLeaseStore, type KvCompare, type KvEntry, type KvOp, type KvTxnResult, type LeaseKv } from '../../adapters/etcd.js'
import type { NodeClock, World } from './world.js'

const id = (key: readonly string[]) => JSON.stringify(key)

export class SimDisk {
  /** What survives a crash. */
  readonly durable = new Map<string, StoreEntry>()
  /** Written but not yet durable (`undefined` value: a remove). */
  readonly volatile = new Map<string, { key: string[]; value: Uint8Array | undefined }>()

  constructor(private readonly world: World) {}

  /** The store an incarnation sees, its operations running on its clock. */
  client(clock: NodeClock): CheckpointStore {
    return new DiskClient(this, clock)
  }

  view(): Map<string, StoreEntry> {
    const out = new Map(this.durable)
    for (const [k, v] of this.volatile) {
      if (v.value === undefined) out.delete(k)
      else out.set(k, { key: v.key, value: v.value })
    }
    return out
  }

  /** A crash: each write not yet durable is kept or lost, by the seeded draw. */
  crash(): void {
    for (const [k, v] of this.volatile) {
      if (!this.world.chance(0.5)) continue
      if (v.value === undefined) this.durable.delete(k)
      else this.durable.set(k, { key: v.key, value: v.value })
    }
    this.volatile.clear()
  }

  /** Damages one stored value (a bit flip, a truncation or trailing bytes). Returns what it did, or undefined when the disk is empty. */
  damage(): string | undefined {
    const keys = [...this.durable.keys()].sort()
    if (!keys.length) return undefined
    const k = keys[this.world.int(0, keys.length - 1)] as string
    const e = this.durable.get(k) as StoreEntry
    const v = new Uint8Array(e.value)
    const how = this.world.int(0, 2)
    let out: Uint8Array
    if (how === 0 && v.length) {
      const bit = this.world.int(0, v.length * 8 - 1)
      v[bit >> 3] = (v[bit >> 3] as number) ^ (1 << (bit & 7))
      out = v
    } else if (how === 1 && v.length) out = v.slice(0, this.world.int(0, v.length - 1))
    else out = new Uint8Array([...v, this.world.int(0, 255)])
    this.durable.set(k, { key: e.key, value: out })
    return `${['bit flip', 'truncation', 'trailing byte'][how]} in ${k}`
  }
}

class DiskClient implements CheckpointStore {
  constructor(
    private readonly disk: SimDisk,
    private readonly clock: NodeClock,
  ) {}

  async load(key: StoreKey): Promise<Uint8Array | undefined> {
    const k = checkKey(key, 'load')
    await this.clock.gate()
    return this.disk.view().get(id(k))?.value.slice()
  }

  async save(key: StoreKey, value: Uint8Array): Promise<void> {
    const k = checkKey(key, 'save')
    const copy = new Uint8Array(value)
    await this.clock.gate()
    this.disk.volatile.set(id(k), { key: k, value: copy })
    await this.clock.gate(3)
    this.settle(id(k))
  }

  async remove(key: StoreKey): Promise<void> {
    const k = checkKey(key, 'remove')
    await this.clock.gate()
    this.disk.volatile.set(id(k), { key: k, value: undefined })
    await this.clock.gate(3)
    this.settle(id(k))
  }

  async loadRange(prefix: StoreKey): Promise<StoreEntry[]> {
    const p = checkKey(prefix, 'loadRange', true)
    await this.clock.gate()
    return [...this.disk.view().values()]
      .filter((e) => hasPrefix(e.key, p))
      .sort((a, b) => compareKeys(a.key, b.key))
      .map((e) => ({ key: [...e.key], value: e.value.slice() }))
  }

  async removeRange(prefix: StoreKey): Promise<void> {
    const p = checkKey(prefix, 'removeRange', true)
    await this.clock.gate()
    const keys = [...this.disk.view().values()].filter((e) => hasPrefix(e.key, p)).map((e) => e.key)
    for (const k of keys) this.disk.volatile.set(id(k), { key: k, value: undefined })
    await this.clock.gate(3)
    for (const k of keys) this.settle(id(k))
  }

  async close(): Promise<void> {}

  /** The fsync: what this key holds now becomes durable. */
  private settle(k: string): void {
    const v = this.disk.volatile.get(k)
    if (!v) return
    this.disk.volatile.delete(k)
    if (v.value === undefined) this.disk.durable.delete(k)
    else this.disk.durable.set(k, { key: v.key, value: v.value })
  }
}

export type LeaseModel = 'cas' | 'locked' | 'etcd'

/** The shared heartbeat table, and a check that no epoch it hands out ever goes backwards. */
export class SimLeaseTable {
  row: LeaseRow | undefined
  released = 0
  /** Bumped on every write: what compare-and-set compares. */
  version = 0
  /** Highest epoch ever stored: a lower one stored later is a violation. */
  highest = 0
  readonly violations: string[] = []
  lock: { owner: number; at: number } | undefined

  constructor(
    private readonly world: World,
    readonly model: LeaseModel,
    private readonly lockStaleMs = 300,
  ) {
    this.etcd = new SimEtcd(world, this)
  }

  /** The etcd server of the `etcd` model. */
  readonly etcd: SimEtcd

  client(clock: NodeClock, who: string): LeaseStore {
    if (this.model === 'etcd') {
      // Each client's monotonic clock has an origin of its own: nothing may compare times across clients.
      const offset = this.world.int(0, 1_000_000)
      return new EtcdLeaseStore(new SimEtcdClient(this.etcd, clock, this.world), { prefix: 'sim/', clock: { now: () => this.world.now() + offset }, random: () => this.world.random() })
    }
    return new LeaseClient(this, clock, who, this.world, this.lockStaleMs)
  }

  write(row: LeaseRow | undefined, who: string): void {
    this.version++
    if (row && row.epoch < this.highest) this.violations.push(`lease epoch went backwards: ${who} stored epoch ${row.epoch} after ${this.highest} (t=${this.world.now().toFixed(1)})`)
    if (row) this.highest = Math.max(this.highest, row.epoch)
    this.row = row
  }
}

let lockOwners = 0

class LeaseClient implements LeaseStore {
  constructor(
    private readonly table: SimLeaseTable,
    private readonly clock: NodeClock,
    private readonly who: string,
    private readonly world: World,
    private readonly lockStaleMs: number,
  ) {}

  now(): number {
    return this.world.now()
  }

  async read(): Promise<LeaseRow | undefined> {
    await this.clock.gate()
    const r = this.table.row
    return r && copy(r)
  }

  async updateHeartbeat(uuid: string, _role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined> {
    return this.change((stored, released) => {
      const next = decideHeartbeat(stored, uuid, seen, this.now(), timeoutMs, released, isr)
      return next ? { row: next, result: copy(next) } : { result: undefined }
    })
  }

  async getPrimary(_role: string, timeoutMs: number): Promise<string | undefined> {
    const r = await this.read()
    return r && !isExpired(r, this.now(), timeoutMs) ? r.holder : undefined
  }

  async release(uuid: string, _role: string, isr?: string[]): Promise<void> {
    await this.change((stored) => (stored?.holder === uuid ? { row: releasedRow(stored, isr), result: undefined } : { result: undefined }))
  }

  async clear(): Promise<void> {
    await this.change(() => ({ row: undefined, result: undefined }))
  }

  /** Read, (a pause may land here), decide, write: by compare-and-set, or under the lock of the old model. */
  private async change<T>(decide: (stored: LeaseRow | undefined, released: number) => { row?: LeaseRow | undefined; released?: number; result: T }): Promise<T> {
    const t = this.table
    let owner = 0
    if (t.model === 'locked') {
      owner = ++lockOwners
      for (let tries = 0; ; tries++) {
        await this.clock.gate()
        if (!t.lock || this.world.now() - t.lock.at > this.lockStaleMs) {
          t.lock = { owner, at: this.world.now() }
          break
        }
        if (tries > 200) throw new Error('sim lease: could not lock')
        await this.clock.gate(10)
      }
    }
    await this.clock.gate()
    const version = t.version
    const stored = t.row && copy(t.row)
    const released = t.released
    const d = decide(stored, released)
    await this.clock.gate()
    const changes = 'row' in d
    if (changes) {
      // The compare-and-set: a newer table since the read means someone else decided first.
      if (t.model === 'cas' && t.version !== version) return undefined as T
      if (d.released !== undefined) t.released = Math.max(t.released, d.released)
      t.write(d.row, this.who)
    }
    if (t.model === 'locked' && t.lock?.owner === owner) t.lock = undefined
    await this.clock.gate()
    return d.result
  }
}

function copy(r: LeaseRow): LeaseRow {
  return r.isr ? { ...r, isr: [...r.isr] } : { ...r }
}

/**
 * The etcd server of the `etcd` model: keys with mod revisions, one store
 * revision, transactions applied atomically. It checks that no row and no
 * epoch counter it stores ever has a lower epoch than one stored before.
 */
export class SimEtcd {
  readonly kv = new Map<string, { value: string; mod: number }>()
  revision = 0
  private highestCounter = 0

  constructor(
    private readonly world: World,
    private readonly table: SimLeaseTable,
  ) {}

  apply(compare: KvCompare[], then: KvOp[], otherwise: KvOp[]): KvTxnResult {
    const holds = compare.every((c) => (c.target === 'mod' ? String(this.kv.get(c.key)?.mod ?? 0) === c.equals : this.kv.get(c.key)?.value === c.equals))
    const got = new Map<string, KvEntry>()
    let wrote = false
    for (const op of holds ? then : otherwise) {
      if ('get' in op) {
        const e = this.kv.get(op.get)
        if (e) got.set(op.get, { value: e.value, modRevision: String(e.mod) })
        continue
      }
      if (!wrote) this.revision++
      wrote = true
      this.kv.set(op.put, { value: op.value, mod: this.revision })
      this.check(op.put, op.value)
    }
    return { succeeded: holds, revision: String(this.revision), got }
  }

  deletePrefix(prefix: string): void {
    let wrote = false
    for (const k of [...this.kv.keys()])
      if (k.startsWith(prefix)) {
        if (!wrote) this.revision++
        wrote = true
        this.kv.delete(k)
      }
  }

  private check(key: string, value: string): void {
    if (key.includes('/rows/')) {
      const epoch = (JSON.parse(value) as { epoch: number }).epoch
      const t = this.table
      if (epoch < t.highest) t.violations.push(`lease epoch went backwards: etcd row ${key} stored epoch ${epoch} after ${t.highest} (t=${this.world.now().toFixed(1)})`)
      t.highest = Math.max(t.highest, epoch)
    } else if (key.includes('/epochs/')) {
      const epoch = Number(value)
      if (epoch <= this.highestCounter) this.table.violations.push(`etcd epoch counter ${key} went from ${this.highestCounter} to ${epoch} (t=${this.world.now().toFixed(1)})`)
      this.highestCounter = Math.max(this.highestCounter, epoch)
    }
  }
}

/** One node's etcd client: the request and the reply each cross an await point, and each can be lost (1%) or late past the deadline. */
class SimEtcdClient implements LeaseKv {
  constructor(
    private readonly etcd: SimEtcd,
    private readonly clock: NodeClock,
    private readonly world: World,
  ) {}

  async txn(compare: KvCompare[], then: KvOp[], otherwise: KvOp[], deadlineMs: number): Promise<KvTxnResult> {
    const start = this.world.now()
    await this.clock.gate()
    if (this.world.chance(0.01)) throw new Error('sim etcd: the request was lost')
    const r = this.etcd.apply(compare, then, otherwise)
    await this.clock.gate()
    if (this.world.chance(0.01)) throw new Error('sim etcd: the reply was lost (the transaction was applied)')
    if (this.world.now() - start > deadlineMs) throw new Error(`sim etcd: deadline of ${deadlineMs} ms exceeded (the transaction was applied)`)
    return r
  }

  async deletePrefix(prefix: string, deadlineMs: number): Promise<void> {
    const start = this.world.now()
    await this.clock.gate()
    this.etcd.deletePrefix(prefix)
    await this.clock.gate()
    if (this.world.now() - start > deadlineMs) throw new Error(`sim etcd: deadline of ${deadlineMs} ms exceeded`)
  }
}
