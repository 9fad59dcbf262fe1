/**
 * A node whose election runs in another thread (`remoteElection`) hands over,
 * then the new active crashes. The old active holds every acknowledged write
 * and is the in-sync set's only member: it must take the lease over.
 */
import { MessageChannel } from 'node:worker_threads'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { describe, expect, it } from 'vitest'
import { MemoryLeaseStore, Understudy, realClock, remoteElection, seededRandom, serveElection } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

const I = 20
const T = 80
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('remote election after a handover', () => {
  it('the node that handed over still stands for election', async () => {
    const store = new MemoryLeaseStore(realClock)
    const network = new MemoryNetwork({ random: seededRandom(1) })
    // An in-process "worker": the election service on one end of a channel; terminate closes it, as a worker's end would.
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
    const start = (id: string) => Understudy.start({ group: 'g', nodeId: id, transport: network.join(id), election, heartbeat: { intervalMs: I, timeoutMs: T }, resyncRetryMs: 20 })
    const a = await start('a')
    const b = await start('b')
    const until = async (cond: () => boolean, ms: number) => {
      for (let t = 0; t < ms && !cond(); t += 5) await sleep(5)
      return cond()
    }
    expect(await until(() => a.role === 'active' || b.role === 'active', 2000)).toBe(true)
    const [first, second] = a.role === 'active' ? [a, b] : [b, a]
    const s = first.register('s', { n: 0 })
    expect(await until(() => second.stats().seq >= first.stats().seq && second.stats().epoch === first.stats().epoch, 2000)).toBe(true)
    s.n = 1
    await first.commit()
    await first.handover({ timeoutMs: 2000 })
    expect(second.role).toBe('active')
    const t = second.root<{ n: number }>('s')
    expect(t?.n).toBe(1)
    t!.n = 2
    await second.commit()
    // The old active is a standby again, in the new active's in-sync set.
    expect(await until(() => (store as any).rows.get('g')?.isr?.includes(first.incarnation), 2000)).toBe(true)
    // The new active crashes: the old one must take over (it is the in-sync set's only member).
    await second.abort()
    const took = await until(() => first.role === 'active', 30 * T)
    // close() gives the lease up through the election: it must resolve.
    const closed = await Promise.race([first.close().then(() => true), sleep(10 * T).then(() => false)])
    if (!closed) await first.abort()
    expect({ took, closed }).toEqual({ took: true, closed: true })
  }, 20000)
})
