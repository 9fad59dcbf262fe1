/**
 * A lease store in files, for the nodes of one host (Node). There is no lock:
 * the heartbeat table is a series of numbered, write-once files next to
 * `path` — `<path>.1`, `<path>.2`, … — and the current table is the newest
 * one. Every change is a compare-and-set on the next number:
 *
 * 1. list the versions and read the newest whole one (version N; the highest
 *    number present is M, which is N unless newer files are damaged);
 * 2. decide with the same rules as every store ({@link decideHeartbeat});
 * 3. write the new table to a private temp file and fsync it;
 * 4. `link()` the temp file to `<path>.<M+1>`, then fsync the directory.
 *
 * `link` creates the name atomically or fails with EEXIST, and the file it
 * exposes is already complete, so a reader never sees half a table. EEXIST
 * means another writer changed the table since step 1: the operation starts
 * again from step 1, re-deciding against the new table (an `updateHeartbeat`
 * whose `seen` no longer matches is then refused, as the contract says).
 *
 * Why a paused writer cannot turn the table back: a process stopped anywhere
 * in steps 2–4 (SIGSTOP, a long GC pause, swap) holds nothing that others wait
 * for, and when it wakes up its `link` to M+1 fails, because whoever went on
 * meanwhile created M+1. A decision can only land on top of the very version
 * it was made from, so versions form one chain in which every change is a
 * legal step from the one before: epochs never go backwards and no epoch is
 * handed to two holders. (The store this replaces took a lock file and broke
 * it when stale; a writer paused while holding it then renamed its outdated
 * table over a newer one.)
 *
 * Old versions are removed after each write: those more than 8 below the
 * one just written, so never the newest, and a reader that finds a listed
 * version gone (removed under it) lists again rather than concluding there is
 * no table. A removed number is free again, so a writer paused for longer than
 * 8 changes could link into it: after linking, a writer that finds a version
 * more than 8 above its own knows it may have done that, and counts the change
 * as lost (its file lies below the newest, which is what everyone reads, and
 * is removed in turn).
 *
 * A damaged version (bit flip, truncation: it does not parse or its fields are
 * invalid) is skipped and the newest whole one below it is used — but the
 * damaged ones may have handed out epochs and leases nobody can read any more,
 * so the fallback is conservative:
 * - the next write still goes above the highest number present, never into a
 *   skipped slot;
 * - each write raises any epoch by at most one, so nothing in the K skipped
 *   versions exceeds the highest epoch E of the version read plus K. The table
 *   takes `floor` = E + K: every epoch handed out afterwards, for any role,
 *   known or not, is above it;
 * - each row is replaced by one held by nobody (`holder: ''`) with epoch
 *   `floor`, last seen when the newest damaged file was written (its mtime,
 *   plus a second for clock granularity): its holder's next renewal is refused,
 *   and nobody takes it over before a lease granted in the damaged versions
 *   has expired. A role with no row is not created before then either.
 * A damaged table therefore costs up to T plus a second of election, never a
 * repeated or lower epoch.
 *
 * The store's clock is the host's wall clock, shared by every process on it.
 * Rows are stored as decided, extra fields included. Epochs never go backwards
 * through `release` or `clear` either: the table remembers the last epoch of a
 * removed row. The table needs one local file system with working `link` and
 * O_EXCL (not NFS).
 */
