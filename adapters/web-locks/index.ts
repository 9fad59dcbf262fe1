/**
 * A lease store for the tabs of one browser profile, on the Web Locks API.
 *
 * The heartbeat table is changed under an exclusive Web Lock, so every tab and
 * worker applies the same rules atomically. It lives in `localStorage` in a
 * page (synchronous: a takeover costs microseconds) and in IndexedDB in a
 * worker, which has no `localStorage`. Every node of a group must use the same
 * table: elect in pages everywhere, or in workers everywhere
 * (`webWorkerElection`), or pass `table: 'indexedDB'` to all. On top,
 * the holder keeps a second lock — the *holder lock* — for as long as it holds
 * the lease. Browsers release a closed or crashed tab's locks within
 * milliseconds, and followers queue for that lock: the one that is granted it
 * knows the holder is gone and may take over at once, without waiting T.
 * A hung or frozen tab keeps its lock, so a follower that sees its heartbeat
 * expire after T *steals* the lock with the next epoch; if the old tab ever
 * wakes, its lock request fails with `AbortError` and its renewal is refused:
 * it is fenced.
 */
import { openDB } from 'idb'
import { ConfigError, asLeaseRow, decideHeartbeat, isExpired, releasedRow, remoteElection, type ElectionFactory, type ElectionWorker, type LeaseRow, type LeaseStore } from '../../src/index.js'

export interface WebLocksLeaseOptions {
  /** The lock manager (default: `navigator.locks`). */
  locks?: LockManager
  /** Where the table lives (default: `'localStorage'` where there is one, else `'indexedDB'`). */
  table?: 'localStorage' | 'indexedDB'
  /** IndexedDB database holding the table (default `understudy-lease`). */
  database?: string
  /**
   * How long to wait for the table's lock before stealing it (default 1000 ms):
   * a frozen tab may be holding it. Writes are compare-and-set, so a thawed
   * tab that was robbed of the lock cannot overwrite a newer row.
   */
  tableLockTimeoutMs?: number
}

/** The table's storage: a few keys, read and written under the table lock. */
interface TableStorage {
  get(key: string): Promise<unknown>
  getBoth(a: string, b: string): Promise<[unknown, unknown]>
  write(puts: [string, unknown][], deletes: string[]): Promise<void>
  /** Writes `next` under `key` only if it still holds `expected` (compared as JSON); atomic. */
  compareAndSet(key: string, expected: unknown, next: unknown): Promise<boolean>
  keys(): Promise<string[]>
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

function localTable(storage: Storage): TableStorage {
  const get = (k: string): unknown => {
    const v = storage.getItem(k)
    try {
      return v === null ? undefined : (JSON.parse(v) as unknown)
    } catch {
      return undefined
    }
  }
  return {
    get: async (k) => get(k),
    getBoth: async (a, b) => [get(a), get(b)],
    write: async (puts, deletes) => {
      for (const [k, v] of puts) storage.setItem(k, JSON.stringify(v))
      for (const k of deletes) storage.removeItem(k)
    },
    // Synchronous: nothing can run between the check and the write.
    compareAndSet: async (k, expected, next) => {
      if (!same(get(k), expected)) return false
      storage.setItem(k, JSON.stringify(next))
      return true
    },
    keys: async () => Array.from({ length: storage.length }, (_, i) => storage.key(i)).filter((k): k is string => k !== null),
  }
}

function indexedDbTable(name: string): TableStorage {
  const db = openDB(name, 1, { upgrade: (d) => void d.createObjectStore(STORE) })
  return {
    get: async (k) => (await db).get(STORE, k),
    getBoth: async (a, b) => {
      const tx = (await db).transaction(STORE, 'readonly')
      return Promise.all([tx.store.get(a), tx.store.get(b)])
    },
    // Relaxed durability: the table is a lease, not data — a browser crash ends every tab that could hold it —
    // and durable commits would add a disk flush to every renewal and takeover.
    write: async (puts, deletes) => {
      const tx = (await db).transaction(STORE, 'readwrite', { durability: 'relaxed' })
      await Promise.all([...puts.map(([k, v]) => tx.store.put(v, k)), ...deletes.map((k) => tx.store.delete(k)), tx.done])
    },
    // One readwrite transaction: IndexedDB serialises it against every other context.
    compareAndSet: async (k, expected, next) => {
      const tx = (await db).transaction(STORE, 'readwrite', { durability: 'relaxed' })
      const ok = same(await tx.store.get(k), expected)
      if (ok) await tx.store.put(next, k)
      await tx.done
      return ok
    },
    keys: async () => ((await (await db).getAllKeys(STORE)) as unknown[]).filter((k): k is string => typeof k === 'string'),
  }
}

const STORE = 'rows'

/** A lease store named `name` (one per replication group is natural: use the group name). */
export function webLocksLease(name: string, options: WebLocksLeaseOptions = {}): WebLocksLeaseStore {
  return new WebLocksLeaseStore(name, options)
}

interface Held {
  release: () => void
}

export class WebLocksLeaseStore implements LeaseStore {
  private readonly store: TableStorage
  private readonly locks: LockManager
  private readonly tableLockTimeoutMs: number
  /** Holder locks this tab holds, per role. */
  private readonly held = new Map<string, Held>()
  /**
   * Roles whose holder lock this tab was *granted* while following (the
   * previous holder is gone), with when. Only rows last renewed before then
   * belong to the gone holder: a newer row is a new holder that stole the lock
   * from this tab — news of that steal may not have reached this tab yet.
   */
  private readonly granted = new Map<string, number>()
  private readonly watching = new Map<string, AbortController>()

