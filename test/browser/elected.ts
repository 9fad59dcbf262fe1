/**
 * A browser page running one elected node: BroadcastChannel transport and a
 * Web Locks lease, driven by the test through `window.electedTest`.
 */
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { webLocksLease, webWorkerElection } from 'understudy-ha/adapters/web-locks'

let ha: Understudy | undefined
let root: { todos: string[] } | undefined
const roles: { role: string; epoch: number; at: number }[] = []
const errors: string[] = []

const api = {
  async start(channel: string, lease: string, id: string, intervalMs = 50, timeoutMs = 200, inWorker = false): Promise<void> {
    ha = await Understudy.start({
      group: 'browser',
      transport: broadcastChannel(channel, { id, pingMs: 1000, timeoutMs: 60_000 }),
      ...(inWorker
        ? { election: webWorkerElection({ lease, worker: () => new Worker('/election-worker/page.js', { type: 'module' }) }) }
        : { lease: webLocksLease(lease) }),
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
  /** Blocks this page's main thread, then tries a write: it must be refused or fenced. */
  hang(ms: number): { roleAfter: string; wrote: boolean } {
    const end = Date.now() + ms
    while (Date.now() < end) {
      /* hung */
    }
    let wrote = false
    try {
      ;(root as { todos: string[] }).todos.push('written while deposed')
      wrote = true
    } catch {
      /* refused */
    }
    return { roleAfter: (ha as Understudy).role, wrote }
  },
  state() {
    return { role: (ha as Understudy).role, epoch: (ha as Understudy).epoch, todos: [...(root as { todos: string[] }).todos], roles, errors }
  },
}
;(globalThis as unknown as { electedTest: typeof api }).electedTest = api
