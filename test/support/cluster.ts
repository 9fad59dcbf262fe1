/**
 * A cluster of real Understudy processes (test/e2e/cluster-node.ts) for
 * acceptance tests of the safety promises:
 *   S1 — no sync-acknowledged write is ever lost;
 *   S2 — at most one node accepts writes per epoch, and epochs never go backwards.
 *
 * The cluster spawns, kills (SIGKILL), pauses (SIGSTOP/SIGCONT) and restarts
 * nodes on their own port and checkpoint folder, as a supervisor would; it
 * records every report of every process incarnation (`n0#2` is node n0's
 * third process) into one timeline, and a {@link Writer} drives writes to the
 * current active. Every wait is bounded.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileLease } from '../../adapters/file-lease.js'
import type { LeaseRow } from '../../src/index.js'
import type { NodeConfig } from '../e2e/cluster-node.js'

const ROOT = new URL('../../', import.meta.url)
const NODE = new URL('test/e2e/cluster-node.ts', ROOT)

export interface Spare {
  child: ChildProcess
  /** Set when the process becomes a node's incarnation. */
  who: string | undefined
  loaded: boolean
  ready: boolean
  exited: boolean
}

interface NodeMsg {
  loaded?: boolean
  ready?: boolean
  role?: string
  epoch?: number
  at?: number
  acked?: number
  seq?: number
  failed?: number
  refused?: number
  error?: string
  dump?: number[]
  restored?: { epoch: number; seq: number } | null
}

/** One entry of the timeline. `who` is a process incarnation (`n1#0`) or `test`. */
export interface TimelineEvent {
  at: number
  who: string
  kind: 'spawn' | 'ready' | 'role' | 'ack' | 'kill' | 'exit' | 'stop' | 'cont' | 'lease' | 'error' | 'note' | 'violation'
  text: string
  epoch?: number
  k?: number
}

export interface Ack {
  k: number
  epoch: number
  seq: number
  who: string
  at: number
}

export interface RoleReport {
  who: string
  role: string
  epoch: number
  at: number
}

/** One node (a stable id, port and checkpoint folder) and its current process. */
export interface ClusterNode {
  id: string
  index: number
  port: number
  incarnation: number
  child: ChildProcess | undefined
  /** The current process's state (internal). */
  process?: Spare
  /** `${id}#${incarnation}` of the current process. */
  who: string
  alive: boolean
  stopped: boolean
  /** The latest role the current process reported. */
  role: string
  epoch: number
}

export interface ClusterOptions {
  size: number
  group?: string
  /** Bound on a node's start-up (spawn to `ready`), ms. Default 15 s. */
  startTimeoutMs?: number
  /** Elect on etcd instead of the lease file (see test/e2e/cluster-node.ts); a function gives each node its own endpoints. */
  etcd?: NodeConfig['etcd'] | ((i: number) => NodeConfig['etcd'])
  /** Each node's address, and its port (default: 127.0.0.1 and ports the OS picks). */
  hosts?: string[]
  ports?: number[]
  heartbeat?: NodeConfig['heartbeat']
  /** Runs node `i`'s process through this command prefix (e.g. `['ip', 'netns', 'exec', 'ns-a']`). */
  wrap?: (i: number) => string[]
}

