/**
 * A node whose election runs in another thread (`remoteElection`) hands over,
 * then the new active crashes. The old active holds every acknowledged write
 * and is the in-sync set's only member: it must take the lease over.
 */
import { describe, expect, it } from 'vitest'
import { T, remoteLab, sleep } from './remote-lab.js'

describe('remote election after a handover', () => {
  it('the node that handed over still stands for election', async () => {
    const { store, start, until } = remoteLab(1)
    const a = await start('a')
    const b = await start('b')
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