import { link, open, readdir, readFile, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { LeaseError, asLeaseRow, decideHeartbeat, isExpired, releasedRow, type Clock, type LeaseRow, type LeaseStore } from '../src/index.js'

export interface FileLeaseOptions {
  /** Accepted and ignored: the store no longer takes a lock (see the module comment). Kept so existing configurations compile. */
  lockStaleMs?: number
  /** Accepted and ignored, like `lockStaleMs`. */
  lockWaitMs?: number
  /** The table's clock (default: the wall clock, which every process on the host shares). For tests. */
  clock?: Pick<Clock, 'now'>
  /**
   * For tests: awaited inside every change, after the new table is decided and
   * written to its temp file and before it is linked in — where a paused
   * process would be most dangerous.
   */
  beforeCommit?: () => Promise<void> | void
}

interface Table {
  rows: Record<string, LeaseRow>
  released: Record<string, number>
  /** Every epoch handed out from this table on is above this (set after a damaged version was skipped). */
  floor: number
}

interface Snapshot {
  table: Table
  /** The number the next version must take: one above the highest present. */
  next: number
  /** When the newest version is damaged: until this store-clock time (+ T) nothing new is granted. */
  damagedAt?: number
}

/** Versions kept besides the newest, for reading past a damaged one. */
const KEEP = 8
/** A temp file this old belongs to a writer that died (or is paused far beyond any lease): removed. */
const TMP_STALE_MS = 60_000
/** Margin added to a damaged file's mtime, for the file system's coarser clock. */
const MTIME_SLACK_MS = 1000
/** Gives up an operation that lost this many compare-and-sets in a row (a storm of writers). */
const MAX_ATTEMPTS = 1000

/** A lease store kept in numbered files next to `path` (created when missing). */
export function fileLease(path: string, options: FileLeaseOptions = {}): FileLeaseStore {
  return new FileLeaseStore(path, options)
}

let tmpSeq = 0

export class FileLeaseStore implements LeaseStore {
  private readonly dir: string
  private readonly base: string
  private readonly clock: Pick<Clock, 'now'>
  private readonly beforeCommit: (() => Promise<void> | void) | undefined

  constructor(
    readonly path: string,
    options: FileLeaseOptions = {},
  ) {
    this.dir = dirname(path)
    this.base = basename(path)
    this.clock = options.clock ?? { now: () => Date.now() }
    this.beforeCommit = options.beforeCommit
  }

  now(): number {
    return this.clock.now()
  }

  async read(role: string): Promise<LeaseRow | undefined> {
    return (await this.snapshot()).table.rows[role]
  }

  updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number, isr?: string[]): Promise<LeaseRow | undefined> {
    return this.change((s) => {
      const t = s.table
      const now = this.now()
      const stored = t.rows[role]
      // Behind a damaged version, a role without a row may have been created there: not before its lease would have expired.
      if (!stored && s.damagedAt !== undefined && now - s.damagedAt <= timeoutMs) return [undefined, false]
      const floor = Math.max(t.released[role] ?? 0, t.floor)
      const next = decideHeartbeat(stored, uuid, seen, now, timeoutMs, floor || undefined, isr)
      if (next) t.rows[role] = next
      return [next, !!next]
    })
  }

  async getPrimary(role: string, timeoutMs: number): Promise<string | undefined> {
    const r = (await this.snapshot()).table.rows[role]
    return r && !isExpired(r, this.now(), timeoutMs) ? r.holder : undefined
  }

  release(uuid: string, role: string, isr?: string[]): Promise<void> {
    return this.change((s) => {
      const r = s.table.rows[role]
      if (r?.holder !== uuid) return [undefined, false]
      // The row stays, given up: whoever takes it next still sees the in-sync set.
      s.table.rows[role] = releasedRow(r, isr)
      return [undefined, true]
    })
  }

  clear(): Promise<void> {
    return this.change((s) => {
      for (const role of Object.keys(s.table.rows)) forget(s.table, role)
      return [undefined, true]
    })
  }

  private file(version: number): string {
    return join(this.dir, `${this.base}.${version}`)
  }

  /**
   * Runs `decide` on the current table and, when it says the table changed,
   * links the result in as the next version; when another writer got there
   * first, reads the new table and decides again.
   */
  private async change<T>(decide: (s: Snapshot) => [T, boolean]): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const s = await this.snapshot()
      const [result, changed] = decide(s)
      if (!changed) return result
      if (!(await this.commit(s.next, s.table))) continue
      // A writer paused long enough finds its number free again if it was collected: then versions more than KEEP above it
      // exist (collection only removes numbers more than KEEP below one just written, and never the highest). Its file is not
      // the table (a newer one is), so the change counts as lost and is decided again; the stray file is collected in turn.
      const listed = await this.versions()
      if ((listed.versions[0] ?? s.next) > s.next + KEEP) continue
      await this.collect(s.next, listed)
      return result
    }
    throw new LeaseError(`fileLease: ${this.path} changed under ${MAX_ATTEMPTS} attempts in a row (other writers keep racing this one); the next beat tries again`)
  }

  /** Version numbers present, highest first. */
  private async versions(): Promise<{ versions: number[]; tmps: string[] }> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { versions: [], tmps: [] }
      throw err
    }
    const prefix = `${this.base}.`
    const versions: number[] = []
    const tmps: string[] = []
    for (const n of names) {
      if (n.startsWith(prefix)) {
        const rest = n.slice(prefix.length)
        if (/^[1-9][0-9]{0,14}$/.test(rest)) versions.push(Number(rest))
      } else if (n.startsWith(`.${prefix}`) && n.endsWith('.tmp')) tmps.push(n)
    }
    return { versions: versions.sort((a, b) => b - a), tmps }
  }

  /** The current table: the newest whole version, made conservative when newer ones are damaged (see the module comment). */
  private async snapshot(): Promise<Snapshot> {
    for (;;) {
      const { versions } = await this.versions()
      const top = versions[0]
      if (top === undefined) return { table: emptyTable(), next: 1 }
      let removed = false
      let found: { table: Table; version: number } | undefined
      for (const v of versions) {
        let text: string
        try {
          text = await readFile(this.file(v), 'utf8')
        } catch (err) {
          // Removed as old since we listed: newer versions exist; list again.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            removed = true
            break
          }
          throw err
        }
        const table = parseTable(text)
        if (table) {
          found = { table, version: v }
          break
        }
      }
      if (removed) continue
      if (found?.version === top) return { table: found.table, next: top + 1 }
      let mtime: number
      try {
        mtime = (await stat(this.file(top))).mtimeMs
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      // No whole version at all: count from an empty table at version 0.
      const base = found ?? { table: emptyTable(), version: 0 }
      const damagedAt = Math.ceil(mtime) + MTIME_SLACK_MS
      return { table: behindDamage(base.table, top - base.version, damagedAt), next: top + 1, damagedAt }
    }
  }

  /** Links `t` in as version `version`; false when that version exists already (someone else changed the table first). */
  private async commit(version: number, t: Table): Promise<boolean> {
    const tmp = join(this.dir, `.${this.base}.${process.pid}.${++tmpSeq}.${Math.random().toString(36).slice(2, 10)}.tmp`)
    try {
      const h = await open(tmp, 'wx')
      try {
        await h.writeFile(JSON.stringify(t.floor ? t : { rows: t.rows, released: t.released }))
        await h.sync()
      } finally {
        await h.close()
      }
      await this.beforeCommit?.()
      try {
        await link(tmp, this.file(version))
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') return false
        // Our temp file was collected as stale while we were paused: decide again.
        if (code === 'ENOENT') return false
        throw err
      }
    } finally {
      await rm(tmp, { force: true })
    }
    const d = await open(this.dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
    return true
  }

  /** Removes versions more than KEEP below the one just written (never it, nor anything newer), and stale temp files. */
  private async collect(written: number, { versions, tmps }: { versions: number[]; tmps: string[] }): Promise<void> {
    for (const v of versions) if (v < written - KEEP) await rm(this.file(v), { force: true })
    for (const n of tmps) {
      const f = join(this.dir, n)
      try {
        if (Date.now() - (await stat(f)).mtimeMs > TMP_STALE_MS) await rm(f, { force: true })
      } catch {
        /* gone already */
      }
    }
  }
}