/** A few free ports on 127.0.0.1, picked by the OS. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => resolve(s))
    })),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export class Cluster {
  readonly t0 = Date.now()
  readonly events: TimelineEvent[] = []
  readonly acks: Ack[] = []
  readonly roles: RoleReport[] = []
  readonly nodes: ClusterNode[]
  readonly group: string
  private readonly waiters = new Set<() => void>()
  private readonly dumps = new Map<string, (m: NodeMsg) => void>()
  private readonly startTimeoutMs: number
  private readonly options: ClusterOptions
  private closed = false

  private constructor(
    readonly dir: string,
    readonly leasePath: string,
    ports: number[],
    options: ClusterOptions,
  ) {
    this.group = options.group ?? 'cluster'
    this.startTimeoutMs = options.startTimeoutMs ?? 15_000
    this.options = options
    this.nodes = ports.map((port, index) => ({ id: `n${index}`, index, port, incarnation: -1, child: undefined, who: `n${index}#-`, alive: false, stopped: false, role: 'none', epoch: 0 }))
  }

  static async create(options: ClusterOptions): Promise<Cluster> {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-cluster-'))
    const ports = options.ports ?? (await freePorts(options.size))
    return new Cluster(dir, join(dir, 'lease.json'), ports, options)
  }

  note(text: string, kind: TimelineEvent['kind'] = 'note', who = 'test'): void {
    this.record({ at: Date.now(), who, kind, text })
  }

  private record(e: TimelineEvent): void {
    this.events.push(e)
    this.wake()
  }

  /** A loaded process per node, waiting for `start` (see test/e2e/cluster-node.ts). */
  private readonly spares = new Map<number, Spare>()

  /** Forks a process for node `i` that loads its modules and waits. */
  private spawn(i: number): Spare {
    const n = this.nodes[i] as ClusterNode
    const { hosts, heartbeat, wrap } = this.options
    const etcd = typeof this.options.etcd === 'function' ? this.options.etcd(i) : this.options.etcd
    const config: NodeConfig = { id: n.id, index: i, ports: this.nodes.map((x) => x.port), group: this.group, leasePath: this.leasePath, dir: this.dir, ...(etcd ? { etcd } : {}), ...(hosts ? { hosts } : {}), ...(heartbeat ? { heartbeat } : {}) }
    const prefix = wrap?.(i)
    const child = prefix?.length
      ? spawn(prefix[0] as string, [...prefix.slice(1), process.execPath, '--import', 'tsx', NODE.pathname, JSON.stringify(config)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      : fork(NODE, [JSON.stringify(config)], { execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const spare: Spare = { child, who: undefined, loaded: false, ready: false, exited: false }
    child.on('message', (m: NodeMsg) => {
      if (m.loaded) {
        spare.loaded = true
        this.wake()
      } else if (spare.who) {
        if (m.ready) spare.ready = true
        this.onMessage(n, spare.who, m)
      }
    })
    child.on('exit', (code, signal) => {
      spare.exited = true
      const who = spare.who
      if (!who) return this.wake()
      if (n.who === who) {
        n.alive = false
        n.role = 'dead'
      }
      this.record({ at: Date.now(), who, kind: 'exit', text: signal ? `exited on ${signal}` : `exited (code ${code})` })
    })
    child.on('error', (err) => this.record({ at: Date.now(), who: spare.who ?? 'test', kind: 'error', text: `process ${child.pid}: ${err.message}` }))
    return spare
  }

  /**
   * Starts (or restarts) node `i` on its port and folder, in a process that
   * already loaded its modules (one is kept ready per node); resolves once the
   * node reports `ready`.
   */
  async start(i: number): Promise<ClusterNode> {
    const n = this.nodes[i] as ClusterNode
    if (n.alive) throw new Error(`${n.who} is still running`)
    let spare = this.spares.get(i)
    this.spares.delete(i)
    if (!spare || spare.exited) spare = this.spawn(i)
    const s = spare
    if (!(await this.until(() => s.loaded || s.exited, this.startTimeoutMs)) || s.exited) throw new Error(`node ${n.id}: a process did not load within ${this.startTimeoutMs} ms\n${this.timeline()}`)
    n.incarnation++
    const who = `${n.id}#${n.incarnation}`
    s.who = who
    n.who = who
    n.child = s.child
    n.alive = true
    n.stopped = false
    n.role = 'starting'
    n.epoch = 0
    this.record({ at: Date.now(), who, kind: 'spawn', text: `starts the node (pid ${s.child.pid})` })
    s.child.send({ cmd: 'start' })
    n.process = s
    if (!(await this.until(() => s.ready || s.exited, this.startTimeoutMs)) || s.exited)
      throw new Error(`${who} ${s.exited ? 'exited during start-up' : `did not report ready within ${this.startTimeoutMs} ms`}\n${this.timeline()}`)
    return n
  }

  /**
   * Forks, for every node without one, the process that will run its next
   * incarnation, so a restart does not wait for modules to load. Call it when
   * the group is quiet enough: loading takes a second of CPU.
   */
  prepare(): void {
    for (const n of this.nodes) {
      const s = this.spares.get(n.index)
      if (!this.closed && (!s || s.exited)) this.spares.set(n.index, this.spawn(n.index))
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  private onMessage(n: ClusterNode, who: string, m: NodeMsg): void {
    const at = m.at ?? Date.now()
    if (m.ready) {
      const r = m.restored
      this.record({ at, who, kind: 'ready', text: `ready as ${m.role}${r && r.seq >= 0 ? `, restored its checkpoint up to epoch ${r.epoch} seq ${r.seq}` : ', no checkpoint'}` })
      if (n.who === who && n.role === 'starting') n.role = m.role as string
    } else if (m.dump !== undefined) {
      this.dumps.get(who)?.(m)
    } else if (m.acked !== undefined) {
      this.acks.push({ k: m.acked, epoch: m.epoch as number, seq: m.seq as number, who, at })
      this.record({ at, who, kind: 'ack', text: `acked ${m.acked}`, epoch: m.epoch as number, k: m.acked })
    } else if (m.failed !== undefined || m.refused !== undefined) {
      /* an unacknowledged write: nothing is promised about it */
    } else if (m.role !== undefined) {
      this.roles.push({ who, role: m.role, epoch: m.epoch as number, at })
      if (n.who === who) {
        n.role = m.role
        n.epoch = m.epoch as number
      }
      this.record({ at, who, kind: 'role', text: `role → ${m.role} (epoch ${m.epoch})`, epoch: m.epoch as number })
    } else if (m.error !== undefined) {
      this.record({ at, who, kind: 'error', text: m.error })
    }
    const k = m.acked ?? m.failed ?? m.refused
    if (k !== undefined) this.writeReplies.get(k)?.()
  }

  /** Resolved by a node's reply to write k (acked, failed or refused). */
  readonly writeReplies = new Map<number, () => void>()

  /** Waits (bounded) until the process that would restart node `i` has loaded (forking it if needed), so a restart takes as long as asked. */
  async warm(i: number, ms = this.startTimeoutMs): Promise<boolean> {
    this.prepare()
    const s = this.spares.get(i) as Spare
    return this.until(() => s.loaded || s.exited, ms)
  }

  /** Waits until `test()` holds, re-checking on every event and every 20 ms; false on timeout (never throws). */
  async until(test: () => boolean, ms: number): Promise<boolean> {
    if (test()) return true
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        clearInterval(poll)
        this.waiters.delete(check)
        resolve(ok)
      }
      const check = () => test() && done(true)
      const timer = setTimeout(() => done(test()), ms)
      const poll = setInterval(check, 20)
      this.waiters.add(check)
    })
  }

  /** SIGKILL node `i`; resolves once the process has exited (bounded: 5 s). */
  async kill(i: number): Promise<void> {
    const n = this.nodes[i] as ClusterNode
    const child = n.child
    if (!child || !n.alive) return
    const who = n.who
    this.record({ at: Date.now(), who: 'test', kind: 'kill', text: `kill -9 ${who} (was ${n.role}, epoch ${n.epoch})` })
    const p = n.process as Spare
    const exited = this.until(() => p.exited, 5000)
    child.kill('SIGKILL')
    if (!(await exited)) throw new Error(`${who} did not exit within 5 s of SIGKILL\n${this.timeline()}`)
  }

  /** SIGSTOP node `i`: it freezes wherever it is (possibly inside a lease operation). */
  stop(i: number, how = ''): void {
    const n = this.nodes[i] as ClusterNode
    if (!n.child || !n.alive) return
    this.record({ at: Date.now(), who: 'test', kind: 'stop', text: `SIGSTOP ${n.who} (was ${n.role}, epoch ${n.epoch})${how ? ` ${how}` : ''}` })
    n.stopped = true
    n.child.kill('SIGSTOP')
  }

  /**
   * SIGSTOP node `i` while it holds the lease file's lock, if it takes it
   * within `withinMs` (the lock is `<lease file>.lock` holding the pid, as
   * adapters/file-lease.ts writes it today); otherwise at the deadline.
   * Best effort, for aiming pauses inside lease operations: true when the
   * pause caught the lock held by that process.
   */
  async stopInLeaseOp(i: number, withinMs: number): Promise<boolean> {
    const n = this.nodes[i] as ClusterNode
    const pid = n.child?.pid
    const deadline = Date.now() + withinMs
    for (let polls = 0; polls < 20_000 && Date.now() < deadline && pid !== undefined; polls++) {
      let held = false
      try {
        held = (await readFile(`${this.leasePath}.lock`, 'utf8')).split(' ')[0] === String(pid)
      } catch {
        /* no lock right now */
      }
      if (held) {
        this.stop(i, 'while it held the lease file lock')
        return true
      }
      await new Promise((r) => setImmediate(r))
    }
    this.stop(i)
    return false
  }

  /** SIGCONT node `i`. */
  cont(i: number): void {
    const n = this.nodes[i] as ClusterNode
    if (!n.child || !n.alive) return
    n.child.kill('SIGCONT')
    n.stopped = false
    this.record({ at: Date.now(), who: 'test', kind: 'cont', text: `SIGCONT ${n.who}` })
  }

  /**
   * The node writes go to: whoever reported role `active` most recently,
   * while its process runs, is not paused, and has not reported another role since.
   */
  active(): ClusterNode | undefined {
    for (let j = this.roles.length - 1; j >= 0; j--) {
      const r = this.roles[j] as RoleReport
      if (r.role !== 'active') continue
      const n = this.nodes.find((x) => x.who === r.who)
      return n && n.alive && !n.stopped && n.role === 'active' ? n : undefined
    }
    return undefined
  }

  /** Waits (bounded) for an active that reported `active` at or after `since`. */
  async waitForActive(since: number, ms: number): Promise<ClusterNode | undefined> {
    let found: ClusterNode | undefined
    await this.until(() => {
      const n = this.active()
      const last = n && this.roles.filter((r) => r.who === n.who && r.role === 'active').at(-1)
      found = last && last.at >= since ? n : undefined
      return !!found
    }, ms)
    return found
  }

  /** Waits (bounded) for `count` acks at or after `since`. */
  async waitForAcks(since: number, count: number, ms: number): Promise<boolean> {
    return this.until(() => {
      let c = 0
      for (let j = this.acks.length - 1; j >= 0 && (this.acks[j] as Ack).at >= since; j--) c++
      return c >= count
    }, ms)
  }

  /** The items of node `i` (bounded: 3 s), with its role and epoch. */
  async dump(i: number, ms = 3000): Promise<{ items: number[]; role: string; epoch: number } | undefined> {
    const n = this.nodes[i] as ClusterNode
    if (!n.child || !n.alive || n.stopped) return undefined
    const who = n.who
    const reply = new Promise<NodeMsg | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.dumps.delete(who)
        resolve(undefined)
      }, ms)
      this.dumps.set(who, (m) => {
        clearTimeout(timer)
        this.dumps.delete(who)
        resolve(m)
      })
    })
    n.child.send({ cmd: 'dump' })
    const m = await reply
    return m && { items: m.dump as number[], role: m.role as string, epoch: m.epoch as number }
  }

  /** The items of the current active, from a node still active when it answered (bounded: 5 tries within `ms`). */
  async activeDump(ms: number): Promise<{ who: string; items: number[]; epoch: number } | undefined> {
    const deadline = Date.now() + ms
    for (let tries = 0; tries < 5 && Date.now() < deadline; tries++) {
      const n = this.active() ?? (await this.waitForActive(0, Math.max(0, deadline - Date.now())))
      if (!n) return undefined
      const who = n.who
      const d = await this.dump(n.index)
      if (d?.role === 'active') return { who, items: d.items, epoch: d.epoch }
      await sleep(100)
    }
    return undefined
  }

  /** The lease row, read through the lease store itself (whatever its file layout). */
  async leaseRow(): Promise<LeaseRow | undefined> {
    return fileLease(this.leasePath, { lockStaleMs: 300 }).read(this.group)
  }

  /**
   * The timeline as text, one line per event; runs of acks by one process in
   * one epoch are folded into one line. `from`/`to` cut a window (ms since epoch).
   */
  timeline(from = -Infinity, to = Infinity): string {
    const lines: string[] = []
    const evs = this.events.filter((e) => e.at >= from && e.at <= to).sort((a, b) => a.at - b.at)
    const stamp = (at: number) => `+${String(at - this.t0).padStart(7)} ms`
    let run: { who: string; epoch: number; first: TimelineEvent; last: TimelineEvent; count: number } | undefined
    const flush = () => {
      if (!run) return
      const { who, epoch, first, last, count } = run
      lines.push(`${stamp(first.at)}  ${who.padEnd(6)} acked ${count} write${count === 1 ? '' : 's'} k ${first.k}${count > 1 ? `…${last.k}` : ''} in epoch ${epoch}${count > 1 ? ` (until +${last.at - this.t0} ms)` : ''}`)
      run = undefined
    }
    let repeat: { e: TimelineEvent; count: number; last: number } | undefined
    const flushRepeat = () => {
      if (repeat && repeat.count > 1) lines.push(`${stamp(repeat.last)}  ${repeat.e.who.padEnd(6)} … the same ${repeat.count - 1} more time(s)`)
      repeat = undefined
    }
    for (const e of evs) {
      // The same error reported again and again by one process is folded into one line.
      if (e.kind === 'error' && repeat && repeat.e.who === e.who && repeat.e.text === e.text) {
        repeat.count++
        repeat.last = e.at
        continue
      }
      if (e.kind !== 'ack') {
        flush()
        flushRepeat()
      }
      if (e.kind === 'error') repeat = { e, count: 1, last: e.at }
      if (e.kind === 'ack') {
        if (run && run.who === e.who && run.epoch === e.epoch) {
          run.last = e
          run.count++
          continue
        }
        flush()
        run = { who: e.who, epoch: e.epoch as number, first: e, last: e, count: 1 }
        continue
      }
      flush()
      lines.push(`${stamp(e.at)}  ${e.who.padEnd(6)} ${e.kind === 'violation' ? '!!! ' : ''}${e.text}`)
    }
    flush()
    flushRepeat()
    return lines.join('\n')
  }

  /** Per node: incarnations, last role, last acked write. */
  summary(): string {
    return this.nodes
      .map((n) => {
        const mine = this.acks.filter((a) => a.who.startsWith(`${n.id}#`))
        const last = mine.at(-1)
        return `${n.id}: ${n.incarnation + 1} process(es), now ${n.who} ${n.alive ? (n.stopped ? 'paused' : n.role) : 'dead'} epoch ${n.epoch}; ${mine.length} acks${last ? `, last k ${last.k} in epoch ${last.epoch} by ${last.who}` : ''}`
      })
      .join('\n')
  }

  /** Writes the full timeline next to the cluster's files and returns the path (kept for reading after a failure). */
  async saveTimeline(name: string): Promise<string> {
    const path = join(tmpdir(), `understudy-${name}-${process.pid}-${this.t0}.timeline.txt`)
    await writeFile(path, `${this.summary()}\n\n${this.timeline()}\n`)
    return path
  }

  /** Kills every process (SIGCONT first for paused ones) and removes the folder. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const n of this.nodes) {
      if (!n.child || !n.alive) continue
      const p = n.process as Spare
      const exited = this.until(() => p.exited, 3000)
      n.child.kill('SIGKILL')
      await exited
    }
    for (const s of this.spares.values()) if (!s.exited) s.child.kill('SIGKILL')
    this.spares.clear()
    await rm(this.dir, { recursive: true, force: true })
  }
}

/**
 * Drives writes: k = 1, 2, 3… each sent only to the current active
 * ({@link Cluster.active}), one at a time; a write without a reply within
 * `replyMs` is left in flight (a later ack still counts) and the next one goes.
 */
