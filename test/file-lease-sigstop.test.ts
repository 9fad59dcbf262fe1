/**
 * Real processes contending for one file lease, with the holder stopped
 * (SIGSTOP) at seeded random moments — often in the middle of a store change —
 * for 0.3–1.5 s and then continued. Three independent groups of processes
 * (3, 3 and 2) run side by side to fit the trials into the time.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { seededRandom } from 'understudy-ha'
import { fileLease } from 'understudy-ha/adapters/file-lease'

const ROOT = new URL('../', import.meta.url)
/** Processes per group: two groups of three (two followers race for every takeover) and one of two. */
const GROUPS = [3, 3, 2]
const TRIALS = 17
/** How long each store change spins between deciding and writing, in the children. */
const BUSY_MS = 10

type Msg = { ready?: boolean; op?: 'start' | 'commit' | 'end'; grant?: { holder: string; epoch: number; lastSeen: number }; at?: number; elected?: number; demoted?: string; error?: string }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Node {
  id: string
  child: ChildProcess
  /** The last op message received: inside a store change unless 'end'. */
  lastOp: Msg['op'] | undefined
  listeners: Set<(m: Msg) => void>
}

interface GroupResult {
  trials: number
  inside: number
  /** Epochs seen by polling the table, in order. */
  polled: number[]
  grants: { holder: string; epoch: number; lastSeen: number; at: number }[]
  errors: string[]
}

const children: ChildProcess[] = []
afterEach(() => {
  for (const c of children.splice(0)) {
    try {
      c.kill('SIGCONT')
      c.kill('SIGKILL')
    } catch {
      /* gone */
    }
  }
})

async function runGroup(g: number, size: number, seed: number): Promise<GroupResult> {
  const path = join(await mkdtemp(join(tmpdir(), `lease-sigstop-${g}-`)), 'lease.json')
  const random = seededRandom(seed)
  const result: GroupResult = { trials: 0, inside: 0, polled: [], grants: [], errors: [] }
  const nodes: Node[] = []
  for (let i = 0; i < size; i++) {
    const id = `g${g}n${i}`
    const child = fork(new URL('test/e2e/lease-racer.ts', ROOT), [path, id, String(BUSY_MS)], {
      execArgv: ['--import', 'tsx'],
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.push(child)
    const node: Node = { id, child, lastOp: undefined, listeners: new Set() }
    child.on('message', (m: Msg) => {
      if (m.op) node.lastOp = m.op
      if (m.grant) result.grants.push({ ...m.grant, at: m.at as number })
      if (m.error) result.errors.push(`${id}: ${m.error}`)
      for (const l of node.listeners) l(m)
    })
    nodes.push(node)
  }
  await Promise.all(nodes.map((n) => new Promise<void>((resolve) => n.listeners.add((m) => m.ready && resolve()))))

  // The table, polled every few ms (a wrong table stays at least until the next beat, 50 ms): its epoch must never go down.
  const monitor = fileLease(path)
  let polling = true
  const poll = (async () => {
    while (polling) {
      try {
        const r = await monitor.read('primary')
        if (r && r.epoch !== result.polled.at(-1)) result.polled.push(r.epoch)
      } catch (err) {
        result.errors.push(`monitor: ${String(err)}`)
      }
      await sleep(5)
    }
  })()

  await sleep(400)
  for (let trial = 0; trial < TRIALS; trial++) {
    const row = await monitor.read('primary')
    const holder = nodes.find((n) => n.id === row?.holder) ?? (nodes[Math.floor(random() * size)] as Node)
    const pauseMs = 300 + Math.floor(random() * 1200)
    if (random() < 0.7) {
      // Stop it the moment it reports it has decided and not yet written (or after 300 ms at the latest).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 300)
        function done() {
          clearTimeout(timer)
          holder.listeners.delete(onMsg)
          holder.child.kill('SIGSTOP')
          resolve()
        }
        function onMsg(m: Msg) {
          if (m.op === 'commit') done()
        }
        holder.listeners.add(onMsg)
      })
    } else {
      await sleep(Math.floor(random() * 100))
      holder.child.kill('SIGSTOP')
    }
    // Messages it sent before it stopped arrive now; nothing comes after.
    await sleep(20)
    if (holder.lastOp !== undefined && holder.lastOp !== 'end') result.inside++
    await sleep(pauseMs - 20)
    holder.child.kill('SIGCONT')
    result.trials++
    await sleep(200)
  }
  polling = false
  await poll
  for (const n of nodes) n.child.kill('SIGKILL')
  return result
}

describe('file lease under SIGSTOP', () => {
  it(
    'real processes whose holder is stopped at random moments, often inside a store change: the epoch never goes backwards and no epoch is granted to two processes',
    async () => {
      const started = Date.now()
      const results = await Promise.all(GROUPS.map((size, g) => runGroup(g, size, 0x5eed + g)))
      const trials = results.reduce((s, r) => s + r.trials, 0)
      const inside = results.reduce((s, r) => s + r.inside, 0)
      const report = results.map((r, g) => {
        const holders = new Map<number, Set<string>>()
        for (const x of r.grants) (holders.get(x.epoch) ?? holders.set(x.epoch, new Set()).get(x.epoch))?.add(x.holder)
        const shared = [...holders].filter(([, h]) => h.size > 1).map(([e, h]) => `${e}: ${[...h].join(', ')}`)
        const backwards = r.polled.filter((e, i) => i > 0 && e < (r.polled[i - 1] as number))
        // In the order of the store's clock (when each was decided), granted rows never go back in epoch either.
        const byTime = [...r.grants].sort((a, b) => a.lastSeen - b.lastSeen)
        const grantBackwards = byTime.filter((x, i) => i > 0 && x.epoch < (byTime[i - 1] as { epoch: number }).epoch).length
        return { group: g, trials: r.trials, inside: r.inside, epochs: r.polled.at(-1), backwards, shared, grantBackwards, errors: r.errors.slice(0, 3) }
      })
      console.log(`file lease under SIGSTOP: ${trials} trials, ${inside} stopped inside a store change, ${Date.now() - started} ms`, JSON.stringify(report))
      expect(trials).toBeGreaterThanOrEqual(50)
      expect(inside).toBeGreaterThanOrEqual(20)
      for (const r of report) {
        expect(r.backwards, `group ${r.group}: the table's epoch went backwards`).toEqual([])
        expect(r.shared, `group ${r.group}: an epoch granted to two processes`).toEqual([])
        expect(r.grantBackwards, `group ${r.group}: a grant decided later had a lower epoch`).toBe(0)
        // The stops did cause failovers.
        expect(r.epochs).toBeGreaterThan(5)
      }
    },
    90_000,
  )
})
