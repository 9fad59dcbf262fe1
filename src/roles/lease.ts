import type { Clock } from '../clock.js'

/**
 * One row of the heartbeat table: who holds a role, under which fencing
 * epoch, and when (by the store's own clock) the holder last confirmed.
 */
export interface LeaseRow {
  holder: string
  /** Fencing token: one higher every time the holder changes. */
  epoch: number
  /** The store's clock, in ms, at the holder's last confirmed heartbeat. */
  lastSeen: number
  /**
   * The in-sync set: the incarnations of the standbys that hold every write
   * the holder has acknowledged. When the row expires, only one of them may
   * take it over (see {@link mayTakeOver}). The holder writes it with each
   * renewal, and stops waiting for a member only once a row without it is
   * stored.
   */
  isr?: string[]
  /** Given up by its holder (`release`): it counts as expired, but still names who holds what. */
  released?: boolean
  /**
   * Opaque to the core: what a store's compare-and-set compares, when it is
   * not `lastSeen` (the etcd store keeps the row's mod revision here). A store
   * that sets it must be handed back the rows it returned.
   */
  version?: string
}

/**
 * The heartbeat table behind leader election. Every method is atomic with
 * respect to the others (a store serialises its own writers).
 *
 * `updateHeartbeat(uuid, role, seen, T)` implements optimistic concurrency:
 * `seen` is the row the caller last read (or wrote), `undefined` for none.
 * The write is accepted when
 * - there is no row and the caller saw none; or
 * - the row has expired (store clock − lastSeen > T) and the caller saw exactly
 *   that row (it knows it is taking over an expired lease); or
 * - the caller holds the row and `seen.lastSeen` matches (nobody wrote since).
 * Otherwise it is refused and returns `undefined`. A holder change increments
 * the epoch; a renewal keeps it. `isr`, when given, is stored in the new row.
 *
 * Holders are incarnations (a fresh id at every start of a node), never a
 * stable node name: a restarted node has lost its memory, so it must never
 * renew its previous life's row at the same epoch.
 */
export interface LeaseStore {
  /** The store's clock, ms. Freshness is always judged by this clock, never the caller's. */
  now(): number
  /** The row for `role`, if any. */
  read(role: string): Promise<LeaseRow | undefined>
  /** See the interface comment. Resolves to the new row, or `undefined` when refused. */
  updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined>
  /** The holder of `role` while its row is fresh by the store's clock, else `undefined`. */
  getPrimary(role: string, timeoutMs: number): Promise<string | undefined>
  /**
   * Gives the role up if `uuid` holds it: the row is marked `released` and
   * keeps its epoch, and `isr` (when given) as its in-sync set. Others may take
   * it at their next beat, not after T.
   */
  release(uuid: string, role: string, isr?: string[]): Promise<void>
  /** Removes every row (administration, tests). A holder finds out at its next heartbeat and demotes. */
  clear(): Promise<void>
  /**
   * Optional: calls `onGone` as soon as the store learns, before T, that the
   * holder of `role` is gone (a Web Lock released by a closed tab). Returns a
   * function that stops watching.
   */
  watch?(role: string, onGone: () => void): () => void
}

/**
 * A lease row rebuilt field by field from stored, untrusted data (a file, a
 * browser store), or undefined when it is not one.
 */
export function asLeaseRow(v: unknown): LeaseRow | undefined {
  const r = v as Partial<LeaseRow> | null | undefined
  if (!(r && typeof r.holder === 'string' && Number.isSafeInteger(r.epoch) && Number.isFinite(r.lastSeen))) return undefined
  const row: LeaseRow = { holder: r.holder, epoch: r.epoch as number, lastSeen: r.lastSeen as number }
  if (Array.isArray(r.isr) && r.isr.every((n) => typeof n === 'string')) row.isr = [...r.isr]
  if (r.released === true) row.released = true
  return row
}

/** The node an incarnation id belongs to: incarnations are `<node>@<random>`; anything else is its own node. */
export function nodeOfHolder(holder: string): string {
  const at = holder.lastIndexOf('@')
  return at > 0 ? holder.slice(0, at) : holder
}

/** A fresh incarnation id for `node`: what it holds a lease as, for one run of the process. */
export function incarnationId(node: string, random: () => number): string {
  let s = ''
  while (s.length < 10) s += Math.floor(random() * 36).toString(36)
  return `${node}@${s}`
}

/** True when `row` may be taken over: given up, or not renewed for more than T by the store's clock. */
export function isExpired(row: LeaseRow, now: number, timeoutMs: number): boolean {
  return row.released === true || now - row.lastSeen > timeoutMs
}

/**
 * True once `row` has been expired for 2·T more than T (3·T since its last
 * renewal): every live member of its in-sync set would have taken it by then,
 * so the fallbacks of {@link mayTakeOver} (and a node with no state) may.
 */
export function longExpired(row: LeaseRow, now: number, timeoutMs: number): boolean {
  return now - row.lastSeen > 3 * timeoutMs
}

/**
 * Whether `incarnation` may take over the expired (or absent) row `row` now.
 * - A row with an in-sync set admits its members only: they hold every
 *   acknowledged write.
 * - A set the holder shrank to nobody (or released with nobody in sync) means
 *   its own node held the newest state: it admits a restart of that node.
 * - Either way, once the row has been expired for 2·T more (a live member
 *   would have come within a beat), it also admits a restart of a named node
 *   or of the holder — every node may have crashed at once, and what each
 *   restored from its disk then decides, by the most-up-to-date rule — and,
 *   for an empty set, anyone: waiting for ever for a node that may never come
 *   back is an outage.
 * - A row with no set (a first election, or an election that does not track
 *   one) admits anyone, and the most up-to-date node wins.
 */
