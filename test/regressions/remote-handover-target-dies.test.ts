/**
 * A node whose election runs in another thread (`remoteElection`) hands over,
 * and the target dies before it takes the lease. The worker's "demoted" came
 * after the run had ended and was ignored, so the node stayed `quiescing`
 * with its active session: when its new worker won the lease back, `elected`
 * was ignored too (the node still had an active session), and the group had a
 * lease holder that refused every write, for good. A resign now demotes the
 * node at once, as the in-thread Elector does.
 */
import { describe, expect, it } from 'vitest'
import { T, remoteLab } from './remote-lab.js'

describe('remote election: the target of a handover dies before it takes over', () => {
  it('the node that handed over becomes a standby at once, and active again once the lease lets it', async () => {
    const { start, until } = remoteLab(3)
    const a = await start('a')
    expect(await until(() => a.role === 'active', 2000)).toBe(true)
    const b = await start('b')
    const s = a.register('s', { n: 0 })
    expect(await until(() => a.stats().standbys === 1 && b.stats().seq === a.stats().seq, 2000)).toBe(true)
    s.n = 1
    await a.commit()
    const roles: string[] = []
    a.on('role', (e) => roles.push(e.role))
    // The target goes away, without a word, once the handover has begun: it never takes the lease.
    a.on('role', (e) => void (e.role === 'quiescing' && b.abort()))
    const outcome = a.handover({ to: 'b', timeoutMs: 10 * T }).then(
      () => 'handed over',
      (e: Error) => e.message,
    )
    expect(await until(() => a.role !== 'quiescing', 4 * T)).toBe(true)
    expect(a.role).toBe('standby')
    // Alone now, with every write: it takes the lease again once the row lets it (3·T after the release) and accepts writes.
    expect(await until(() => a.role === 'active', 20 * T)).toBe(true)
    expect(await outcome).toMatch(/no new active was heard/)
    expect(a.root<{ n: number }>('s')?.n).toBe(1)
    expect(roles.slice(0, 3)).toEqual(['quiescing', 'standby', 'active'])
    await a.close()
  }, 20_000)
})
