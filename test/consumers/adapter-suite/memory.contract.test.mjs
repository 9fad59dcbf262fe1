// What a third party's adapter package does: one call per suite, from the published `understudy-ha/testing`.
import { MemoryCheckpointStore, MemoryLeaseStore } from 'understudy-ha'
import { MemoryNetwork, runCheckpointStoreContract, runLeaseStoreContract, runTransportContract, seededRandom } from 'understudy-ha/testing'

runTransportContract('memory, from the tarball', async () => {
  const net = new MemoryNetwork({ random: seededRandom(1) })
  return { a: net.join('a'), b: net.join('b'), kill: (t) => net.kill(t.id), restart: (t) => net.join(t.id) }
})

const tables = new WeakMap()
runLeaseStoreContract('memory, from the tarball', (clock) => {
  if (!tables.has(clock)) tables.set(clock, new MemoryLeaseStore(clock))
  return tables.get(clock)
})

runCheckpointStoreContract('memory, from the tarball', () => new MemoryCheckpointStore())
