/**
 * One simulated run: a cluster of 2–5 nodes on the seeded world, a client
 * committing on whoever is active, a fault plan (one failure at a time), then
 * calm, and the checker's verdict:
 *
 * - S1: every write acknowledged in `sync` mode is in the final active's
 *   state; in `persisted` mode, also after every node crashes at once.
 * - S2: at most one incarnation is active, and at most one acknowledges
 *   writes, per epoch; activations and the lease table's epochs never go
 *   backwards.
 * - S3: once faults stop, every replica converges to the active's graph
 *   (equal canonical dumps) within {@link CONVERGE_MS}.
 * - S4: every frame sent decodes to exactly what was encoded (decoded and
 *   re-encoded, the bytes are the same).
 */
import { Understudy, seededRandom, type CommitMode, type Role } from 'understudy-ha'
import { CborReader } from '../../src/codec/reader.js'
import { CborWriter } from '../../src/codec/writer.js'
import { canonicalDump } from '../support/dump.js'
import { SimDisk, SimLeaseTable, type LeaseModel } from './storage.js'
import { NodeClock, SimNetwork, World, type NetworkFaults, type SimTransport } from './world.js'

export const I = 100
export const T = 400
/** How long the faulty part of a run lasts (virtual ms). */
export const FAULT_MS = 4000
/** S3's bound: after faults stop, replicas must have converged within this (virtual ms). */
export const CONVERGE_MS = 8000
/**
 * Liveness bound L1: after the last failure (the active crashes once the
 * group has settled, and restarts within 2·T), an active exists this soon: the
 * lease expires after T, a member of its in-sync set takes it at its next beat
 * (I), or — a set shrunk to nobody — the restarted holder after its own wait
 * (T, restored state) or anyone after 3·T. So 3·T, the crash up to a beat
 * after the last renewal, a beat to see the row and one to take it (3·I), and
 * two slow store calls (the simulator's slowest is 120 ms). On etcd one beat
 * more: a node counts T from when it first sees a renewal.
 */
export const ACTIVE_WITHIN_MS = 3 * T + 3 * I + 300
/** Liveness bound L2: a commit issued on the settled group resolves this soon. */
export const COMMIT_WITHIN_MS = 1000

export interface RunOptions {
  /** Nodes in the cluster (default: 2 or 3, by seed). */
  nodes?: number
  /** The lease table's protocol (default `cas`; `locked` is the old file lease, kept to show the checker catches it; `etcd` runs adapters/etcd.ts on a simulated etcd). */
  lease?: LeaseModel
  /** Keep every timeline line (default: only what a failure prints). */
  verbose?: boolean
  /** Only the fault kinds named (default: all). */
  faults?: FaultKind[]
}

export type FaultKind = 'crash' | 'pause' | 'isolate' | 'damage' | 'handover' | 'close' | 'network'

export interface RunResult {
  seed: number
  config: string
  violations: string[]
  timeline: string[]
  acked: number
  steps: number
  /** How long after the faults stopped the first active existed (L1). */
  activeAfterMs?: number
}

interface App {
  items: string[]
  kv: Map<string, string>
  n: { count: number }
}

interface Incarnation {
  label: string
  clock: NodeClock
  transport: SimTransport
  ha: Understudy | undefined
  root: App | undefined
}

interface SimNode {
  name: string
  disk: SimDisk
  inc: Incarnation | undefined
  incarnations: number
  down: boolean
}

/** Strings that stress the codec: non-ASCII, and the Latin-1 reading of their UTF-8 bytes. */
const FRAGMENTS = ['café', 'cafÃ©', 'Müller', 'MÃ¼ller', '日本語', 'Ø', '😀', 'ascii', '', 'naïve', 'naÃ¯ve', 'ß', 'x'.repeat(17)]

