/**
 * Tracked objects by id.
 *
 * Ids are handed out densely from 1, so while the table is dense it is a
 * plain array indexed by id: one 8-byte slot per object and a single load per
 * lookup (a `Map` costs about 37 bytes per entry and a hash per lookup). Ids
 * are never reused (they are part of the protocol), so a graph that keeps
 * replacing its objects leaves holes; once fewer than a quarter of the slots
 * are live, or an id arrives far beyond the end (a peer's id space need not be
 * dense), the table moves to a `Map` and stays there. Either way the memory
 * is bounded by the live objects, not by every id ever issued.
 *
 * Iteration is in ascending id order in array mode and insertion order in map
 * mode; nothing depends on the order beyond determinism.
 */
const MIN_SPARSE_CHECK = 4096
/** An id more than this beyond the end moves the table to map mode instead of opening a gap. */
const MAX_GAP = 1 << 16

export class IdTable<T> {
  private dense: (T | undefined)[] | undefined = []
  private map: Map<number, T> | undefined
  private live = 0
  /** Inside forEach: the mode must not change under the loop. */
  private iterating = 0

  /** True once the table has moved to map mode. */
  get sparse(): boolean {
    return this.dense === undefined
  }

  get size(): number {
    return this.map ? this.map.size : this.live
  }

  get(id: number): T | undefined {
    const d = this.dense
    return d ? d[id] : (this.map as Map<number, T>).get(id)
  }

  has(id: number): boolean {
    return this.get(id) !== undefined
  }

  /** `id` must be a positive safe integer (callers validate ids from the wire first). */
  set(id: number, value: T): void {
    const d = this.dense
    if (d) {
      if (id < d.length + MAX_GAP) {
        if (d[id] === undefined) this.live++
        d[id] = value
        return
      }
      this.toMap()
    }
    ;(this.map as Map<number, T>).set(id, value)
  }

  delete(id: number): boolean {
    const d = this.dense
    if (!d) return (this.map as Map<number, T>).delete(id)
    if (d[id] === undefined) return false
    d[id] = undefined
    this.live--
    this.checkSparse()
    return true
  }

  /** Calls `fn` for every entry; `fn` may delete the entry it is given. */
  forEach(fn: (value: T, id: number) => void): void {
    const d = this.dense
    if (!d) {
      for (const [id, v] of this.map as Map<number, T>) fn(v, id)
      return
    }
    this.iterating++
    try {
      for (let id = 0; id < d.length; id++) {
        const v = d[id]
        if (v !== undefined) fn(v, id)
      }
    } finally {
      this.iterating--
    }
    this.checkSparse()
  }

  private checkSparse(): void {
    const d = this.dense
    if (d && !this.iterating && d.length > MIN_SPARSE_CHECK && this.live * 4 < d.length) this.toMap()
  }

  private toMap(): void {
    const d = this.dense as (T | undefined)[]
    const m = new Map<number, T>()
    for (let id = 0; id < d.length; id++) {
      const v = d[id]
      if (v !== undefined) m.set(id, v)
    }
    this.map = m
    this.dense = undefined
    this.live = 0
  }
}
