/**
 * A lease store in a file, for the nodes of one host (Node). The heartbeat
 * table is a small JSON file; every operation takes an exclusive lock file
 * (created with O_EXCL, broken when older than `lockStaleMs`), reads the
 * table, decides with the same rules as every store, and writes it back
 * atomically: temp file, fsync, rename, fsync the directory. The store's clock
 * is the host's wall clock, shared by every process on it.
 */
import { open, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { asLeaseRow, decideHeartbeat, type Clock, type LeaseRow, type LeaseStore } from '../src/index.js'

export interface FileLeaseOptions {
  /** A lock older than this is taken to belong to a crashed process and broken (default 2000 ms). */
  lockStaleMs?: number
  /** How long to keep trying for the lock before failing the operation (default 1000 ms). */
  lockWaitMs?: number
  /** The table's clock (default: the wall clock, which every process on the host shares). For tests. */
  clock?: Pick<Clock, 'now'>
}

interface Table {
  rows: Record<string, LeaseRow>
  released: Record<string, number>
}

/** A lease store kept in the file at `path` (created when missing). */
export function fileLease(path: string, options: FileLeaseOptions = {}): FileLeaseStore {
  return new FileLeaseStore(path, options)
}

export class FileLeaseStore implements LeaseStore {
  private readonly lock: string
  private readonly staleMs: number
  private readonly waitMs: number
  private readonly clock: Pick<Clock, 'now'>

  constructor(
    readonly path: string,
    options: FileLeaseOptions = {},
  ) {
    this.lock = `${path}.lock`
    this.staleMs = options.lockStaleMs ?? 2000
    this.waitMs = options.lockWaitMs ?? 1000
    this.clock = options.clock ?? { now: () => Date.now() }
  }

  now(): number {
    return this.clock.now()
  }

  async read(role: string): Promise<LeaseRow | undefined> {
    return (await this.load()).rows[role]
  }

  updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, timeoutMs: number): Promise<LeaseRow | undefined> {
    return this.locked(async (t) => {
      const next = decideHeartbeat(t.rows[role], uuid, seen, this.now(), timeoutMs, t.released[role])
      if (next) t.rows[role] = next
      return [next, !!next]
    })
  }

  async getPrimary(role: string, timeoutMs: number): Promise<string | undefined> {
    const r = (await this.load()).rows[role]
    return r && this.now() - r.lastSeen <= timeoutMs ? r.holder : undefined
  }

  release(uuid: string, role: string): Promise<void> {
    return this.locked(async (t) => {
      const r = t.rows[role]
      if (r?.holder !== uuid) return [undefined, false]
      t.released[role] = r.epoch
      delete t.rows[role]
      return [undefined, true]
    })
  }

  clear(): Promise<void> {
    return this.locked(async (t) => {
      t.rows = Object.create(null) as Table['rows']
      return [undefined, true]
    })
  }

  private async load(): Promise<Table> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rows: Object.create(null), released: Object.create(null) }
      throw err
    }
    const raw = JSON.parse(text) as Partial<Table>
    // Rows are re-read field by field into null-prototype maps: the file is data, not code.
    const rows = Object.create(null) as Table['rows']
    const released = Object.create(null) as Table['released']
    for (const [role, r] of Object.entries(raw.rows ?? {})) {
      const row = asLeaseRow(r)
      if (row) rows[role] = row
    }
    for (const [role, e] of Object.entries(raw.released ?? {})) if (Number.isSafeInteger(e)) released[role] = e
    return { rows, released }
  }

  /** Runs `fn` on the table under the lock; writes the table back when `fn` says it changed. */
  private async locked<T>(fn: (t: Table) => Promise<[T, boolean]>): Promise<T> {
    await this.acquire()
    try {
      const table = await this.load()
      const [result, changed] = await fn(table)
      if (changed) await this.save(table)
      return result
    } finally {
      await rm(this.lock, { force: true })
    }
  }

  private async acquire(): Promise<void> {
    const deadline = Date.now() + this.waitMs
    for (let attempt = 0; ; attempt++) {
      try {
        const h = await open(this.lock, 'wx')
        await h.writeFile(`${process.pid} ${Date.now()}`)
        await h.close()
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      try {
        const s = await stat(this.lock)
        if (Date.now() - s.mtimeMs > this.staleMs) await rm(this.lock, { force: true })
      } catch {
        /* gone already: try again */
      }
      if (Date.now() > deadline) throw new Error(`fileLease: could not lock ${this.path} within ${this.waitMs} ms`)
      await new Promise((r) => setTimeout(r, Math.min(20, 1 + attempt)))
    }
  }

  private async save(t: Table): Promise<void> {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`)
    const h = await open(tmp, 'w')
    try {
      await h.writeFile(JSON.stringify(t))
      await h.sync()
    } finally {
      await h.close()
    }
    await rename(tmp, this.path)
    const d = await open(dirname(this.path), 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  }
}
