/**
 * Checkpoint storage on the filesystem (Node). Each key is a file: parts are
 * directories, percent-encoded so no part can escape the root or collide (`.`,
 * `..`, `/`, `%` and the `.v` suffix are all encoded). A save writes a temp
 * file, fsyncs it, renames it over the old one and fsyncs the directory, so a
 * crash at any moment leaves either the old value or the new one — never half
 * of one. File operations run at most `concurrency` at a time.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import * as zlib from 'node:zlib'
import { ClosedError, checkKey, compareKeys, type CheckpointStore, type StoreEntry, type StoreKey } from '../src/index.js'

export interface FsStoreOptions {
  /** Most file operations in flight at once (default 16). */
  concurrency?: number
}

/** A checkpoint store under the directory `root` (created when missing). */
export function fsCheckpoints(root: string, options: FsStoreOptions = {}): FsCheckpointStore {
  return new FsCheckpointStore(root, options)
}

const SUFFIX = '.v'
const encodePart = (p: string) => encodeURIComponent(p).replace(/[.*!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) || '%'
const decodePart = (p: string) => (p === '%' ? '' : decodeURIComponent(p))

let tmpCounter = 0

export class FsCheckpointStore implements CheckpointStore {
  private active = 0
  private readonly queue: (() => void)[] = []
  private readonly inFlight = new Set<Promise<unknown>>()
  private closed = false
  private readonly limit: number
  /** Directories known to exist: a save skips its mkdir call for them. */
  private readonly made = new Set<string>()

  constructor(
    readonly root: string,
    options: FsStoreOptions = {},
  ) {
    this.limit = Math.max(1, options.concurrency ?? 16)
  }

  /** zlib's CRC-32 (native, a few times faster than the portable one), where this Node has it. */
  // Declared optional (not `| undefined`), as CheckpointStore has it, so projects with exactOptionalPropertyTypes accept the class.
  readonly checksum?: (bytes: Uint8Array, crc?: number) => number = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32

  private file(key: readonly string[]): string {
    const parts = key.map(encodePart)
    return join(this.root, ...parts.slice(0, -1), `${parts.at(-1)}${SUFFIX}`)
  }

  private dir(prefix: readonly string[]): string {
    return join(this.root, ...prefix.map(encodePart))
  }

  /** Runs `fn` when a slot is free; tracks it so `close()` can wait for it. */
  private run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError(`checkpoint store ${what}`))
    const p = (async () => {
      if (this.active >= this.limit) await new Promise<void>((r) => this.queue.push(r))
      this.active++
      try {
        return await fn()
      } finally {
        this.active--
        this.queue.shift()?.()
      }
    })()
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined)
    return p
  }

  async load(key: StoreKey): Promise<Uint8Array | undefined> {
    const file = this.file(checkKey(key, 'load'))
    return this.run('load', () => this.loadRaw(file))
  }

  async save(key: StoreKey, value: Uint8Array): Promise<void> {
    const file = this.file(checkKey(key, 'save'))
    const bytes = new Uint8Array(value)
    return this.run('save', async () => {
      const dir = dirname(file)
      if (!this.made.has(dir)) {
        await mkdir(dir, { recursive: true })
        this.made.add(dir)
      }
      const tmp = join(dir, `.tmp-${process.pid}-${++tmpCounter}-${Math.random().toString(36).slice(2)}`)
      const h = await open(tmp, 'w')
      try {
        await h.writeFile(bytes)
        await h.sync()
      } finally {
        await h.close()
      }
      await rename(tmp, file)
      const d = await open(dir, 'r')
      try {
        await d.sync()
      } finally {
        await d.close()
      }
    })
  }

  async remove(key: StoreKey): Promise<void> {
    const file = this.file(checkKey(key, 'remove'))
    return this.run('remove', () => rm(file, { force: true }))
  }

  async loadRange(prefix: StoreKey): Promise<StoreEntry[]> {
    const p = checkKey(prefix, 'loadRange', true)
    return this.run('loadRange', async () => {
      const out: StoreEntry[] = []
      if (p.length) {
        const own = await this.loadRaw(this.file(p))
        if (own) out.push({ key: p, value: own })
      }
      await this.walk(this.dir(p), p, out)
      return out.sort((a, b) => compareKeys(a.key, b.key))
    })
  }

  async removeRange(prefix: StoreKey): Promise<void> {
    const p = checkKey(prefix, 'removeRange', true)
    return this.run('removeRange', async () => {
      this.made.clear() // directories may go: the next save makes them again
      if (p.length) await rm(this.file(p), { force: true })
      if (p.length) await rm(this.dir(p), { recursive: true, force: true })
      else for (const name of await this.list(this.root)) await rm(join(this.root, name), { recursive: true, force: true })
    })
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.allSettled([...this.inFlight])
  }

  /** The bytes of `file`, or undefined when it does not exist. */
  private async loadRaw(file: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return []
      throw err
    }
  }

  private async walk(dir: string, prefix: string[], out: StoreEntry[]): Promise<void> {
    for (const name of await this.list(dir)) {
      if (name.startsWith('.tmp-')) continue // an interrupted save: never a value
      const path = join(dir, name)
      if (name.endsWith(SUFFIX)) {
        const value = await this.loadRaw(path)
        if (value) out.push({ key: [...prefix, decodePart(name.slice(0, -SUFFIX.length))], value })
      } else await this.walk(path, [...prefix, decodePart(name)], out)
    }
  }
}

