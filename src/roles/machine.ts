/**
 * A node's role as a state machine. Every role change goes through
 * {@link nextRole}, so this table is the whole story of who may become what:
 *
 * | from \ event | elected | promoted | quiesce | resume | handedOver | deposed | stop |
 * | --- | --- | --- | --- | --- | --- | --- | --- |
 * | standby   | active | active | · | · | · | · | stopped |
 * | active    | · | · | quiescing | · | · | standby | stopped |
 * | quiescing | · | · | · | active | standby | standby | stopped |
 * | stopped   | · | · | · | · | · | · | · |
 *
 * (`·`: the event is ignored in that role.) Events: `elected` — the lease
 * elected this node; `promoted` — `promote()`, a start as active, or a
 * handover's target without a lease; `quiesce` — `handover()` began (writes
 * stop); `resume` — the target did not catch up in time; `handedOver` — it did,
 * and this node steps down; `deposed` — the lease was lost, or an active of a
 * higher epoch was heard; `stop` — `close()` or `abort()`.
 */
import type { RoleName } from '../codec/frames.js'

export type RoleEvent = 'elected' | 'promoted' | 'quiesce' | 'resume' | 'handedOver' | 'deposed' | 'stop'

export const ROLE_TRANSITIONS: Readonly<Record<RoleName, Readonly<Partial<Record<RoleEvent, RoleName>>>>> = {
  standby: { elected: 'active', promoted: 'active', stop: 'stopped' },
  active: { quiesce: 'quiescing', deposed: 'standby', stop: 'stopped' },
  quiescing: { resume: 'active', handedOver: 'standby', deposed: 'standby', stop: 'stopped' },
  stopped: {},
}

/** The role `event` leads to from `role`, or undefined when the event is ignored there. */
export function nextRole(role: RoleName, event: RoleEvent): RoleName | undefined {
  return ROLE_TRANSITIONS[role][event]
}