export function mayTakeOver(row: LeaseRow | undefined, incarnation: string, now: number, timeoutMs: number): boolean {
  if (!row?.isr || row.isr.includes(incarnation)) return true
  const nobody = !othersInSync(row).length
  if (nobody && nodeOfHolder(row.holder) === nodeOfHolder(incarnation)) return true
  if (!longExpired(row, now, timeoutMs)) return false
  return nobody || named(row, incarnation)
}

/** Whether `incarnation` could take `row` over at some point (see {@link mayTakeOver}): a node ahead of this one that could, will be waited for. */
export function mayEverTakeOver(row: LeaseRow | undefined, incarnation: string): boolean {
  return !row?.isr || !othersInSync(row).length || row.isr.includes(incarnation) || named(row, incarnation)
}

/**
 * The members of `row`'s in-sync set on other nodes than the holder's. A set
 * that names only earlier runs of the holder's own node has shrunk to nobody:
 * those runs are gone, and what they held is whatever that node's disk
 * restores — so a node further along than that restart is waited for.
 */
function othersInSync(row: LeaseRow): string[] {
  const holder = nodeOfHolder(row.holder)
  return (row.isr ?? []).filter((i) => nodeOfHolder(i) !== holder)
}

function named(row: LeaseRow, incarnation: string): boolean {
  const node = nodeOfHolder(incarnation)
  return [...(row.isr ?? []), row.holder].some((h) => nodeOfHolder(h) === node)
}

/**
 * Decides an `updateHeartbeat` against the stored row; shared by every store so
 * they agree exactly. `released` is the epoch of a row given up with `release`,
 * so the next holder still takes a higher epoch.
 */
export function decideHeartbeat(
  stored: LeaseRow | undefined,
  uuid: string,
  seen: LeaseRow | undefined,
  now: number,
  timeoutMs: number,
  released?: number,
  isr?: string[],
): LeaseRow | undefined {
  const row = (epoch: number): LeaseRow => (isr ? { holder: uuid, epoch, lastSeen: now, isr: [...isr] } : { holder: uuid, epoch, lastSeen: now })
  if (!stored) return seen === undefined ? row(Math.max(released ?? 0, 0) + 1) : undefined
  if (!seen) return undefined
  const same = seen.holder === stored.holder && seen.epoch === stored.epoch && seen.lastSeen === stored.lastSeen
  if (stored.holder === uuid && same && !stored.released) return row(stored.epoch)
  if (isExpired(stored, now, timeoutMs) && same) return row(stored.epoch + 1)
  return undefined
}

/**
 * The heartbeat table in memory: for tests and for nodes of one process. The
 * store has its own clock (inject a `VirtualClock` to drive expiry), and can
 * delay its replies to model a slow store.
 */
export class MemoryLeaseStore implements LeaseStore {
  private readonly rows = new Map<string, LeaseRow>()
  /** Epochs of released rows: epochs never go backwards, even through a release. */
  private readonly released = new Map<string, number>()
  /** Delay before each reply, in ms of the store's clock (0: reply in a microtask). */
  replyDelayMs = 0

  constructor(private readonly clock: Clock) {}

  now(): number {
    return this.clock.now()
  }

  read(role: string): Promise<LeaseRow | undefined> {
    return this.reply(() => {
      const r = this.rows.get(role)
      return r && copyRow(r)
    })
  }

  updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined> {
    // Decided when the request reaches the store; the reply may then be delayed.
    const next = decideHeartbeat(this.rows.get(role), uuid, seen, this.clock.now(), timeoutMs, this.released.get(role), isr)
    if (next) this.rows.set(role, next)
    return this.reply(() => next && copyRow(next))
  }

  getPrimary(role: string, timeoutMs: number): Promise<string | undefined> {
    return this.reply(() => {
      const r = this.rows.get(role)
      return r && !isExpired(r, this.clock.now(), timeoutMs) ? r.holder : undefined
    })
  }

  async release(uuid: string, role: string, isr?: string[]): Promise<void> {
    const row = this.rows.get(role)
    if (row?.holder !== uuid) return
    // The row stays, given up: whoever takes it next still sees the in-sync set.
    this.rows.set(role, releasedRow(row, isr))
  }

  async clear(): Promise<void> {
    // Epochs never go backwards, even through a clear.
    for (const [role, row] of this.rows) this.released.set(role, Math.max(this.released.get(role) ?? 0, row.epoch))
    this.rows.clear()
  }

  private reply<T>(value: () => T): Promise<T> {
    if (!this.replyDelayMs) return Promise.resolve(value())
    const v = value()
    return new Promise((resolve) => this.clock.setTimeout(() => resolve(v), this.replyDelayMs))
  }
}

/** `row`, given up by its holder, with its final in-sync set. */
export function releasedRow(row: LeaseRow, isr?: string[]): LeaseRow {
  return { ...row, ...(isr ? { isr: [...isr] } : {}), released: true }
}

function copyRow(r: LeaseRow): LeaseRow {
  return r.isr ? { ...r, isr: [...r.isr] } : { ...r }
}
