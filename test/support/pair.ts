import { MemoryNetwork, type MemoryNetworkOptions } from 'understudy-ha/adapters/memory'
import { Understudy, VirtualClock, seededRandom, type UnderstudyOptions } from 'understudy-ha'
import { Point, initialGraph } from './ops.js'

export interface Cluster {
  net: MemoryNetwork
  clock: VirtualClock
  active: Understudy
  standby: Understudy
  errors: Error[]
  close(): Promise<void>
}

/** An active and a standby on one memory network, with a virtual clock; errors are collected, not thrown. */
export async function startPair(
  net: MemoryNetworkOptions = {},
  extra: Partial<UnderstudyOptions> = {},
  seed = 1,
): Promise<Cluster> {
  const clock = new VirtualClock()
  const network = new MemoryNetwork({ random: seededRandom(seed), ...net })
  const errors: Error[] = []
  const base = { group: 'test', clock, resyncRetryMs: 50, ...extra }
  const active = await Understudy.start({ ...base, transport: network.join('active'), role: 'active' })
  const standby = await Understudy.start({ ...base, transport: network.join('standby') })
  for (const ha of [active, standby]) ha.on('error', (e) => errors.push(e.error))
  return {
    net: network,
    clock,
    active,
    standby,
    errors,
    async close() {
      await active.close()
      await standby.close()
    },
  }
}

/** Lets microtasks (batch flushes, auto delivery, promise reactions) run to quiescence. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
}

/** Manual network: delivers queued frames and runs microtasks until quiet (bounded). */
export async function pump(net: MemoryNetwork, rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await settle()
    if (!net.pending) return
    net.deliverAll()
  }
}

/** A pair (with the {@link Point} class) holding the random-ops graph: `root` on the active, `mirror` on the standby. */
export async function startGraphPair(): Promise<{ c: Cluster; root: Record<string, unknown>; mirror: Record<string, unknown> }> {
  const c = await startPair({}, { classes: { Point } })
  const root = c.active.register('app', initialGraph())
  const mirror = c.standby.register('app', {})
  return { c, root, mirror }
}
