/**
 * The classic 1+1 counter, on the sections API: while this node is the
 * active, it reads the count from a checkpoint section and writes count + 1
 * every `everyMs`. When the active dies, the standby is elected, reads the
 * section — which holds every value the dead active wrote — and continues:
 * no reset, no gap. Runs anywhere (Node, a tab, a worker): the caller picks
 * the transport, the lease and the store.
 */
import { realClock, type Clock, type Understudy } from 'understudy-ha'

export interface CounterOptions {
  /** How often the active counts (default 1000 ms). */
  everyMs?: number
  /** Time source (default: the real clock); tests pass a VirtualClock. */
  clock?: Clock
  /** Told of each value this node wrote, once it is safe per the checkpoint's mode. */
  onCount?: (count: number) => void
  /** Told when this node becomes the active, with the count it found in the section. */
  onTakeOver?: (found: number) => void
  /** Application changes to make on each count, on the active: they commit in the same batch as the count. */
  work?: (count: number) => void
}

const SECTION = 'count'

/** Decodes the section's 4 bytes (big-endian). */
export function readCount(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
}

function encode(count: number): Uint8Array {
  const data = new Uint8Array(4)
  new DataView(data.buffer).setUint32(0, count)
  return data
}

/** Starts counting on `ha` whenever it is the active; returns a function that stops it. */
export function startCounter(ha: Understudy, options: CounterOptions = {}): () => void {
  const clock = options.clock ?? realClock
  const everyMs = options.everyMs ?? 1000
  // 'all-replicas': a write resolves only once every replica holds it (and their checkpoint stores, when they keep one).
  const checkpoint = ha.checkpoint('counter', { maxSections: 1, maxSectionSize: 4, mode: 'all-replicas' })
  let timer: unknown
  let stopped = false
  let wasActive = false
  const tick = async () => {
    if (stopped || ha.role === 'stopped') return
    if (ha.role === 'active') {
      const has = checkpoint.list().includes(SECTION)
      const found = has ? readCount(checkpoint.read(SECTION)) : 0
      if (!wasActive) options.onTakeOver?.(found)
      wasActive = true
      try {
        options.work?.(found + 1)
        await (has ? checkpoint.overwrite(SECTION, encode(found + 1)) : checkpoint.create(SECTION, encode(found + 1)))
        options.onCount?.(found + 1)
      } catch {
        // Deposed mid-write (NotActiveError): the new active carries on from what reached the replicas.
      }
    } else wasActive = false
    if (!stopped) timer = clock.setTimeout(tick, everyMs)
  }
  timer = clock.setTimeout(tick, everyMs)
  return () => {
    stopped = true
    clock.clearTimeout(timer)
  }
}
