/**
 * The planned handover, from the active's side. Its role steps follow the
 * table in `machine.ts`: `quiesce` (writes stop), then `handedOver` (or, with
 * a lease, `deposed` as it resigns), or `resume` if the target is too slow.
 */
import type { Clock } from '../clock.js'
import { writeHandover } from '../codec/frames.js'
import { NotActiveError } from '../errors.js'
import type { Graph } from '../graph/graph.js'
import type { ActiveSession } from '../replication/active.js'
import type { PeerId } from '../transport.js'
import type { HandoverResult, Role, UnderstudyEvents } from '../types.js'
import type { ElectorLike } from './elector.js'
import { nextRole, type RoleEvent } from './machine.js'

/** A handover waiting to hear the new active: this node's epoch, the target, and what resolves it (with the new epoch). */
export interface HandingOver {
  epoch: number
  to: PeerId
  resolve: (epoch: number) => void
}

/** What the handover needs of the node (the coordinator). */
export interface HandoverHost {
  readonly active: ActiveSession | undefined
  role: Role
  readonly closed: boolean
  readonly elector: ElectorLike | undefined
  /** Set while the handover waits to hear the new active (resolved with its epoch). */
  handingOver: HandingOver | undefined
  setRole(role: Role, announce: boolean): void
  becomeStandby(event: RoleEvent, reason: string): void
  send(frame: Uint8Array, to?: PeerId): void | Promise<void>
  emit<K extends keyof UnderstudyEvents>(event: K, value: UnderstudyEvents[K]): void
}

/**
 * The handover protocol, from the active's side: `quiesce` (writes stop),
 * flush, wait until `to` has applied everything, step down (giving the lease
 * up), tell `to` to take over, and wait to hear it as the new active.
 * `save` starts the checkpoint write a handover asks for, once the last batch is closed.
 */
export async function runHandover(node: HandoverHost, clock: Clock, graph: Graph, to: PeerId, timeoutMs: number, save: () => Promise<void> | undefined): Promise<HandoverResult> {
  const a = node.active as ActiveSession
  const started = clock.now()
  node.setRole(nextRole(node.role, 'quiesce') as Role, false)
  graph.demote('a handover is in progress')
  node.emit('role', { role: 'quiescing', epoch: a.epoch })
  a.flush()
  const seq = a.seq
  const saved = save()
  try {
    await a.primary.waitFor(seq, timeoutMs, to)
  } catch (err) {
    if (node.active === a && !node.closed && nextRole(node.role, 'resume')) {
      node.role = 'active'
      graph.writable = true
      node.emit('role', { role: 'active', epoch: a.epoch })
    }
    throw new NotActiveError(`handover(): ${to} did not catch up within ${timeoutMs} ms; this node stays active (${(err as Error).message})`)
  }
  const heard = new Promise<number>((resolve) => (node.handingOver = { epoch: a.epoch, to, resolve }))
  let timer: unknown
  const late = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new NotActiveError(`handover(): no new active was heard within ${timeoutMs} ms; the group elects one as usual`)), timeoutMs)
  })
  if (node.elector) {
    try {
      await node.elector.resign('handed over')
    } catch (err) {
      // The release did not reach the store: the row is still this node's. The handover fails, and the elector
      // stands again — it renews its own row at its next beat, so the group has an active (this node) at once.
      clock.clearTimeout(timer)
      node.handingOver = undefined
      if (!node.closed) node.elector.start()
      throw new NotActiveError(`handover(): the lease could not be released (${(err as Error).message}); this node keeps its row and stands again`)
    }
    node.elector.start()
  } else node.becomeStandby('handedOver', `this node handed over to ${to}`)
  node.send(writeHandover(a.epoch, seq), to)
  try {
    const epoch = await Promise.race([heard, late])
    const blackoutMs = clock.now() - started
    await saved
    return { to, epoch, seq, blackoutMs }
  } finally {
    clock.clearTimeout(timer)
    node.handingOver = undefined
  }
}