export async function runSeed(seed: number, options: RunOptions = {}): Promise<RunResult> {
  const world = new World(seededRandom(seed))
  const rnd = () => world.random()
  // Every draw is made whatever the options, so a seed's schedule is the same when one of them is forced.
  const drawnNodes = world.chance(0.5) ? 2 : 3
  const nodeCount = options.nodes ?? drawnNodes
  const kinds = new Set<FaultKind>(options.faults ?? ['crash', 'pause', 'isolate', 'damage', 'handover', 'close', 'network'])
  const mode: CommitMode = world.chance(0.3) ? 'persisted' : 'sync'
  const checkpoints = mode === 'persisted' || world.chance(0.6)
  const policy = checkpoints && world.chance(0.5) ? { commits: world.int(2, 8), ms: world.int(20, 200) } : undefined
  const noise: NetworkFaults | undefined =
    kinds.has('network') && world.chance(0.5)
      ? { drop: world.random() * 0.05, duplicate: world.random() * 0.05, reorder: world.chance(0.3), maxDelayMs: world.int(2, 20) }
      : undefined
  const config = `${nodeCount} nodes, ${mode}, checkpoints ${checkpoints ? (policy ? JSON.stringify(policy) : 'each batch') : 'off'}, network ${noise ? JSON.stringify({ ...noise, drop: +noise.drop.toFixed(3), duplicate: +noise.duplicate.toFixed(3) }) : 'calm'}, lease ${options.lease ?? 'cas'}`

  const network = new SimNetwork(world)
  const table = new SimLeaseTable(world, options.lease ?? 'cas')
  const violations: string[] = []
  const timeline: string[] = []
  const log = (who: string, text: string) => timeline.push(`${world.now().toFixed(1).padStart(8)} ${who.padEnd(6)} ${text}`)
  const violate = (text: string) => {
    violations.push(text)
    log('CHECK', `VIOLATION ${text}`)
  }

  // S4: every frame, decoded and encoded again, gives back its bytes.
  const reader = new CborReader()
  const writer = new CborWriter()
  network.onFrame = (from, data) => {
    let again: Uint8Array
    try {
      again = writer.encode(reader.decode(data))
    } catch (error) {
      violate(`S4: a frame from ${from} does not decode: ${(error as Error).message}`)
      return
    }
    if (again.length !== data.length || again.some((b, i) => b !== data[i])) violate(`S4: a frame from ${from} decodes to something else (${data.length} bytes in, ${again.length} re-encoded)`)
  }

  // ---- the checker's records -------------------------------------------------
  const activeIn = new Map<number, string>()
  let highestActivated = 0
  const writersIn = new Map<number, string>()
  /** Acknowledged writes; `standbys` 0 marks a degraded acknowledgement (no standby held it when the commit resolved). */
  const acked: { item: string; epoch: number; seq: number; by: string; mode: CommitMode; standbys: number }[] = []
  /** Per incarnation and epoch, the highest seq acknowledged with a standby holding it: it covers every earlier degraded one. */
  const coveredUpTo = new Map<string, number>()
  /**
   * What must survive: every write acknowledged with a standby holding it, and
   * a degraded one once a later acknowledgement of the same active (same
   * epoch) had a standby holding it (a standby applies in order). A degraded
   * acknowledgement alone promises only what the failure model says: it lives
   * on this node (and its own checkpoints).
   */
  const mustSurvive = () => acked.filter((a) => a.standbys > 0 || (coveredUpTo.get(`${a.by}/${a.epoch}`) ?? -1) >= a.seq)

  const nodes: SimNode[] = Array.from({ length: nodeCount }, (_, i) => ({
    name: `n${i + 1}`,
    disk: new SimDisk(world),
    inc: undefined,
    incarnations: 0,
    down: true,
  }))

  const boot = (node: SimNode): void => {
    const clock = new NodeClock(world)
    const transport = network.join(node.name, clock)
    const label = `${node.name}.${++node.incarnations}`
    const inc: Incarnation = { label, clock, transport, ha: undefined, root: undefined }
    node.inc = inc
    node.down = false
    log(label, 'starts')
    void Understudy.start({
      group: 'sim',
      nodeId: node.name,
      transport,
      lease: table.client(clock, label),
      heartbeat: { intervalMs: I, timeoutMs: T },
      clock,
      random: seededRandom(Math.floor(rnd() * 2 ** 31)),
      resyncRetryMs: 100,
      commitMode: mode,
      ...(checkpoints ? { checkpoints: node.disk.client(clock), ...(policy ? { checkpointPolicy: policy } : {}) } : {}),
    }).then(
      (ha) => {
        if (clock.isDead) return
        inc.ha = ha
        inc.root = ha.register('app', { items: [] as string[], kv: new Map<string, string>(), n: { count: 0 } })
        log(label, `started: ${ha.role} epoch ${ha.epoch} seq ${ha.stats().seq} (restored ${JSON.stringify(ha.restored ?? null)})`)
        ha.on('role', (e) => onRole(inc, e.role, e.epoch))
        ha.on('error', (e) => {
          if (options.verbose) log(label, `error: ${e.error.message}`)
        })
      },
      (error: Error) => violate(`${label} failed to start: ${error.message}`),
    )
  }

  const lastEpoch = new Map<string, number>()
  const onRole = (inc: Incarnation, role: Role, epoch: number) => {
    log(inc.label, `role ${role} epoch ${epoch}`)
    if (epoch < (lastEpoch.get(inc.label) ?? 0)) violate(`S2: ${inc.label}'s epoch went backwards: ${epoch} after ${lastEpoch.get(inc.label)}`)
    lastEpoch.set(inc.label, Math.max(epoch, lastEpoch.get(inc.label) ?? 0))
    if (role !== 'active') return
    const holder = activeIn.get(epoch)
    if (holder !== undefined && holder !== inc.label) violate(`S2: ${inc.label} and ${holder} were both active in epoch ${epoch}`)
    else if (holder === undefined && epoch <= highestActivated) violate(`S2: ${inc.label} became active in epoch ${epoch} after epoch ${highestActivated} existed`)
    activeIn.set(epoch, inc.label)
    highestActivated = Math.max(highestActivated, epoch)
  }

  const crash = (node: SimNode, damage: boolean) => {
    const inc = node.inc
    if (!inc || node.down) return
    log(inc.label, 'CRASH')
    inc.clock.kill()
    inc.transport.crash()
    node.disk.crash()
    node.down = true
    if (damage) {
      const what = node.disk.damage()
      if (what) log(node.name, `disk damaged: ${what}`)
    }
  }

  // ---- the client ----------------------------------------------------------
  let writes = 0
  let clientOn = true
  const clientTick = () => {
    if (!clientOn) return
    world.schedule(world.int(5, 60), clientTick)
    const live = nodes.filter((n) => !n.down && n.inc?.ha && !n.inc.clock.isPaused && n.inc.ha.role === 'active')
    if (!live.length || writes >= 300) return
    const inc = (live[world.int(0, live.length - 1)] as SimNode).inc as Incarnation
    const ha = inc.ha as Understudy
    const root = inc.root as App
    const k = ++writes
    const item = `${k}:${FRAGMENTS[world.int(0, FRAGMENTS.length - 1)]}`
    const extra = world.int(0, 3)
    const tag = world.int(0, 99_999)
    inc.clock.run(() => {
      try {
        root.items.push(item)
        if (extra === 0) {
          // A short non-ASCII string and the Latin-1 reading of its UTF-8 bytes: same length in code units as the other's bytes.
          const text = `${FRAGMENTS[k % 4]} #${tag}`
          root.kv.set(`m${k % 5}`, mojibake(text))
          root.kv.set(`t${k % 5}`, text)
        }
        if (extra === 1) root.kv.set(`k${k % 7}`, item)
        if (extra === 2) root.kv.delete(`k${(k + 3) % 7}`)
        if (extra === 3) root.n.count++
      } catch {
        return // not active after all: refused, not acknowledged
      }
      ha.commit().then(
        (at) => {
          acked.push({ item, epoch: at.epoch, seq: at.seq, by: inc.label, mode, standbys: at.standbys })
          if (at.standbys > 0) coveredUpTo.set(`${inc.label}/${at.epoch}`, Math.max(at.seq, coveredUpTo.get(`${inc.label}/${at.epoch}`) ?? -1))
          const w = writersIn.get(at.epoch)
          if (w !== undefined && w !== inc.label) violate(`S2: ${inc.label} and ${w} both acknowledged writes in epoch ${at.epoch}`)
          writersIn.set(at.epoch, inc.label)
          if (options.verbose) log(inc.label, `acked ${item} at ${at.epoch}/${at.seq}${at.standbys ? '' : ' (degraded)'}`)
        },
        () => undefined,
      )
    })
  }

  // ---- faults: one failure at a time ----------------------------------------
  const faultKinds = (['crash', 'pause', 'isolate'] as FaultKind[]).filter((k) => kinds.has(k))
  // Operator actions (a planned handover, a graceful close and restart) come on their own schedule, during failures too.
  // A graceful close of the last up-to-date copy without checkpoints discards the state by definition: closes only where checkpoints keep a copy.
  const actionKinds = (['handover', 'close'] as FaultKind[]).filter((k) => kinds.has(k) && (k !== 'close' || checkpoints))
  const nextAction = () => {
    if (!faultsOn || !actionKinds.length) return
    world.schedule(world.int(300, 1500), nextAction)
    const kind = actionKinds[world.int(0, actionKinds.length - 1)] as FaultKind
    const active = nodes.find((n) => !n.down && n.inc?.ha?.role === 'active' && !n.inc.clock.isPaused)
    const a = active?.inc
    if (!active || !a?.ha) return
    if (kind === 'handover') {
      log(a.label, 'hands over')
      a.clock.run(() => {
        a.ha?.handover({ timeoutMs: 1000 }).then(
          (r) => log(a.label, `handed over to ${r.to} at epoch ${r.epoch} (${r.blackoutMs.toFixed(1)} ms)`),
          (e: Error) => log(a.label, `handover failed: ${e.message}`),
        )
      })
    } else {
      log(a.label, 'closes (graceful), restarts later')
      const ha = a.ha
      a.clock.run(() => {
        void ha.close().then(() => {
          if (a.clock.isDead || active.inc !== a) return
          a.clock.kill()
          active.down = true
          world.schedule(world.int(0, 500), () => boot(active))
        })
      })
    }
  }
  let faultsOn = true
  const healthy = () => {
    const up = nodes.filter((n) => !n.down && n.inc?.ha && !n.inc.clock.isPaused)
    if (up.length !== nodes.length) return false
    const act = up.filter((n) => n.inc?.ha?.role === 'active')
    if (act.length !== 1) return false
    const a = (act[0] as SimNode).inc?.ha as Understudy
    return up.every((n) => n.inc?.ha === a || (n.inc?.ha?.stats().seq === a.stats().seq && n.inc?.ha?.stats().epoch === a.epoch))
  }
  const nextFault = (waited = 0) => {
    if (!faultsOn || !faultKinds.length) return
    if (!healthy() && waited < 3000) {
      world.schedule(50, () => nextFault(waited + 50))
      return
    }
    const kind = faultKinds[world.int(0, faultKinds.length - 1)] as FaultKind
    const node = nodes[world.int(0, nodes.length - 1)] as SimNode
    // Most failures hit the active: that is where they hurt.
    const active = nodes.find((n) => !n.down && n.inc?.ha?.role === 'active')
    const target = active && world.chance(0.7) ? active : node
    const inc = target.inc
    let lasts = 0
    if (kind === 'crash' && inc && !target.down) {
      crash(target, kinds.has('damage') && world.chance(0.2))
      lasts = world.int(0, 600)
      world.schedule(lasts, () => boot(target))
    } else if (kind === 'pause' && inc && !target.down) {
      lasts = world.int(50, 1500)
      log(inc.label, `PAUSE for ${lasts} ms`)
      inc.clock.pause()
      world.schedule(lasts, () => {
        log(inc.label, 'resumes')
        inc.clock.resume()
      })
    } else if (kind === 'isolate' && inc && !target.down) {
      lasts = world.int(50, 1500)
      log(target.name, `ISOLATED for ${lasts} ms`)
      network.isolate(target.name)
      world.schedule(lasts, () => {
        log(target.name, 'rejoins the network')
        network.rejoin(target.name)
      })
    }
    world.schedule(lasts + world.int(100, 600), () => nextFault())
  }

  // ---- the run ---------------------------------------------------------------
  const drain = () => new Promise<void>((r) => setImmediate(r))
  const runUntil = async (end: number) => {
    await drain()
    while (world.step(end)) {
      await drain()
      if (world.steps > 400_000) {
        violate('the simulation did not settle (over 400,000 events)')
        return
      }
    }
  }

  log('sim', `seed ${seed}: ${config}`)
  for (const n of nodes) boot(n)
  if (noise) network.faults = noise
  world.schedule(world.int(500, 1000), clientTick)
  world.schedule(world.int(800, 1500), () => nextFault())
  world.schedule(world.int(800, 2000), nextAction)
  await runUntil(FAULT_MS)

  // Calm: no new faults; the last one ends as planned; the network heals.
  faultsOn = false
  clientOn = false
  await runUntil(FAULT_MS + 1600)
  network.calm()
  network.healAll()
  for (const n of nodes) {
    if (n.down) boot(n)
    else n.inc?.clock.resume()
  }
  log('sim', 'faults stop')
  const calmAt = world.now()
  let converged = false
  let activeAfterMs: number | undefined
  while (world.now() < calmAt + CONVERGE_MS && !violations.length) {
    await runUntil(world.now() + 25)
    if (converged = convergedNow(nodes)) break
  }
  if (!converged) violate(`S3: replicas did not converge within ${CONVERGE_MS} ms of the faults stopping: ${describe(nodes)}`)
  // L1: one last failure once the group has settled — the active crashes and comes back later — and an active exists within the bound.
  if (converged) {
    const victim = nodes.find((n) => n.inc?.ha?.role === 'active') as SimNode
    const crashedAt = world.now()
    crash(victim, false)
    const back = world.int(0, 2 * T)
    world.schedule(back, () => boot(victim))
    activeAfterMs = undefined
    // On etcd a node counts T from when it first sees a renewal (its own clock): one beat more.
    const bound = ACTIVE_WITHIN_MS + (options.lease === 'etcd' ? I : 0)
    while (world.now() < crashedAt + bound + 500 && activeAfterMs === undefined) {
      await runUntil(world.now() + 5)
      if (nodes.some((n) => !n.down && n.inc?.ha?.role === 'active')) activeAfterMs = world.now() - crashedAt
    }
    if (activeAfterMs === undefined || activeAfterMs > bound) violate(`L1: no active within ${bound} ms of the last failure (the active crashed, back after ${back} ms; ${activeAfterMs === undefined ? 'none at all' : `the first after ${activeAfterMs} ms`})`)
    converged = false
    const from = world.now()
    while (world.now() < from + CONVERGE_MS && !violations.length) {
      await runUntil(world.now() + 25)
      if (converged = convergedNow(nodes)) break
    }
    if (!converged) violate(`S3: replicas did not converge within ${CONVERGE_MS} ms of the last failure: ${describe(nodes)}`)
  }
  // L2: every commit issued once the group has settled resolves, within the bound.
  if (converged) {
    const a = nodes.find((n) => n.inc?.ha?.role === 'active')?.inc
    if (a?.ha && a.root) {
      const pending = new Set<number>()
      const ha = a.ha
      const root = a.root
      for (let i = 0; i < 5; i++) {
        const item = `L2:${i}`
        a.clock.run(() => {
          try {
            root.items.push(item)
          } catch {
            return // refused (a renewal not yet confirmed): not issued, not acknowledged
          }
          pending.add(i)
          ha.commit().then(
            (at) => {
              pending.delete(i)
              acked.push({ item, epoch: at.epoch, seq: at.seq, by: a.label, mode, standbys: at.standbys })
              if (at.standbys > 0) coveredUpTo.set(`${a.label}/${at.epoch}`, Math.max(at.seq, coveredUpTo.get(`${a.label}/${at.epoch}`) ?? -1))
            },
            (e: Error) => violate(`L2: a commit on the settled active ${a.label} failed: ${e.message}`),
          )
        })
        await runUntil(world.now() + 20)
      }
      const issuedAt = world.now()
      while (pending.size && world.now() < issuedAt + COMMIT_WITHIN_MS) await runUntil(world.now() + 25)
      if (pending.size) violate(`L2: ${pending.size} of 5 commits issued on the settled active ${a.label} did not resolve within ${COMMIT_WITHIN_MS} ms`)
    }
  }
  for (const v of table.violations) violate(`S2: ${v}`)
  for (const n of nodes) for (const e of n.inc?.clock.thrown ?? []) violate(`${n.inc?.label} threw: ${e.stack ?? e.message}`)

  const finalActive = nodes.find((n) => n.inc?.ha?.role === 'active')?.inc
  if (finalActive?.root) {
    const have = new Set(finalActive.root.items)
    const lost = mustSurvive().filter((a) => !have.has(a.item))
    if (lost.length) violate(`S1: ${lost.length} acknowledged writes are missing on the final active ${finalActive.label}: ${lost.slice(0, 5).map((l) => `${l.item} (epoch ${l.epoch} by ${l.by})`).join(', ')}`)
  }

  // Persisted mode: every node crashes at once, restarts from its disk; what was acknowledged is still there.
  if (mode === 'persisted' && !violations.length) {
    log('sim', 'every node crashes at once')
    for (const n of nodes) crash(n, false)
    await runUntil(world.now() + world.int(0, 300))
    for (const n of nodes) boot(n)
    const restartAt = world.now()
    let back = false
    while (world.now() < restartAt + CONVERGE_MS) {
      await runUntil(world.now() + 100)
      if (back = convergedNow(nodes)) break
    }
    if (!back) violate(`S3: after every node crashed at once, the group did not recover within ${CONVERGE_MS} ms: ${describe(nodes)}`)
    const again = nodes.find((n) => n.inc?.ha?.role === 'active')?.inc
    if (again?.root) {
      const have = new Set(again.root.items)
      const lost = mustSurvive().filter((a) => !have.has(a.item))
      if (lost.length) violate(`S1: after every node crashed at once, ${lost.length} persisted-acknowledged writes are missing on ${again.label}: ${lost.slice(0, 5).map((l) => l.item).join(', ')}`)
    }
  }
  for (const n of nodes) n.inc?.clock.kill()
  return { seed, config, violations, timeline, acked: acked.length, steps: world.steps, activeAfterMs }
}

