/**
 * A lease store on etcd, for nodes on different machines (Node). etcd runs
 * the consensus; this file only keeps the heartbeat table in it with the same
 * rules as every other store ({@link LeaseStore}).
 *
 * Keys, under `prefix`:
 * - `rows/<role>`: the row, JSON `{ holder, epoch, isr?, released?, w }`
 *   (`w`: a random id of the write, see "unknown outcomes" below);
 * - `epochs/<role>`: the role's epoch counter, a decimal string. It is never
 *   deleted (`clear` removes rows only), so epochs grow through a clear too.
 *   While a row exists the counter equals the row's epoch.
 *
 * Every change is one etcd transaction, compared on the row's mod revision
 * (kept in {@link LeaseRow.version}, opaque to the core):
 * - a first holder: the row is absent (mod revision 0) and the counter is
 *   the one last read; puts the row and the counter + 1;
 * - a renewal: the row still has the revision the holder last wrote; puts
 *   the row, epoch unchanged;
 * - a takeover of an expired (or released) row: the row still has the
 *   revision the taker saw and the counter still holds its epoch; puts the
 *   row and the counter, both one higher.
 * The failure branch reads the row and the counter back, in the same round
 * trip, so a refused caller learns what won.
 *
 * Freshness. etcd has no clock a client can read, and its lease TTLs are too
 * coarse for this (whole seconds, checked every 500 ms, extended when etcd's
 * leader changes), so they are not used. A row is expired when its revision
 * has not changed for more than T **on the observer's own monotonic clock**:
 * `lastSeen` of a row this store returns is the moment this store first saw
 * that revision (when its reply arrived; for the caller's own write, when the
 * request was sent — earlier, so the holder gives up first). This needs equal
 * clock rates, not synchronised clocks (the elector assumes that already); a
 * freshly started observer waits a full T before it finds any row expired.
 * `now()` is therefore this process's monotonic clock, and rows must not be
 * compared across processes.
 *
 * Unknown outcomes. A call that times out or loses its connection may still
 * have been applied. Retrying blindly would turn an applied renewal into a
 * "refused" one (the row moved on, by our own hand) and demote the holder for
 * nothing; so each write carries a random `w`, a retry sends the same
 * transaction, and a refusal whose row holds one of this store's recent `w`s
 * is recognised as our own write. Every operation is bounded by its deadline
 * (`deadlineMs`, default T/2 — below T − I, since T > 2·I), the whole of it,
 * retries included: the elector demotes a holder that has not confirmed
 * within T − I anyway.
 *
 * The client. Build it with {@link etcdClientOptions}, which turns off
 * `etcd3`'s global retry policy and its per-host circuit breaker: the breaker
 * stops all calls to a host for 5 s after three failures, longer than any
 * lease, and retries are done here, where the outcome can be checked. This
 * file imports only types from `etcd3` (an optional peer dependency).
 *
 * Every renewal is a new etcd revision: run etcd with auto-compaction
 * (`--auto-compaction-mode=periodic --auto-compaction-retention=1h`), or its
 * history grows until its space quota refuses every write.
 *
 * Fencing beyond the group: see {@link fencedTxn}.
 */
import type { ComparatorBuilder, Etcd3, IOptions, IKeyValue } from 'etcd3'
import { ConfigError, UnderstudyError, asLeaseRow, isExpired, type Clock, type LeaseRow, type LeaseStore, type Random } from '../src/index.js'

/** One compare of a {@link LeaseKv} transaction: the key's mod revision (`'0'`: absent) or its value equals `equals`. */
export interface KvCompare {
  key: string
  target: 'mod' | 'value'
  equals: string
}

/** One operation of a {@link LeaseKv} transaction. */
export type KvOp = { get: string } | { put: string; value: string }

/** A key as read: its value and mod revision (etcd's int64, as a decimal string). */
export interface KvEntry {
  value: string
  modRevision: string
}

/** What a transaction did: whether the compares held, the store's revision after it, and what its gets found (absent keys are missing). */
export interface KvTxnResult {
  succeeded: boolean
  revision: string
  got: Map<string, KvEntry>
}

/**
 * The little of etcd the store uses: one transaction and one prefix delete,
 * each bounded by a deadline. {@link etcdLease} adapts an `etcd3` client to
 * it; the simulator (test/sim) implements it with its own faults.
 */
export interface LeaseKv {
  /** Runs `then` if every compare holds (an empty list holds), else `otherwise`, atomically. May reject (unknown outcome). */
  txn(compare: KvCompare[], then: KvOp[], otherwise: KvOp[], deadlineMs: number): Promise<KvTxnResult>
  /** Deletes every key starting with `prefix`. */
  deletePrefix(prefix: string, deadlineMs: number): Promise<void>
}

