/**
 * Checkpoint storage in IndexedDB (browsers, workers), built on `idb`: one
 * database per group, keys stored as IndexedDB array keys (so a prefix is a
 * key range), every request's error and abort handled in one place, the
 * connection reopened when the browser drops it (it does so to background
 * tabs), and a `StorageUnavailableError` when the browser refuses storage
 * (private mode, quota), so the app can carry on with replication alone.
 */
import { openDB, type IDBPDatabase, type IDBPObjectStore } from 'idb'
import { ClosedError, StorageUnavailableError, checkKey, type CheckpointStore, type StoreEntry, type StoreKey } from '../src/index.js'

const STORE = 'entries'
type Store<M extends IDBTransactionMode> = IDBPObjectStore<unknown, ['entries'], 'entries', M>

export interface IndexedDbOptions {
  /** Database name (default `understudy-<group>`). */
  database?: string
}

/** A checkpoint store for `group` in IndexedDB. */
export function indexedDbCheckpoints(group: string, options: IndexedDbOptions = {}): IndexedDbCheckpointStore {
  return new IndexedDbCheckpointStore(options.database ?? `understudy-${group}`)
}

/** The range of every array key that starts with `prefix`: an array element sorts above any string. */
function prefixRange(prefix: string[]): IDBKeyRange {
  return IDBKeyRange.bound(prefix, [...prefix, []])
}

export class IndexedDbCheckpointStore implements CheckpointStore {
  private db: Promise<IDBPDatabase> | undefined
  private closed = false

  constructor(readonly database: string) {}

  /** The open database, reopened if the browser dropped the connection. */
  private open(what: string): Promise<IDBPDatabase> {
    if (this.closed) return Promise.reject(new ClosedError(`checkpoint store ${what}`))
    // Through a promise: `indexedDB.open` itself may throw (a denied origin), not only reject.
    this.db ??= Promise.resolve().then(() => openDB(this.database, 1, {
      upgrade: (db) => void db.createObjectStore(STORE),
      // The browser closed the connection (storage pressure, a background tab): open again on next use.
      terminated: () => (this.db = undefined),
      // Another tab wants a newer version: step aside rather than block it.
      blocking: () => {
        void this.db?.then((d) => d.close())
        this.db = undefined
      },
    })).catch((err: unknown) => {
      this.db = undefined
      throw new StorageUnavailableError(`opening IndexedDB "${this.database}"`, { cause: err })
    })
    return this.db
  }

  /**
   * Runs one transaction; its errors and aborts (quota, deletion) surface
   * here, typed. A connection the browser closed under us is reopened and the
   * transaction tried once more.
   */
  private async tx<T, M extends IDBTransactionMode>(what: string, mode: M, fn: (store: Store<M>) => Promise<T>, retry = true): Promise<T> {
    const db = await this.open(what)
    try {
      const tx = db.transaction(STORE, mode)
      const [result] = await Promise.all([fn(tx.store as unknown as Store<M>), tx.done])
      return result
    } catch (err) {
      const name = (err as { name?: string }).name
      if (name === 'InvalidStateError') {
        this.db = undefined // the connection is gone
        if (retry && !this.closed) return this.tx(what, mode, fn, false)
      }
      if (name === 'QuotaExceededError' || name === 'InvalidStateError' || name === 'UnknownError' || name === 'AbortError')
        throw new StorageUnavailableError(`${what} in IndexedDB "${this.database}"`, { cause: err })
      throw err
    }
  }

  async load(key: StoreKey): Promise<Uint8Array | undefined> {
    const k = checkKey(key, 'load')
    const v = (await this.tx('load', 'readonly', (s) => s.get(k))) as Uint8Array | undefined
    return v && new Uint8Array(v)
  }

  async save(key: StoreKey, value: Uint8Array): Promise<void> {
    const k = checkKey(key, 'save')
    const copy = new Uint8Array(value)
    await this.tx('save', 'readwrite', (s) => s.put(copy, k))
  }

  async remove(key: StoreKey): Promise<void> {
    const k = checkKey(key, 'remove')
    await this.tx('remove', 'readwrite', (s) => s.delete(k))
  }

  async loadRange(prefix: StoreKey): Promise<StoreEntry[]> {
    const range = prefixRange(checkKey(prefix, 'loadRange', true))
    return this.tx('loadRange', 'readonly', async (s) => {
      const [keys, values] = await Promise.all([s.getAllKeys(range), s.getAll(range)])
      return keys.map((k, i) => ({ key: [...(k as string[])], value: new Uint8Array(values[i] as Uint8Array) }))
    })
  }

  async removeRange(prefix: StoreKey): Promise<void> {
    const range = prefixRange(checkKey(prefix, 'removeRange', true))
    await this.tx('removeRange', 'readwrite', (s) => s.delete(range))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const db = this.db
    this.db = undefined
    if (db) (await db.catch(() => undefined))?.close()
  }
}
