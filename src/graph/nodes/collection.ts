/**
 * Map and Set: dirty members and deletions, sent so that insertion order
 * survives. A batch's final order is the members that were there before it
 * and never deleted during it (in their old order), followed by the members
 * inserted during it, in the order of their last insertion. So a change is:
 * every member deleted during the batch, then in-place value updates, then
 * the inserted members in order — and the standby, applying deletes first
 * and sets after, ends with the same order. Only `clear()` sends the whole.
 */
import { Node, at, fail, type Where } from './base.js'
import type { Cell } from '../wire.js'

/** Shared logic of Map and Set nodes: dirty members, deletions, whole resets. */
export abstract class CollectionNode extends Node {
  dirtyKeys: Set<unknown> | null = null
  deleted: Set<unknown> | null = null
  /** Members inserted during this batch, in the order of their last insertion. */
  inserted: Set<unknown> | null = null
  reset = false

  get(t: Map<unknown, unknown>, key: string | symbol): unknown {
    if (key === 'size') return t.size
    const m = this.methods().get(key)
    if (m) return m
    return Reflect.get(t, key, t)
  }

  protected abstract methods(): Map<string | symbol, unknown>

  markKey(k: unknown): void {
    if (this.id < 0) return
    ;(this.dirtyKeys ??= new Set()).add(k)
    this.touch()
  }

  markDeleted(k: unknown): void {
    if (this.id < 0) return
    ;(this.deleted ??= new Set()).add(k)
    this.inserted?.delete(k)
    this.markKey(k)
  }

  markInserted(k: unknown): void {
    if (this.id < 0) return
    const s = (this.inserted ??= new Set())
    s.delete(k)
    s.add(k)
    this.markKey(k)
  }

  markReset(): void {
    if (this.id < 0) return
    this.reset = true
    this.touch()
  }

  clearChanges(): void {
    this.dirtyKeys = null
    this.deleted = null
    this.inserted = null
    this.reset = false
  }

  /** `[2, deletedCount, ...deleted, ...rest]`: the ordered change, `rest` built by `item` for updated, then inserted, members. */
  protected ordered(has: (k: unknown) => boolean, cell: (k: unknown) => Cell, item: (k: unknown, out: unknown[]) => void): unknown[] {
    const deleted = this.deleted ? [...this.deleted] : []
    const out: unknown[] = [2, deleted.length]
    for (const k of deleted) out.push(cell(k))
    const inserted = this.inserted
    if (this.dirtyKeys) for (const k of this.dirtyKeys) if (has(k) && !inserted?.has(k)) item(k, out)
    if (inserted) for (const k of inserted) if (has(k)) item(k, out)
    return out
  }

  /** Checks an ordered change: a count, that many member cells, then `rest` checked by `item`. */
  protected checkOrdered(a: unknown[], where: Where, width: number): void {
    const n = a[1]
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || 2 + n > a.length) fail(at(where, 1), 'a deleted count that fits the change is expected')
    for (let i = 2; i < 2 + (n as number); i++) this.graph.checkCell(a[i], false, where, i)
    if ((a.length - 2 - (n as number)) % width) fail(where(), `the members after the deleted ones come ${width === 2 ? 'as key/value pairs' : 'one cell each'}`)
    for (let i = 2 + (n as number); i < a.length; i++) this.graph.checkCell(a[i], false, where, i)
  }
}
