/**
 * The bench the remote-election regressions share: nodes whose election runs
 * behind `remoteElection`, served in-process over a MessageChannel (terminate
 * closes it, as a worker's end would), one memory lease store on the real
 * clock, I = 20 ms and T = 80 ms.
 */
import { MessageChannel } from 'node:worker_threads'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { MemoryLeaseStore, Understudy, realClock, remoteElection, seededRandom, serveElection } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

export const I = 20
export const T = 80
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function remoteLab(seed: number) {
  const store = new MemoryLeaseStore(realClock)
  const network = new MemoryNetwork({ random: seededRandom(seed) })
  const election = remoteElection(() => {
    const ch = new MessageChannel()
    serveElection(nodeEndpoint(ch.port2), () => store)
    return {
      endpoint: nodeEndpoint(ch.port1),
      terminate: () => {
        ch.port1.close()
        ch.port2.close()
      },
    }
  }, null)
  /** Starts node `id`. */
  const start = (id: string) => Understudy.start({ group: 'g', nodeId: id, transport: network.join(id), election, heartbeat: { intervalMs: I, timeoutMs: T }, resyncRetryMs: 20 })
  /** Polls `cond` every 5 ms for up to `ms`; returns whether it held. */
  const until = async (cond: () => boolean, ms: number) => {
    for (let t = 0; t < ms && !cond(); t += 5) await sleep(5)
    return cond()
  }
  return { store, network, start, until }
}
