/**
 * A planned handover whose lease release fails (one store blip): the handover
 * rejects, and the group is not left without an active — the old active's
 * elector stands again and renews its own row (before: it stayed stopped, the
 * row named it unreleased for ever, and nobody was active).
 */
import { expect, it } from 'vitest'
import { NotActiveError } from 'understudy-ha'
import { I, T, lab } from './lab.js'

it('a lease release that fails during a handover: the handover rejects and an active stands again', async () => {
  const l = lab(7)
  const release = l.lease.release.bind(l.lease)
  let failOnce = true
  l.lease.release = async (...args: Parameters<typeof release>) => {
    if (failOnce) {
      failOnce = false
      throw new Error('etcd: connection reset (injected)')
    }
    return release(...args)
  }
  const a = await l.start('a')
  await l.run(4 * I, () => a.role === 'active')
  const b = await l.start('b')
  await l.run(4 * I)
  expect([a.role, b.role]).toEqual(['active', 'standby'])
  const root = a.register('app', { n: [] as number[] })
  root.n.push(1)
  await a.commit()
  let err: unknown
  await a.handover({ to: 'b', timeoutMs: 5 * T }).catch((e: unknown) => (err = e))
  expect(err).toBeInstanceOf(NotActiveError)
  expect(String(err)).toMatch(/could not be released/)
  await l.run(3 * T, () => a.role === 'active' || b.role === 'active')
  expect([a.role, b.role]).toContain('active')
  // And it works: the active commits, the other follows.
  const active = a.role === 'active' ? a : b
  const other = active === a ? b : a
  ;(active.root('app') as { n: number[] }).n.push(2)
  await active.commit()
  await l.run(2 * I)
  expect((other.root('app') as { n: number[] }).n).toEqual([1, 2])
})
