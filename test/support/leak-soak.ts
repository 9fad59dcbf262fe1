/**
 * The leak soak, run in its own process with --expose-gc: rounds of heavy
 * churn (a replicated pair, objects built and detached), each ending with
 * leaks() and collect(); prints the table size and the heap after GC per round.
 */
import { Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'

const ROUNDS = 30
const PER_ROUND = 3000
const gc = (globalThis as { gc?: () => void }).gc as () => void

const [ta, tb] = memoryPair()
const active = await Understudy.start({ group: 'soak', transport: ta, role: 'active' })
const standby = await Understudy.start({ group: 'soak', transport: tb })
const root = active.register('app', { current: [] as object[], index: new Map<string, object>() })
standby.register('app', {})
await active.commit()

const objects: number[] = []
const heapMB: number[] = []
const leaksBeforeCollect: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  // Build a new generation: records with shared sub-objects, a cycle and map entries...
  const shared = { round: r }
  const next: object[] = []
  for (let i = 0; i < PER_ROUND; i++) {
    const rec: { i: number; shared: object; tags: string[]; self?: object } = { i, shared, tags: [`t${i % 7}`] }
    rec.self = rec
    next.push(rec)
    if (i % 10 === 0) root.index.set(`k${i}`, rec)
    if (i % 500 === 0) await active.commit()
  }
  // ...then replace the previous one: everything it held is now unreachable.
  root.current = next
  await active.commit()
  leaksBeforeCollect.push(r === 0 ? 1 : active.leaks().length)
  await active.collect()
  gc()
  gc()
  objects.push(standby.stats().objects)
  heapMB.push(process.memoryUsage().heapUsed / 2 ** 20)
}
await active.close()
await standby.close()
console.log(JSON.stringify({ rounds: ROUNDS, objects, heapMB: heapMB.map((h) => Math.round(h * 10) / 10), leaksBeforeCollect }))