export class Writer {
  next = 1
  sent = 0
  private running = false
  private loop: Promise<void> | undefined

  constructor(
    private readonly cluster: Cluster,
    private readonly replyMs = 250,
    /** Bounds the loop whatever happens: at most this many writes… */
    private readonly maxWrites = 1_000_000,
    /** …and this long, ms. */
    private readonly maxMs = 15 * 60_000,
  ) {}

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.running = false
    await this.loop
  }

  private async run(): Promise<void> {
    const deadline = Date.now() + this.maxMs
    while (this.running && this.sent < this.maxWrites && Date.now() < deadline) {
      const n = this.cluster.active()
      if (!n?.child) {
        await sleep(5)
        continue
      }
      const k = this.next++
      this.sent++
      const replied = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.replyMs)
        this.cluster.writeReplies.set(k, () => {
          clearTimeout(timer)
          resolve()
        })
      })
      try {
        n.child.send({ cmd: 'write', k })
      } catch {
        /* the process just died: the write was never made */
      }
      await replied
      this.cluster.writeReplies.delete(k)
    }
    this.running = false
  }
}

/** Acked writes as runs of consecutive k by one process in one epoch: `467–535 (epoch 17, n0#7)`. */
export function describeAcks(acks: readonly Ack[]): string {
  const sorted = [...acks].sort((a, b) => a.k - b.k)
  const runs: string[] = []
  let start: Ack | undefined
  let prev: Ack | undefined
  const close = () => start && prev && runs.push(`${start.k}${prev.k !== start.k ? `–${prev.k}` : ''} (epoch ${start.epoch}, ${start.who})`)
  for (const a of sorted) {
    if (start && prev && a.k === prev.k + 1 && a.who === start.who && a.epoch === start.epoch) {
      prev = a
      continue
    }
    close()
    start = prev = a
  }
  close()
  return runs.join(', ')
}

