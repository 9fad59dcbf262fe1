/**
 * A browser page running one elected node: BroadcastChannel transport and a
 * Web Locks lease, driven by the test through `window.electedTest`.
 */
import { Understudy } from 'understudy-ha'
import { broadcastChannel, type BroadcastChannelOptions } from 'understudy-ha/adapters/broadcast-channel'
import { webLocksLease, webWorkerElection } from 'understudy-ha/adapters/web-locks'

let ha: Understudy | undefined
let root: { todos: string[] } | undefined
const roles: { role: string; epoch: number; at: number }[] = []
const errors: string[] = []
const peers: { peer: string; up: boolean; at: number }[] = []

const api = {
  /** `transport` overrides the channel's timings (by default long: these tests notice a leaving peer by its goodbye). */
  async start(channel: string, lease: string, id: string, intervalMs = 50, timeoutMs = 200, inWorker = false, transport: BroadcastChannelOptions = {}): Promise<void> {
    ha = await Understudy.start({
      group: 'browser',
      transport: broadcastChannel(channel, { id, pingMs: 1000, timeoutMs: 60_000, ...transport }),
      ...(inWorker
        ? { election: webWorkerElection({ lease, worker: () => new Worker('/election-worker/page.js', { type: 'module' }) }) }
        : { lease: webLocksLease(lease) }),
      heartbeat: { intervalMs, timeoutMs },
    })
    ha.on('role', (e) => roles.push({ role: e.role, epoch: e.epoch, at: Date.now() }))
    ha.on('error', (e) => errors.push(String(e.error)))
    ha.on('peer', (e) => peers.push({ peer: e.peer, up: e.up, at: Date.now() }))
    root = ha.register('app', { todos: [] as string[] })
  },
  async write(n: number): Promise<number> {
    for (let i = 0; i < n; i++) {
      ;(root as { todos: string[] }).todos.push(`todo ${i}`)
      await (ha as Understudy).commit()
    }
    return (root as { todos: string[] }).todos.length
  },
  /** Adds `n` todos `<prefix> <i>`, each committed (sync) within `timeoutMs`; says which were acknowledged and which failed. */
  async burst(prefix: string, n: number, timeoutMs: number): Promise<{ acked: string[]; failed: string[] }> {
    const acked: string[] = []
    const failed: string[] = []
    for (let i = 0; i < n; i++) {
      const title = `${prefix} ${i}`
      try {
        ;(root as { todos: string[] }).todos.push(title)
        await (ha as Understudy).commit({ timeoutMs })
        acked.push(title)
      } catch (err) {
        failed.push(`${title}: ${(err as Error).message}`)
      }
    }
    return { acked, failed }
  },
  /** Hands over to the other tab; says when it began (this page's clock) and what it reported, or why it failed. */
  async handover(): Promise<{ startedAt: number; epoch?: number; blackoutMs?: number; error?: string }> {
    const startedAt = Date.now()
    try {
      const r = await (ha as Understudy).handover()
      return { startedAt, epoch: r.epoch, blackoutMs: r.blackoutMs }
    } catch (err) {
      return { startedAt, error: (err as Error).message }
    }
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
    const node = ha as Understudy
    const visibility = typeof document === 'object' ? document.visibilityState : 'visible'
    return { role: node.role, epoch: node.epoch, todos: [...(root as { todos: string[] }).todos], roles, errors, peers, standbys: node.stats().standbys, visibility }
  },
}
;(globalThis as unknown as { electedTest: typeof api }).electedTest = api