export interface EtcdLeaseOptions {
  /** Where the table lives in etcd, e.g. `'understudy/my-group/'`. Every node of a group uses the same prefix. */
  prefix: string
  /**
   * Bound on each operation, retries included, in ms. Default: T/2 for
   * operations given T (`updateHeartbeat`, `getPrimary`), and the last T/2
   * seen (1 s before any) for the others. Keep it at or below T − I.
   */
  deadlineMs?: number
  /** The observer's monotonic clock (default `performance.now()`). For tests. */
  clock?: Pick<Clock, 'now'>
  /** Source of the write ids (default: `crypto.getRandomValues`). For the simulator. */
  random?: Random
}

/**
 * An etcd operation did not complete within its deadline, or etcd refused it
 * (no leader, unreachable, a value that is not a lease row). `op` names the
 * operation and `key` the etcd key. The elector counts it as an unconfirmed
 * beat.
 */
export class EtcdLeaseError extends UnderstudyError {
  override name = 'EtcdLeaseError'
  constructor(
    readonly op: string,
    readonly key: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('LEASE_STORE_UNAVAILABLE', `etcd lease: ${op} on ${key}: ${detail}`, options)
  }
}

/**
 * A lease store kept in etcd under `options.prefix`, through an `etcd3`
 * client built with {@link etcdClientOptions}. Throws {@link ConfigError} for
 * an empty prefix.
 *
 * ```ts
 * import { Etcd3 } from 'etcd3'
 * const client = new Etcd3(etcdClientOptions(['http://10.0.0.5:2379', 'http://10.0.0.6:2379', 'http://10.0.0.7:2379']))
 * const lease = etcdLease(client, { prefix: 'understudy/orders/' })
 * ```
 */
export function etcdLease(client: Etcd3, options: EtcdLeaseOptions): EtcdLeaseStore {
  return new EtcdLeaseStore(etcdKv(client), options)
}

type FaultHandling = NonNullable<IOptions['faultHandling']>
type Policy = NonNullable<FaultHandling['global']>

/** A policy that calls through once: no retry, no circuit breaker. */
const callOnce = {
  execute: (fn: (context: { signal: AbortSignal }) => unknown, signal?: AbortSignal) => Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
} as unknown as Policy

/**
 * Options for `new Etcd3(...)` that suit a lease: `hosts` (with `http://`),
 * no global retry and no host circuit breaker (see the module comment), plus
 * anything in `extra` (credentials, `grpcOptions`…).
 */
export function etcdClientOptions(hosts: string[] | string, extra: Omit<IOptions, 'hosts' | 'faultHandling'> = {}): IOptions {
  return { ...extra, hosts, faultHandling: { global: callOnce, host: () => callOnce } }
}

/**
 * Starts an etcd transaction that applies only while `role`'s epoch counter
 * under `prefix` still equals `epoch`: the fencing token check for writes an
 * active makes to etcd itself. Add compares with `.and(…)`, operations with
 * `.then(…)`, and `commit()`: `succeeded` is false once any node has taken
 * the role over with a higher epoch (even while this node still believes it
 * is active: a paused process's late write is refused). A deadline check on
 * the client cannot do this; anything outside etcd that the active writes to
 * must check the epoch the same way.
 *
 * ```ts
 * const r = await fencedTxn(client, prefix, 'active', ha.epoch).then(client.put('orders/42').value(json)).commit()
 * if (!r.succeeded) throw new Error('deposed: the write was refused')
 * ```
 */
export function fencedTxn(client: Etcd3, prefix: string, role: string, epoch: number): ComparatorBuilder {
  return client.if(`${checkPrefix(prefix)}epochs/${role}`, 'Value', '==', String(epoch))
}

/** Puts `key` = `value` only while `role`'s epoch is still `epoch` (see {@link fencedTxn}). Resolves true when written, false when fenced off. */
export async function fencedPut(client: Etcd3, prefix: string, role: string, epoch: number, key: string, value: string): Promise<boolean> {
  return (await fencedTxn(client, prefix, role, epoch).then(client.put(key).value(value)).commit()).succeeded
}

function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !prefix) throw new ConfigError(`etcdLease: prefix must be a non-empty string (got ${JSON.stringify(prefix)})`)
  return prefix
}