  constructor(
    readonly name: string,
    options: WebLocksLeaseOptions = {},
  ) {
    const g = globalThis as { indexedDB?: unknown; localStorage?: Storage; navigator?: { locks?: LockManager } }
    const locks = options.locks ?? g.navigator?.locks
    if (!locks) throw new ConfigError('webLocksLease: needs navigator.locks (a browser page or worker); elsewhere use another lease store')
    this.locks = locks
    this.tableLockTimeoutMs = options.tableLockTimeoutMs ?? 1000
    const kind = options.table ?? (g.localStorage ? 'localStorage' : 'indexedDB')
    if (kind === 'localStorage' && !g.localStorage) throw new ConfigError('webLocksLease: there is no localStorage here (a worker?): use table "indexedDB"')
    if (kind === 'indexedDB' && !g.indexedDB) throw new ConfigError('webLocksLease: there is no IndexedDB here; use table "localStorage" in a page')
    this.store = kind === 'localStorage' ? localTable(g.localStorage as Storage) : indexedDbTable(options.database ?? 'understudy-lease')
  }

  now(): number {
    return Date.now()
  }

  async read(role: string): Promise<LeaseRow | undefined> {
    return this.effective(role, await this.load(role))
  }

  updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined> {
    return this.table(async () => {
      const [row, released] = await this.loadWithReleased(role)
      const stored = this.effective(role, row)
      const next = decideHeartbeat(stored, uuid, seen, this.now(), timeoutMs, released, isr)
      if (!next) return undefined
      // A new holder takes the holder lock *before* the row says so: followers only queue for the lock
      // after reading the row, so their request always comes after the holder's.
      if (stored?.holder !== uuid && !(await this.hold(role, stored !== undefined, row))) return undefined
      // Compare-and-set against the row this decision was made on: if the table lock was stolen from this
      // tab while it waited (it was frozen), a newer row is never overwritten.
      if (!(await this.store.compareAndSet(this.key(role), row, next))) {
        if (stored?.holder !== uuid) this.releaseHeld(role)
        return undefined
      }
      return next
    })
  }

  async getPrimary(role: string, timeoutMs: number): Promise<string | undefined> {
    const r = await this.read(role)
    return r && !isExpired(r, this.now(), timeoutMs) ? r.holder : undefined
  }

  release(uuid: string, role: string, isr?: string[]): Promise<void> {
    return this.table(async () => {
      const r = await this.load(role)
      if (r?.holder !== uuid) return
      // The row stays, given up: whoever takes it next still sees the in-sync set.
      await this.store.write([[this.key(role), releasedRow(r, isr)], [`${this.key(role)}:released`, r.epoch]], [])
      this.held.get(role)?.release()
      this.held.delete(role)
    })
  }

  clear(): Promise<void> {
    return this.table(async () => {
      const keys = (await this.store.keys()).filter((k) => k.startsWith(`understudy-lease:${this.name}:`) && !k.endsWith(':released'))
      await this.store.write([], keys)
    })
  }

  watch(role: string, onGone: () => void): () => void {
    if (this.watching.has(role) || this.held.has(role)) return () => {}
    const abort = new AbortController()
    this.watching.set(role, abort)
    let keep!: () => void
    const holding = new Promise<void>((r) => (keep = r))
    this.locks
      .request(this.holderLock(role), { signal: abort.signal }, () => {
        // Granted: whoever held it is gone. Keep the lock until this tab becomes the holder or stops following.
        this.granted.set(role, this.now())
        this.held.set(role, { release: keep })
        onGone()
        return holding
      })
      .catch(() => {
        /* aborted (stopped watching) or stolen by a new holder */
      })
      .finally(() => {
        this.granted.delete(role)
        if (this.held.get(role)?.release === keep) this.held.delete(role)
        this.watching.delete(role)
      })
    return () => {
      if (this.granted.has(role)) return // it became the holder's lock: keep it
      abort.abort()
    }
  }