/** Acked writes missing from `items`. */
export function missing(acks: readonly Ack[], items: readonly number[]): Ack[] {
  const have = new Set(items)
  return acks.filter((a) => !have.has(a.k))
}

/**
 * S2 from the processes' own reports:
 * - each process reports epochs that never decrease;
 * - each activation is at an epoch higher than every earlier activation of
 *   another process (the same epoch twice means two writers shared it;
 *   lower means the epoch went backwards);
 * - acknowledged writes of one epoch all come from one process.
 */
export function epochViolations(roles: readonly RoleReport[], acks: readonly Ack[], t0 = 0): Problem[] {
  const out: Problem[] = []
  const lastBy = new Map<string, RoleReport>()
  for (const r of roles) {
    const prev = lastBy.get(r.who)
    if (prev && r.epoch < prev.epoch) out.push({ at: r.at, text: `${r.who} reported epoch ${r.epoch} (${r.role}) after epoch ${prev.epoch} (${prev.role}): its epoch went backwards` })
    lastBy.set(r.who, r)
  }
  const activations = roles.filter((r) => r.role === 'active').sort((a, b) => a.at - b.at)
  for (let j = 0; j < activations.length; j++) {
    const r = activations[j] as RoleReport
    const earlier = activations.slice(0, j).filter((p) => p.who !== r.who && p.epoch >= r.epoch)
    const worst = earlier.reduce<RoleReport | undefined>((m, p) => (!m || p.epoch > m.epoch ? p : m), undefined)
    if (worst)
      out.push({
        at: r.at,
        text:
          worst.epoch === r.epoch
            ? `${r.who} became active at epoch ${r.epoch}, which ${worst.who} already held (active from +${worst.at - t0} ms): two writers in one epoch`
            : `${r.who} became active at epoch ${r.epoch}, after ${worst.who} was active at epoch ${worst.epoch}: the epoch went backwards`,
      })
  }
  const writers = new Map<number, Map<string, Ack>>()
  for (const a of acks) {
    const m = writers.get(a.epoch) ?? new Map<string, Ack>()
    writers.set(a.epoch, m)
    if (!m.has(a.who)) m.set(a.who, a)
  }
  for (const [epoch, m] of writers)
    if (m.size > 1) {
      const firsts = [...m.values()]
      out.push({ at: (firsts[1] as Ack).at, text: `epoch ${epoch} has acknowledged writes from ${firsts.length} processes: ${firsts.map((a) => `${a.who} (first k ${a.k})`).join(', ')}` })
    }
  return out
}

/** A broken promise, at the moment it was seen. */
export interface Problem {
  at: number
  text: string
}

/**
 * A readable failure report: the seed, what was run, each problem (the first
 * `excerpts` with the timeline around it), the per-node summary, and where the
 * full timeline was saved.
 */
export function report(cluster: Cluster, problems: readonly Problem[], head: string, savedAt: string, excerpts = 3): string {
  const parts = [head, `${problems.length} problem(s):`, ...problems.map((p) => `  +${p.at - cluster.t0} ms: ${p.text}`), '', cluster.summary()]
  for (const p of problems.slice(0, excerpts)) parts.push('', `timeline around +${p.at - cluster.t0} ms (${p.text}):`, cluster.timeline(p.at - 3000, p.at + 1500))
  parts.push('', `full timeline: ${savedAt}`)
  return parts.join('\n')
}