/** An `etcd3` client as a {@link LeaseKv}. */
export function etcdKv(client: Etcd3): LeaseKv {
  const ops = (list: KvOp[]) => list.map((o) => ('get' in o ? client.get(o.get) : client.put(o.put).value(o.value)))
  return {
    async txn(compare, then, otherwise, deadlineMs) {
      // An empty list of compares: one that always holds (every mod revision is ≥ 0).
      const [first, ...rest] = compare
      let b = first ? client.if(first.key, first.target === 'mod' ? 'Mod' : 'Value', '==', first.equals) : client.if(then.length ? keyOf(then[0] as KvOp) : 'x', 'Mod', '>', -1)
      for (const c of rest) b = b.and(c.key, c.target === 'mod' ? 'Mod' : 'Value', '==', c.equals)
      const r = await b
        .then(...ops(then))
        .else(...ops(otherwise))
        .options({ deadline: Date.now() + Math.max(1, deadlineMs) })
        .commit()
      const got = new Map<string, KvEntry>()
      for (const resp of r.responses) {
        const kv: IKeyValue | undefined = resp.response_range?.kvs?.[0]
        if (kv) got.set(kv.key.toString(), { value: kv.value.toString(), modRevision: String(kv.mod_revision) })
      }
      return { succeeded: r.succeeded, revision: String(r.header.revision), got }
    },
    async deletePrefix(prefix, deadlineMs) {
      await client
        .delete()
        .prefix(prefix)
        .options({ deadline: Date.now() + Math.max(1, deadlineMs) })
        .exec()
    },
  }
}

function keyOf(op: KvOp): string {
  return 'get' in op ? op.get : op.put
}

/** A row as stored in etcd: no `lastSeen` (it is each observer's own), and the id of the write. */
interface Stored {
  row: Omit<LeaseRow, 'lastSeen'>
  w: string | undefined
}

/** Unanswered writes remembered per role (a refused call may be looking at one of them). */
const RECENT_WRITES = 16
/** Attempts of one operation (each bounded by what is left of its deadline). */
const MAX_ATTEMPTS = 6

/** The etcd heartbeat table (see the module comment). Build it with {@link etcdLease}. */
export class EtcdLeaseStore implements LeaseStore {
  private readonly prefix: string
  private readonly clock: Pick<Clock, 'now'>
  /** Per role: the newest mod revision this store has seen, and when (its clock) it first saw it. */
  private readonly seenAt = new Map<string, { rev: bigint; at: number }>()
  /** Per role: the epoch counter as last read (value and mod revision), for a first holder's compare. */
  private readonly counters = new Map<string, { epoch: number; modRevision: string }>()
  /** Per role: ids of this store's recent writes that got no answer (they may have been applied), and when each was sent. */
  private readonly writes = new Map<string, Map<string, number>>()
  private defaultDeadlineMs = 1000

  constructor(
    private readonly kv: LeaseKv,
    private readonly options: EtcdLeaseOptions,
  ) {
    this.prefix = checkPrefix(options.prefix)
    this.clock = options.clock ?? { now: () => performance.now() }
  }

  now(): number {
    return this.clock.now()
  }

  async read(role: string): Promise<LeaseRow | undefined> {
    return (await this.fetch(role, this.deadline())).row
  }

  async getPrimary(role: string, timeoutMs: number): Promise<string | undefined> {
    const { row } = await this.fetch(role, this.deadline(timeoutMs))
    return row && !isExpired(row, this.now(), timeoutMs) ? row.holder : undefined
  }

