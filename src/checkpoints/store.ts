import { ClosedError, ConfigError } from '../errors.js'

/** A checkpoint key: path-like parts, so prefixes select ranges (`['orders', 'log']`). */
export type StoreKey = readonly string[]

/** One stored entry. */
export interface StoreEntry {
  key: string[]
  value: Uint8Array
}

/**
 * Durable bytes by key, the storage under checkpoints. Small on purpose (the
 * shape of automerge-repo's storage adapters); every implementation passes the
 * shared contract suite (`test/contract/checkpoint-store.ts`).
 */
export interface CheckpointStore {
  /** The bytes saved under `key`, or `undefined`. */
  load(key: StoreKey): Promise<Uint8Array | undefined>
  /** Saves `value` under `key`, replacing what was there; durable once it resolves. Never leaves a half-written value. */
  save(key: StoreKey, value: Uint8Array): Promise<void>
  /** Removes `key` (nothing happens if it is absent). */
  remove(key: StoreKey): Promise<void>
  /** Every entry whose key starts with `prefix` (the key itself included), in key order. */
  loadRange(prefix: StoreKey): Promise<StoreEntry[]>
  /** Removes every entry whose key starts with `prefix`. */
  removeRange(prefix: StoreKey): Promise<void>
  /** Waits for what is in flight and releases every resource; later calls throw `ClosedError`. */
  close(): Promise<void>
  /**
   * Optional: a faster CRC-32 (IEEE) of `bytes`, continuing from `crc`, that
   * this store's platform offers (the Node store uses zlib's). It must give
   * the same results as the portable `crc32`.
   */
  checksum?(bytes: Uint8Array, crc?: number): number
}

/** Throws {@link ConfigError} unless `key` is a non-empty array of strings (or, for a prefix, possibly empty). */
export function checkKey(key: StoreKey, where: string, prefix = false): string[] {
  if (!Array.isArray(key) || (!prefix && key.length === 0) || key.some((p) => typeof p !== 'string'))
    throw new ConfigError(`${where}: a checkpoint key is a ${prefix ? '' : 'non-empty '}array of strings, got ${JSON.stringify(key)}`)
  return [...key]
}

/** Orders keys part by part (`['a']` < `['a', 'b']` < `['b']`). */
export function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as string
    const y = b[i] as string
    if (x !== y) return x < y ? -1 : 1
  }
  return a.length - b.length
}

/** True when `key` starts with every part of `prefix`. */
export function hasPrefix(key: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= key.length && prefix.every((p, i) => key[i] === p)
}

/** Checkpoint storage in memory: for tests, and for nodes that only want replication. Values are copied in and out. */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly entries = new Map<string, StoreEntry>()
  private closed = false

  private id(key: readonly string[]): string {
    return JSON.stringify(key)
  }

  private open(what: string): void {
    if (this.closed) throw new ClosedError(`checkpoint store ${what}`)
  }

  async load(key: StoreKey): Promise<Uint8Array | undefined> {
    this.open('load')
    const e = this.entries.get(this.id(checkKey(key, 'load')))
    return e && e.value.slice()
  }

  async save(key: StoreKey, value: Uint8Array): Promise<void> {
    this.open('save')
    const k = checkKey(key, 'save')
    this.entries.set(this.id(k), { key: k, value: new Uint8Array(value) })
  }

  async remove(key: StoreKey): Promise<void> {
    this.open('remove')
    this.entries.delete(this.id(checkKey(key, 'remove')))
  }

  async loadRange(prefix: StoreKey): Promise<StoreEntry[]> {
    this.open('loadRange')
    const p = checkKey(prefix, 'loadRange', true)
    return [...this.entries.values()]
      .filter((e) => hasPrefix(e.key, p))
      .sort((a, b) => compareKeys(a.key, b.key))
      .map((e) => ({ key: [...e.key], value: e.value.slice() }))
  }

  async removeRange(prefix: StoreKey): Promise<void> {
    this.open('removeRange')
    const p = checkKey(prefix, 'removeRange', true)
    for (const [id, e] of this.entries) if (hasPrefix(e.key, p)) this.entries.delete(id)
  }

  async close(): Promise<void> {
    this.closed = true
  }
}
