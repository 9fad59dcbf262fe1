/**
 * The floor for our approach: a bare Proxy dirty tracker + cbor-x. Each
 * object gets a Proxy whose `set` trap assigns and notes (index, key); a batch
 * goes out as `[index, key, value, …]` through cbor-x and is applied to a
 * replica. Flat property sets only: no nesting, arrays, collections or
 * references. The peers' table and the scale table both measure this one.
 */
import { Encoder } from 'cbor-x'

export class BareTracker<T extends object> {
  /** Write through these (made up front, as the tracker's users would hold them). */
  readonly proxies: T[]
  private readonly dirty: (number | string)[] = []
  private readonly enc = new Encoder({ useRecords: false })

  constructor(
    readonly source: T[],
    readonly replica: T[],
  ) {
    const dirty = this.dirty
    this.proxies = source.map(
      (item, i) =>
        new Proxy(item, {
          set(t, k, v) {
            ;(t as Record<string | symbol, unknown>)[k] = v
            dirty.push(i, k as string)
            return true
          },
        }),
    )
  }

  /** Sends the batch: encodes what changed, decodes it and applies it to the replica. Returns the payload's bytes. */
  flush(): number {
    const d = this.dirty
    const out: unknown[] = []
    for (let j = 0; j < d.length; j += 2) out.push(d[j], d[j + 1], (this.source[d[j] as number] as Record<string, unknown>)[d[j + 1] as string])
    d.length = 0
    const frame = this.enc.encode(out)
    const got = this.enc.decode(frame) as unknown[]
    for (let j = 0; j < got.length; j += 3) (this.replica[got[j] as number] as Record<string, unknown>)[got[j + 1] as string] = got[j + 2]
    return frame.length
  }
}