  async updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined> {
    const deadline = this.now() + this.deadline(timeoutMs)
    let current = seen
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const plan = await this.plan(uuid, role, current, timeoutMs, deadline, isr)
      if (!plan) return undefined
      const out = await this.write(role, plan, deadline, 'updateHeartbeat')
      if (out.ok) return out.row
      // Refused because the row holds an earlier write of ours, for this holder, whose reply we never got: go on from it.
      if (out.ours && out.row?.holder === uuid && !out.row.released && current?.version !== out.row.version) {
        current = out.row
        continue
      }
      return undefined
    }
    return undefined
  }

  /**
   * Best effort: when etcd cannot be reached within the deadline the row is
   * left as it is, and expires after T like a crashed holder's (a release only
   * makes the next takeover sooner). It never throws for that.
   */
  async release(uuid: string, role: string, isr?: string[]): Promise<void> {
    const deadline = this.now() + this.deadline()
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const { row } = await this.fetch(role, Math.max(1, deadline - this.now()))
        if (row?.holder !== uuid || row.released || row.version === undefined) return
        const next: Omit<LeaseRow, 'lastSeen'> = { holder: row.holder, epoch: row.epoch, ...(isr ? { isr: [...isr] } : row.isr ? { isr: row.isr } : {}), released: true }
        const out = await this.write(role, { row: next, compare: [{ key: this.rowKey(role), target: 'mod', equals: row.version }], bump: false }, deadline, 'release')
        if (out.ok || out.ours) return
      }
    } catch (err) {
      if (!(err instanceof EtcdLeaseError)) throw err
    }
  }

  async clear(): Promise<void> {
    // Counters stay: epochs never go backwards through a clear.
    const key = `${this.prefix}rows/`
    try {
      await this.kv.deletePrefix(key, this.deadline())
    } catch (err) {
      throw new EtcdLeaseError('clear', key, describe(err), { cause: err })
    }
  }

  private rowKey(role: string): string {
    return `${this.prefix}rows/${role}`
  }

  private epochKey(role: string): string {
    return `${this.prefix}epochs/${role}`
  }

  private deadline(timeoutMs?: number): number {
    if (this.options.deadlineMs !== undefined) return this.options.deadlineMs
    if (timeoutMs === undefined) return this.defaultDeadlineMs
    this.defaultDeadlineMs = timeoutMs / 2
    return timeoutMs / 2
  }

  /** The transaction that would make `uuid` hold `role` from `seen`, or undefined when the rules refuse it outright. */
  private async plan(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, deadline: number, isr?: string[]): Promise<Plan | undefined> {
    const row = (epoch: number): Omit<LeaseRow, 'lastSeen'> => (isr ? { holder: uuid, epoch, isr: [...isr] } : { holder: uuid, epoch })
    const rowKey = this.rowKey(role)
    if (!seen) {
      let counter = this.counters.get(role)
      if (!counter) {
        const f = await this.fetch(role, Math.max(1, deadline - this.now()))
        if (f.row) return undefined
        counter = this.counters.get(role) ?? { epoch: 0, modRevision: '0' }
      }
      const compare: KvCompare[] = [
        { key: rowKey, target: 'mod', equals: '0' },
        { key: this.epochKey(role), target: 'mod', equals: counter.modRevision },
      ]
      return { row: row(counter.epoch + 1), compare, bump: true }
    }
    if (seen.version === undefined) return undefined
    if (seen.holder === uuid && !seen.released) return { row: row(seen.epoch), compare: [{ key: rowKey, target: 'mod', equals: seen.version }], bump: false }
    if (!isExpired({ ...seen, lastSeen: this.firstSeen(role, seen) }, this.now(), timeoutMs)) return undefined
    const compare: KvCompare[] = [
      { key: rowKey, target: 'mod', equals: seen.version },
      { key: this.epochKey(role), target: 'value', equals: String(seen.epoch) },
    ]
    return { row: row(seen.epoch + 1), compare, bump: true }
  }

  /** When `seen`'s revision was first seen: by the caller, or earlier by this store. */
  private firstSeen(role: string, seen: LeaseRow): number {
    const s = this.seenAt.get(role)
    return s && seen.version !== undefined && s.rev === BigInt(seen.version) ? Math.min(s.at, seen.lastSeen) : seen.lastSeen
  }

  /**
   * Runs `plan` as one transaction, retried (same transaction, same write id)
   * while calls fail and time is left. `ours`: refused, but the row holds a
   * recent write of this store that never got an answer (an earlier call,
   * applied after all).
   */
  private async write(role: string, plan: Plan, deadline: number, op: string): Promise<{ ok: boolean; row: LeaseRow | undefined; ours: boolean }> {
    const w = writeId(this.options.random)
    const sent = this.now()
    const value = JSON.stringify({ ...plan.row, w })
    const then: KvOp[] = [{ put: this.rowKey(role), value }]
    if (plan.bump) then.push({ put: this.epochKey(role), value: String(plan.row.epoch) })
    const reads: KvOp[] = [{ get: this.rowKey(role) }, { get: this.epochKey(role) }]
    let lastError: unknown
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const left = deadline - this.now()
      if (left <= 0) break
      let r: KvTxnResult
      try {
        r = await this.kv.txn(plan.compare, then, reads, left)
      } catch (err) {
        lastError = err
        continue
      }
      if (r.succeeded) {
        this.saw(role, r.revision, sent)
        if (plan.bump) this.counters.set(role, { epoch: plan.row.epoch, modRevision: r.revision })
        return { ok: true, row: { ...plan.row, ...(plan.row.isr ? { isr: [...plan.row.isr] } : {}), lastSeen: sent, version: r.revision }, ours: false }
      }
      const stored = this.absorb(role, r.got, this.now())
      // Our own write, applied by an earlier attempt whose reply was lost.
      if (stored.w === w) {
        this.saw(role, stored.entry?.modRevision as string, sent)
        return { ok: true, row: { ...(stored.row as LeaseRow), lastSeen: sent }, ours: true }
      }
      const mine = stored.w !== undefined ? this.writes.get(role)?.get(stored.w) : undefined
      if (mine !== undefined && stored.row && stored.entry) {
        this.saw(role, stored.entry.modRevision, mine)
        return { ok: false, row: { ...stored.row, lastSeen: mine }, ours: true }
      }
      return { ok: false, row: stored.row, ours: false }
    }
    // No answer: the write may still be applied. Remembered, so a later refusal that finds it is recognised as ours.
    this.remember(role, w, sent)
    throw new EtcdLeaseError(op, this.rowKey(role), lastError ? `no answer within the deadline (${describe(lastError)})` : 'no time left within the deadline', { cause: lastError })
  }

  /** Reads the row and the counter in one transaction. */
  private async fetch(role: string, deadlineMs: number): Promise<{ row: LeaseRow | undefined }> {
    const end = this.now() + deadlineMs
    let lastError: unknown
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const left = end - this.now()
      if (left <= 0) break
      try {
        const r = await this.kv.txn([], [{ get: this.rowKey(role) }, { get: this.epochKey(role) }], [], left)
        return { row: this.absorb(role, r.got, this.now()).row }
      } catch (err) {
        if (err instanceof EtcdLeaseError) throw err
        lastError = err
      }
    }
    throw new EtcdLeaseError('read', this.rowKey(role), lastError ? `no answer within ${deadlineMs} ms (${describe(lastError)})` : 'no time left within the deadline', { cause: lastError })
  }

  /** Takes in what a read found at `at`: remembers the counter and when each revision was first seen; returns the row. */
  private absorb(role: string, got: Map<string, KvEntry>, at: number): { row: LeaseRow | undefined; w: string | undefined; entry: KvEntry | undefined } {
    const c = got.get(this.epochKey(role))
    if (c) {
      const epoch = Number(c.value)
      if (!Number.isSafeInteger(epoch) || epoch < 0) throw new EtcdLeaseError('read', this.epochKey(role), `holds ${JSON.stringify(c.value.slice(0, 40))}, not an epoch`)
      this.counters.set(role, { epoch, modRevision: c.modRevision })
    } else this.counters.set(role, { epoch: 0, modRevision: '0' })
    const entry = got.get(this.rowKey(role))
    if (!entry) return { row: undefined, w: undefined, entry }
    const stored = parseStored(entry.value)
    if (!stored) throw new EtcdLeaseError('read', this.rowKey(role), `holds ${JSON.stringify(entry.value.slice(0, 60))}, not a lease row`)
    const lastSeen = this.saw(role, entry.modRevision, at)
    return { row: { ...stored.row, lastSeen, version: entry.modRevision }, w: stored.w, entry }
  }

  /** Records that revision `rev` of `role`'s row was seen at `at` (or earlier); returns when it was first seen. */
  private saw(role: string, rev: string, at: number): number {
    const r = BigInt(rev)
    const s = this.seenAt.get(role)
    if (s && s.rev === r) {
      s.at = Math.min(s.at, at)
      return s.at
    }
    // An older revision than one already seen (a reply that overtook another): judged from now.
    if (!s || r > s.rev) this.seenAt.set(role, { rev: r, at })
    return at
  }

  private remember(role: string, w: string, sent: number): void {
    let m = this.writes.get(role)
    if (!m) this.writes.set(role, (m = new Map()))
    m.set(w, sent)
    if (m.size > RECENT_WRITES) m.delete(m.keys().next().value as string)
  }
}

interface Plan {
  row: Omit<LeaseRow, 'lastSeen'>
  compare: KvCompare[]
  /** Also put the epoch counter (a first holder, a takeover). */
  bump: boolean
}

function parseStored(text: string): Stored | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof raw !== 'object' || raw === null) return undefined
  const row = asLeaseRow({ ...(raw as object), lastSeen: 0 })
  if (!row) return undefined
  const { lastSeen: _, ...rest } = row
  const w = (raw as { w?: unknown }).w
  return { row: rest, w: typeof w === 'string' ? w : undefined }
}

function writeId(random: Random | undefined): string {
  const b = new Uint8Array(9)
  if (random) for (let i = 0; i < b.length; i++) b[i] = Math.floor(random() * 256)
  else crypto.getRandomValues(b)
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