/** `text`'s UTF-8 bytes read as Latin-1. */
function mojibake(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text))
}

function convergedNow(nodes: SimNode[]): boolean {
  const up = nodes.map((n) => n.inc?.ha)
  if (up.some((h) => !h)) return false
  const act = up.filter((h) => h?.role === 'active') as Understudy[]
  if (act.length !== 1) return false
  const a = act[0] as Understudy
  const want = digest(a)
  return up.every((h) => h === a || (h?.role === 'standby' && h.stats().seq === a.stats().seq && h.stats().epoch === a.epoch && digest(h) === want))
}

function digest(ha: Understudy): string {
  return canonicalDump(Object.fromEntries(ha.roots.sort().map((r) => [r, ha.root(r)])))
}

function describe(nodes: SimNode[]): string {
  return nodes
    .map((n) => {
      const h = n.inc?.ha
      return h ? `${n.inc?.label} ${h.role} e${h.stats().epoch} s${h.stats().seq}${n.inc?.clock.isPaused ? ' (paused)' : ''}` : `${n.name} (not started)`
    })
    .join('; ')
}

/** The replay command and a readable timeline of a failed run. */
export function report(r: RunResult, lines = 120): string {
  const tail = r.timeline.length > lines ? [`… ${r.timeline.length - lines} earlier lines (replay with --verbose for all)`, ...r.timeline.slice(-lines)] : r.timeline
  return [`seed ${r.seed} (${r.config}): ${r.violations.length} violation(s)`, ...r.violations.map((v) => `  ${v}`), `replay: npm run sim -- --seed ${r.seed} --verbose`, ...tail].join('\n')
}
