/**
 * The bench the election regressions share: nodes on one seeded memory
 * network and one memory lease store, on a virtual clock, with I = 100 ms and
 * T = 400 ms.
 */
import { expect } from 'vitest'
import { MemoryLeaseStore, Understudy, VirtualClock, seededRandom, type UnderstudyOptions } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'
import type { Transport } from '../../src/transport.js'
import { settle } from '../support/pair.js'

export const I = 100
export const T = 400

export function lab(seed: number) {
  const clock = new VirtualClock()
  const network = new MemoryNetwork({ random: seededRandom(seed) })
  const lease = new MemoryLeaseStore(clock)
  const random = seededRandom(seed + 1000)
  /** Starts node `id` (on the network unless another transport is given). */
  const start = (id: string, extra: Partial<UnderstudyOptions> = {}, transport: Transport = network.join(id)) =>
    Understudy.start({ group: 'g', nodeId: id, transport, lease, heartbeat: { intervalMs: I, timeoutMs: T }, clock, random, resyncRetryMs: 50, ...extra })
  /** Moves virtual time on in 5 ms steps, running microtasks between them, until `until` holds. */
  const run = async (ms: number, until?: () => boolean) => {
    for (let t = 0; t < ms; t += 5) {
      clock.advance(5)
      await settle()
      if (until?.()) return
    }
  }
  return { clock, network, lease, start, run }
}

/**
 * Starts a (elected active) then b (its standby), registers the `app` root on
 * both, and commits `writes` numbers one at a time, each acknowledged before
 * the next. Returns the nodes and the last acknowledged number.
 */
export async function pairWithWrites(
  start: (id: 'a' | 'b') => Promise<Understudy>,
  run: (ms: number, until?: () => boolean) => Promise<void>,
  writes: number,
): Promise<{ a: Understudy; b: Understudy; root: { acked: number[] }; acked: number }> {
  const a = await start('a')
  await run(4 * I, () => a.role === 'active')
  const b = await start('b')
  await run(4 * I)
  expect([a.role, b.role]).toEqual(['active', 'standby'])
  const root = a.register('app', { acked: [] as number[] })
  b.register('app', { acked: [] as number[] })
  let acked = -1
  for (let i = 0; i < writes; i++) {
    root.acked.push(i)
    const p = a.commit().then(() => (acked = i))
    await run(20, () => acked === i)
    await p
  }
  return { a, b, root, acked }
}
