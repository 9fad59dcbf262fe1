/**
 * A test/e2e/ha-node.ts process for real-process drills (failover, handovers):
 * its messages kept, and a bounded wait for one that matches.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

const ROOT = new URL('../../', import.meta.url)

/** What an ha-node process reports (see test/e2e/ha-node.ts). */
export type HaMsg = {
  beat?: number
  ready?: boolean
  role?: string
  epoch?: number
  at?: number
  acked?: number
  dump?: number[]
  error?: string
  woke?: boolean
  wrote?: boolean
  refused?: string
  handover?: { startedAt: number; epoch: number; blackoutMs: number }
  handoverError?: string
  writeError?: string
  /** Set by a test once a reply has been used, so the next wait finds the next one. */
  counted?: boolean
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Starts test/e2e/ha-node.ts with `args`. */
export function haNode(args: string[]) {
  const child: ChildProcess = fork(new URL('test/e2e/ha-node.ts', ROOT), args, { execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const seen: HaMsg[] = []
  const waiters = new Set<() => void>()
  child.on('message', (m: HaMsg) => {
    seen.push(m)
    for (const w of [...waiters]) w()
  })
  const until = (pred: (m: HaMsg, i: number) => boolean, what: string, ms = 20_000) =>
    new Promise<HaMsg>((resolve, reject) => {
      const find = () => seen.find(pred)
      const hit = find()
      if (hit) return resolve(hit)
      const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`timed out waiting for ${what}`))), ms)
      const check = () => {
        const m = find()
        if (!m) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(m)
      }
      waiters.add(check)
    })
  return { child, seen, until }
}
