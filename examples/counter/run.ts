/**
 * `npm run counter`: the 1+1 counter drill, with real processes.
 *
 * 1. Two nodes start (TCP on 127.0.0.1, a file lease); one is elected and counts.
 * 2. The active is killed with SIGKILL; the standby takes over and continues the count.
 * 3. The survivor is killed too; a node started afresh on its checkpoint
 *    directory restores the count from disk and continues again.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { generateGroupKey } from 'understudy-ha'

interface Event {
  id: string
  event: 'started' | 'role' | 'count' | 'takeover'
  role?: string
  count?: number
  found?: number
  restoredSeq?: number
  at: number
}

export interface DrillResult {
  /** Each phase's active, the last count it reported, and what its successor found and wrote first. */
  phases: { active: string; lastCount: number; next: string; found: number; firstCount: number }[]
  /** Every count reported, in order. */
  counts: number[]
}

// Every node of a group holds the same key; the nodes this launcher starts inherit it.
process.env.UNDERSTUDY_KEY ??= generateGroupKey()
const NODE = new URL('./node.ts', import.meta.url).pathname

/** Calls `on` with each line of `stream` that parses as JSON; other lines are ignored. */
export function jsonLines<T>(stream: NodeJS.ReadableStream, on: (event: T) => void): void {
  createInterface({ input: stream }).on('line', (line) => {
    let e: T
    try {
      e = JSON.parse(line) as T
    } catch {
      return
    }
    on(e)
  })
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Runs the drill; `everyMs` is the counting interval, `ticks` how many counts each phase waits for. */
export async function drill(options: { everyMs?: number; ticks?: number; log?: (line: string) => void } = {}): Promise<DrillResult> {
  const everyMs = options.everyMs ?? 1000
  const ticks = options.ticks ?? 3
  const log = options.log ?? (() => undefined)
  const dir = await mkdtemp(join(tmpdir(), 'understudy-counter-'))
  const port = await freePort()
  const events: Event[] = []
  const waiters: { test: (e: Event) => boolean; resolve: (e: Event) => void }[] = []
  const children = new Map<string, ChildProcess>()

  const launch = (id: string, mode: 'listen' | 'connect') => {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE, id, String(port), mode, dir, String(everyMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
    children.set(id, child)
    jsonLines<Event>(child.stdout as NodeJS.ReadableStream, (e) => {
      events.push(e)
      if (e.event === 'count') log(`  ${e.id}: ${e.count}`)
      if (e.event === 'takeover') log(`  ${e.id} is the active; the section holds ${e.found}`)
      if (e.event === 'started' && (e.restoredSeq ?? -1) >= 0) log(`  ${e.id} restored its checkpoint (seq ${e.restoredSeq})`)
      for (const w of [...waiters]) if (w.test(e)) waiters.splice(waiters.indexOf(w), 1), w.resolve(e)
    })
  }
  const next = (test: (e: Event) => boolean, what: string, ms = 30_000) =>
    new Promise<Event>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`counter drill: no ${what} within ${ms} ms`)), ms)
      waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) })
    })
  const countsBy = (id: string, n: number) => {
    let seen = 0
    return next((e) => e.id === id && e.event === 'count' && ++seen >= n, `${n} counts from ${id}`)
  }
  const kill = async (id: string) => {
    const child = children.get(id) as ChildProcess
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await gone
    children.delete(id)
  }

  const phases: DrillResult['phases'] = []
  const lastOf = (id: string) => Math.max(...events.filter((e) => e.id === id && e.event === 'count').map((e) => e.count as number))
  /** Kills the active `id` after `ticks` more counts, starts `restart` (if any), and records what the next active does. */
  const killAndFollow = async (id: string, restart?: () => void) => {
    await countsBy(id, ticks)
    const lastCount = lastOf(id)
    log(`kill -9 ${id} (its last reported count: ${lastCount})`)
    await kill(id)
    const took = next((e) => e.event === 'takeover', 'takeover')
    restart?.()
    const { id: successor, found } = await took
    const firstCount = (await next((e) => e.id === successor && e.event === 'count', 'count')).count as number
    phases.push({ active: id, lastCount, next: successor, found: found as number, firstCount })
    return successor
  }

  try {
    log('two nodes start; one is elected and counts')
    const first = next((e) => e.event === 'takeover', 'active')
    launch('a', 'listen')
    launch('b', 'connect')
    const survivor = await killAndFollow((await first).id)
    log(`both copies lost: kill -9 ${survivor} too, then start it afresh on its checkpoint directory`)
    await killAndFollow(survivor, () => launch(survivor, 'listen'))
    await countsBy(survivor, ticks)
    return { phases, counts: events.filter((e) => e.event === 'count').map((e) => e.count as number) }
  } finally {
    await Promise.all([...children.keys()].map(kill))
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await drill({ log: (line) => console.log(line) })
  for (const p of result.phases) console.log(`${p.active} reported ${p.lastCount} last; ${p.next} found ${p.found} and wrote ${p.firstCount} next.`)
  console.log('no reset, no gap.')
}