function emptyTable(): Table {
  return { rows: Object.create(null) as Table['rows'], released: Object.create(null) as Table['released'], floor: 0 }
}

/** Removes `role`'s row, remembering its epoch so the next holder still goes higher. */
function forget(t: Table, role: string): void {
  const r = t.rows[role]
  if (!r) return
  t.released[role] = Math.max(t.released[role] ?? 0, r.epoch)
  delete t.rows[role]
}

/** The table as stored, or undefined when it is not whole (does not parse, or a field is invalid). */
function parseTable(text: string): Table | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObject(raw) || !isObject(raw.rows) || !isObject(raw.released)) return undefined
  const floor = raw.floor ?? 0
  if (!Number.isSafeInteger(floor) || (floor as number) < 0) return undefined
  // Rebuilt field by field into null-prototype maps: the file is data, not code.
  const t = emptyTable()
  t.floor = floor as number
  for (const [role, r] of Object.entries(raw.rows)) {
    const row = asLeaseRow(r)
    if (!row) return undefined
    // Extra fields a newer core may add are kept as they were written.
    t.rows[role] = { ...(r as object), ...row }
  }
  for (const [role, e] of Object.entries(raw.released)) {
    if (!Number.isSafeInteger(e)) return undefined
    t.released[role] = e as number
  }
  return t
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The table read from behind `skipped` damaged versions, made safe against
 * whatever they held: no epoch at or below `floor` is handed out again, and no
 * lease is granted until one granted there would have expired.
 */
function behindDamage(t: Table, skipped: number, damagedAt: number): Table {
  let high = t.floor
  for (const r of Object.values(t.rows)) high = Math.max(high, r.epoch)
  for (const e of Object.values(t.released)) high = Math.max(high, e)
  const floor = high + skipped
  const out = emptyTable()
  out.floor = floor
  for (const [role, e] of Object.entries(t.released)) out.released[role] = e
  for (const [role, r] of Object.entries(t.rows)) out.rows[role] = { holder: '', epoch: floor, lastSeen: Math.max(r.lastSeen, damagedAt) }
  return out
}
