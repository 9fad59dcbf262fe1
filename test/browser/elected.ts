/**
 * A browser page running one elected node: BroadcastChannel transport and a
 * Web Locks lease, driven by the test through `window.electedTest`.
 */
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { webLocksLease } from 'understudy-ha/adapters/web-locks'

let ha: Understudy | undefined
let root: { todos: string[] } | undefined
const roles: { role: string; epoch: number; at: number }[] = []
const errors: string[] = []

const api = {
  async start(channel: string, lease: string, id: string, intervalMs = 50, timeoutMs = 200): Promise<void> {
    ha = await Understudy.start({
      group: 'browser',
      transport: broadcastChannel(channel, { id }),
      lease: webLocksLease(lease),
      heartbeat: { intervalMs, timeoutMs },
    })
    ha.on('role', (e) => roles.push({ role: e.role, epoch: e.epoch, at: Date.now() }))
    ha.on('error', (e) => errors.push(String(e.error)))
    root = ha.register('app', { todos: [] as string[] })
  },
  async write(n: number): Promise<number> {
    for (let i = 0; i < n; i++) {
      ;(root as { todos: string[] }).todos.push(`todo ${i}`)
      await (ha as Understudy).commit()
    }
    return (root as { todos: string[] }).todos.length
  },
  state() {
    return { role: (ha as Understudy).role, epoch: (ha as Understudy).epoch, todos: [...(root as { todos: string[] }).todos], roles, errors }
  },
}
;(globalThis as unknown as { electedTest: typeof api }).electedTest = api