  private key(role: string): string {
    return `understudy-lease:${this.name}:${role}`
  }

  private holderLock(role: string): string {
    return `understudy-lease:${this.name}:${role}:holder`
  }

  private async load(role: string): Promise<LeaseRow | undefined> {
    return asLeaseRow(await this.store.get(this.key(role)))
  }

  /** The row and the last released epoch. */
  private async loadWithReleased(role: string): Promise<[LeaseRow | undefined, number | undefined]> {
    const [r, e] = await this.store.getBoth(this.key(role), `${this.key(role)}:released`)
    return [asLeaseRow(r), typeof e === 'number' && Number.isSafeInteger(e) && e > 0 ? e : undefined]
  }

  /** The row as this tab must judge it: expired at once when its holder's lock was since granted to this tab. */
  private effective(role: string, row: LeaseRow | undefined): LeaseRow | undefined {
    return row && this.grantedSince(role, row) ? { ...row, lastSeen: Number.MIN_SAFE_INTEGER } : row
  }

  /** True when this tab was granted the holder lock after `row` was last renewed (so its holder is gone). */
  private grantedSince(role: string, row: LeaseRow | undefined): boolean {
    const at = this.granted.get(role)
    return at !== undefined && (!row || row.lastSeen <= at)
  }

  /**
   * Takes the holder lock for a role this tab is about to hold: keeps a lock
   * granted while following; steals it when taking over an expired row (a hung
   * tab keeps its lock); otherwise takes it only if nobody holds it. Resolves
   * whether this tab now holds it.
   */
  private hold(role: string, steal: boolean, row: LeaseRow | undefined): Promise<boolean> {
    if (this.grantedSince(role, row)) {
      // Granted while following: it is now simply the holder's lock.
      this.granted.delete(role)
      this.watching.delete(role)
      return Promise.resolve(true)
    }
    this.held.get(role)?.release()
    return new Promise((resolve) => {
      let release!: () => void
      const holding = new Promise<void>((r) => (release = r))
      const entry = { release }
      this.locks
        .request(this.holderLock(role), steal ? { steal: true } : { ifAvailable: true }, (lock) => {
          if (!lock) return resolve(false)
          this.held.set(role, entry)
          resolve(true)
          return holding
        })
        .catch(() => {
          // Stolen by a newer holder (this tab was hung): its renewal will be refused, and it demotes.
          if (this.held.get(role) === entry) this.held.delete(role)
          resolve(false)
        })
    })
  }

  private releaseHeld(role: string): void {
    this.held.get(role)?.release()
    this.held.delete(role)
  }

  /** Runs `fn` under the table's lock; a lock held longer than `tableLockTimeoutMs` (a frozen tab) is stolen. */
  private async table<T>(fn: () => T | Promise<T>): Promise<T> {
    const name = `understudy-lease:${this.name}:table`
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), this.tableLockTimeoutMs)
    try {
      return (await this.locks.request(name, { mode: 'exclusive', signal: abort.signal }, () => fn())) as T
    } catch (err) {
      if ((err as Error).name !== 'AbortError' || !abort.signal.aborted) throw err
      return (await this.locks.request(name, { mode: 'exclusive', steal: true }, () => fn())) as T
    } finally {
      clearTimeout(timer)
    }
  }
}


export interface WebWorkerElectionOptions {
  /**
   * Starts a module worker that calls `serveWebLocksElection()` from `understudy-ha/adapters/web-locks/worker`.
   * With a bundler: a file `election-worker.js` containing
   * `import { serveWebLocksElection } from 'understudy-ha/adapters/web-locks/worker'; serveWebLocksElection()`, started with
   * `() => new Worker(new URL('./election-worker.js', import.meta.url), { type: 'module' })`.
   */
  worker: () => Worker
  /** The lease name (default: the group). */
  lease?: string
  /** A main thread silent for this long is taken to be hung (default: T). */
  mainThreadTimeoutMs?: number
}

/**
 * Election for a page, run in a Web Worker over the Web Locks lease: a
 * background tab's throttled timers cannot starve its heartbeat, and a page
 * whose main thread hangs stops renewing and steps down.
 */
export function webWorkerElection(options: WebWorkerElectionOptions): ElectionFactory {
  return (uuid, role, heartbeat, events) =>
    remoteElection(
      () => {
        const w = options.worker()
        return { endpoint: w as unknown as ElectionWorker['endpoint'], terminate: () => w.terminate() }
      },
      { lease: options.lease ?? role },
      options.mainThreadTimeoutMs,
    )(uuid, role, heartbeat, events)
}
