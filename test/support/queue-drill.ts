/**
 * The stopped-standby drill, shared by test/queue-bound.test.ts and the
 * `queue` benchmark: an active and a standby in their own processes
 * (test/e2e/queue-node.ts), TCP on 127.0.0.1.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { QueueNodeConfig } from '../e2e/queue-node.js'

export { freePort } from './ha-process.js'

const NODE = new URL('../e2e/queue-node.ts', import.meta.url).pathname
/** Every process the drill started (kill them when done). */
export const children: ChildProcess[] = []

export function spawn(config: QueueNodeConfig): { child: ChildProcess; next: (pred: (m: Record<string, unknown>) => boolean, ms: number) => Promise<Record<string, unknown>> } {
  const child = fork(NODE, [JSON.stringify(config)], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const seen: Record<string, unknown>[] = []
  child.on('message', (m: Record<string, unknown>) => seen.push(m))
  const next = async (pred: (m: Record<string, unknown>) => boolean, ms: number) => {
    const end = Date.now() + ms
    for (;;) {
      const err = seen.find((m) => m.error)
      if (err) throw new Error(`${config.role}: ${String(err.error)}`)
      const i = seen.findIndex(pred)
      if (i >= 0) return seen.splice(i, 1)[0] as Record<string, unknown>
      if (Date.now() > end) throw new Error(`${config.role}: nothing after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  return { child, next }
}

