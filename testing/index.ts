/**
 * `understudy-ha/testing`: what an adapter author needs to prove an adapter
 * right — the contract suites every built-in adapter passes, and the seeded,
 * deterministic in-memory network and clock the project's own tests use.
 *
 * Each suite is one call inside a vitest test file (vitest is an optional peer
 * dependency, needed only for this entry):
 *
 * ```ts
 * import { runTransportContract, runLeaseStoreContract, runCheckpointStoreContract } from 'understudy-ha/testing'
 *
 * runTransportContract('my-transport', async () => ({ a: myTransport('a'), b: myTransport('b'), kill, restart }))
 * runLeaseStoreContract('my-lease', (clock) => myLeaseStore({ clock }))
 * runCheckpointStoreContract('my-store', () => myCheckpointStore(freshPlace()))
 * ```
 *
 * @module
 */
export { runTransportContract, Recorder, type ContractPair } from './transport.js'
export { runLeaseStoreContract } from './lease-store.js'
export { runCheckpointStoreContract } from './checkpoint-store.js'
export { MemoryNetwork, MemoryTransport, memoryPair, type MemoryNetworkOptions, type Envelope } from '../adapters/memory.js'
export { seededRandom, VirtualClock, type Random, type Clock } from '../src/index.js'
