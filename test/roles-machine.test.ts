/**
 * The role state machine (src/roles/machine.ts): its table, and that a node's
 * role changes, as its `role` events show them, only ever follow the table.
 */
import { describe, expect, it } from 'vitest'
import { ROLE_TRANSITIONS, nextRole, type RoleEvent } from '../src/roles/machine.js'
import type { Role } from '../src/types.js'
import { I, T, lab } from './regressions/lab.js'

const ROLES: Role[] = ['standby', 'active', 'quiescing', 'stopped']
const EVENTS: RoleEvent[] = ['elected', 'promoted', 'quiesce', 'resume', 'handedOver', 'deposed', 'stop']

describe('role state machine', () => {
  it('the table: only a standby becomes active, only an active quiesces, every live role can stop, stopped is final', () => {
    for (const from of ROLES)
      for (const event of EVENTS) {
        const to = nextRole(from, event)
        if (to === 'active') expect(from === 'standby' || (from === 'quiescing' && event === 'resume'), `${from} --${event}--> active`).toBe(true)
        if (to === 'quiescing') expect(from).toBe('active')
        if (event === 'stop') expect(to).toBe(from === 'stopped' ? undefined : 'stopped')
      }
    expect(ROLE_TRANSITIONS.stopped).toEqual({})
  })

  it('every role is reachable from a new node (standby), and every live role can get back to standby', () => {
    const reach = (from: Role) => {
      const seen = new Set<Role>([from])
      for (let grew = true; grew; ) {
        grew = false
        for (const r of [...seen]) for (const e of EVENTS) {
          const to = nextRole(r, e)
          if (to && !seen.has(to)) (seen.add(to), (grew = true))
        }
      }
      return seen
    }
    expect([...reach('standby')].sort()).toEqual([...ROLES].sort())
    for (const r of ['active', 'quiescing'] as Role[]) expect(reach(r).has('standby')).toBe(true)
  })

  it('a node only changes role along the table: elections, handovers back and forth, a crash, a close (role events checked)', async () => {
    const { start, run, clock } = lab(7)
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => start(id)))
    const seen: string[] = []
    const last = new Map(nodes.map((n) => [n, n.role as Role]))
    for (const n of nodes)
      n.on('role', ({ role }) => {
        const from = last.get(n) as Role
        last.set(n, role)
        if (from === role) return
        seen.push(`${from}→${role}`)
        expect(EVENTS.some((e) => nextRole(from, e) === role), `${n.nodeId}: ${from} → ${role} is not in the table`).toBe(true)
      })
    await run(6 * T, () => nodes.some((n) => n.role === 'active'))
    for (const n of nodes) n.register('app', { n: 0 })
    for (let i = 0; i < 6; i++) {
      const active = nodes.find((n) => n.role === 'active')
      expect(active, `an active after step ${i}`).toBeDefined()
      ;(active!.root('app') as { n: number }).n++
      await active!.handover({ timeoutMs: 2000 }).catch(() => undefined)
      await run(4 * T, () => nodes.some((n) => n !== active && n.role === 'active'))
    }
    const active = nodes.find((n) => n.role === 'active') as (typeof nodes)[number]
    await active.abort()
    await run(10 * T, () => nodes.some((n) => n !== active && n.role === 'active'))
    for (const n of nodes) await n.close()
    expect(seen).toContain('active→quiescing')
    expect(seen).toContain('quiescing→standby')
    expect(seen).toContain('standby→active')
    expect(seen.filter((s) => s === 'standby→active').length).toBeGreaterThanOrEqual(6)
    expect(clock.now()).toBeGreaterThan(I)
  })
})
