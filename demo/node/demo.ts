/**
 * `npm run demo`: failover you can watch, on embedded defaults.
 *
 * Two Node processes (an active and a standby) run the counter example on
 * 127.0.0.1 over TCP, with a file lease and filesystem checkpoints in a temp
 * folder, under the supervisor. The demo kills the active with SIGKILL, shows
 * the standby taking over and the count continuing from the last acknowledged
 * value, lets the supervisor restart the killed process (it rejoins as the
 * standby), then performs a planned handover. It prints a timeline and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Supervisor } from 'understudy-ha/adapters/supervisor'
import { freePort, jsonLines } from '../../examples/counter/run.js'

interface NodeEvent {
  id: string
  event: string
  at: number
  role?: string
  epoch?: number
  count?: number
  seq?: number
  acked?: number
  found?: number
  orders?: number
  shared?: boolean
  blackoutMs?: number
  to?: string
  pid?: number
  restoredSeq?: number
  error?: string
}

export interface DemoResult {
  /** Every count reported, in order, with the node that wrote it. */
  counts: { id: string; count: number }[]
  failover: { killed: string; lastAcked: number; next: string; found: number; firstCount: number; ms: number }
  restart: { id: string; rejoinedAs: string; syncedSeq: number }
  handover: { from: string; to: string; blackoutMs: number; firstCount: number; lastBefore: number }
  /** Every count's orders graph kept customers shared (one object per customer). */
  sharedRefs: boolean
}

export interface DemoOptions {
  /** Counting interval (default 250 ms). */
  everyMs?: number
  /** Where the timeline goes (default: stdout). */
  print?: (line: string) => void
  /** Gives up with an error after this long (default 60 s). */
  timeoutMs?: number
}

const NODE = new URL('./node.ts', import.meta.url).pathname

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const print = options.print ?? ((line: string) => console.log(line))
  const everyMs = options.everyMs ?? 250
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  const dir = await mkdtemp(join(tmpdir(), 'understudy-demo-'))
  const port = await freePort()
  const t0 = Date.now()
  const stamp = (at: number) => `+${String(at - t0).padStart(5)} ms`
  const events: NodeEvent[] = []
  const waiters = new Set<{ test: (e: NodeEvent) => boolean; resolve: (e: NodeEvent) => void }>()
  const line = (at: number, who: string, text: string) => print(`${stamp(at)}  ${who.padEnd(10)} ${text}`)

  const supervisor = new Supervisor({
    processes: ['a', 'b'].map((id, i) => ({ name: id, command: process.execPath, args: ['--import', 'tsx', NODE, id, String(port), i === 0 ? 'listen' : 'connect', dir, String(everyMs)] })),
    // Restart after the lease timeout (T = 400 ms), so the standby is normally elected before the killed node is back.
    restart: { backoff: { initialMs: 1000, jitter: 0 } },
    stdio: 'pipe',
    stopTimeoutMs: 3000,
  })
  supervisor.on('start', ({ name, pid, attempt }) => {
    if (attempt) line(Date.now(), 'supervisor', `restarted ${name} (pid ${pid})`)
    const child = supervisor.child(name)
    jsonLines<NodeEvent>(child?.stdout as NodeJS.ReadableStream, (e) => {
      events.push(e)
      describe(e)
      for (const w of [...waiters]) if (w.test(e)) waiters.delete(w), w.resolve(e)
    })
    child?.stderr?.on('data', (d: Buffer) => process.stderr.write(d))
  })
  supervisor.on('exit', ({ name, signal, code }) => line(Date.now(), 'supervisor', `${name} ${signal ? `was killed by ${signal}` : `exited (code ${code})`}`))

  function describe(e: NodeEvent): void {
    const who = `node ${e.id}`
    if (e.event === 'role') line(e.at, who, `role → ${e.role} (epoch ${e.epoch})`)
    else if (e.event === 'started') line(e.at, who, `process started (pid ${e.pid})${(e.restoredSeq ?? -1) >= 0 ? `, restored its checkpoint up to seq ${e.restoredSeq}` : ''}`)
    else if (e.event === 'synced') line(e.at, who, `synced from the active as ${e.role} (snapshot at seq ${e.seq})`)
    else if (e.event === 'takeover') line(e.at, who, `takes over: the counter section holds ${e.found}, ${e.orders} orders`)
    else if (e.event === 'count') line(e.at, who, `count ${String(e.count).padStart(3)}   epoch ${e.epoch}  seq ${e.seq}  acked by standbys: ${(e.acked ?? -1) >= 0 ? `seq ${e.acked}` : 'none yet'}  orders ${e.orders}`)
    else if (e.event === 'handover') line(e.at, who, `handed over to ${e.to}: epoch ${e.epoch}, write blackout ${e.blackoutMs?.toFixed(2)} ms`)
    else if (e.event === 'handover-failed' || e.event === 'handover-refused') line(e.at, who, `${e.event}: ${e.error ?? e.role}`)
  }

  /** Waits for an event, printing a progress line every 2 s while it takes long. */
  const next = (test: (e: NodeEvent) => boolean, what: string) =>
    new Promise<NodeEvent>((resolve, reject) => {
      const since = Date.now()
      const progress = setInterval(() => print(`           … waiting for ${what} (${((Date.now() - since) / 1000).toFixed(0)} s)`), 2000)
      const timer = setTimeout(() => done(new Error(`demo: no ${what} before the deadline`)), Math.max(0, deadline - Date.now()))
      const w = { test, resolve: (e: NodeEvent) => done(undefined, e) }
      const done = (err?: Error, e?: NodeEvent) => {
        clearInterval(progress)
        clearTimeout(timer)
        waiters.delete(w)
        if (err) reject(err)
        else resolve(e as NodeEvent)
      }
      waiters.add(w)
    })
  const counts = (id: string, n: number) => {
    let seen = 0
    return next((e) => e.id === id && e.event === 'count' && ++seen >= n, `${n} counts from node ${id}`)
  }
  const lastCount = (id: string) => events.filter((e) => e.id === id && e.event === 'count').at(-1) as NodeEvent

  try {
    print(`Understudy demo: two Node processes on 127.0.0.1:${port}, checkpoints in ${dir}\n`)
    const elected = next((e) => e.event === 'role' && e.role === 'active', 'an elected active')
    const synced = next((e) => e.event === 'synced', 'the standby to sync')
    supervisor.start()
    const first = (await elected).id
    await synced
    await counts(first, 5)

    print('\n— kill -9 the active —')
    const before = lastCount(first)
    const pid = supervisor.child(first)?.pid as number
    const killedAt = Date.now()
    line(killedAt, 'demo', `kill -9 node ${first} (pid ${pid}); its last count was ${before.count}`)
    // Whoever is elected next: normally the standby. If the killed node is back first (the supervisor restarts it)
    // and its checkpoint holds a batch the standby never received, it is the more up-to-date one and wins instead.
    const promoted = next((e) => e.event === 'role' && e.role === 'active' && e.at >= killedAt, 'a new active')
    const took = next((e) => e.event === 'takeover' && e.at >= killedAt, 'the takeover')
    // The node that is not the new active syncs from it as the standby (it may happen before the takeover's first count).
    const rejoined = next((e) => e.event === 'synced' && e.at >= killedAt, 'the other node to sync as standby')
    process.kill(pid, 'SIGKILL')
    const p = await promoted
    const t = await took
    const second = p.id
    const other = second === 'a' ? 'b' : 'a'
    const firstAfter = await next((e) => e.id === second && e.event === 'count', 'the next count')
    line(p.at, 'demo', `failover took ${p.at - killedAt} ms (lease timeout T = 400 ms); the count went on from ${t.found} to ${firstAfter.count}`)
    if (second === first) line(p.at, 'demo', `node ${first} came back before the lease expired, with a checkpoint further along than the standby's, and was elected`)

    print(`\n— the supervisor restarts the killed process; node ${other} is the standby —`)
    const r = await rejoined
    await counts(second, 4)

    print('\n— planned handover —')
    const lastBefore = lastCount(second).count as number
    const handed = next((e) => e.id === second && e.event === 'handover', 'the handover')
    const resumed = next((e) => e.id === other && e.event === 'count', `node ${other} to count again`)
    supervisor.signal('SIGUSR2', second)
    const h = await handed
    const again = await resumed
    await counts(other, 3)

    print('\n— stop —')
    await supervisor.stop()
    const all = events.filter((e) => e.event === 'count')
    const result: DemoResult = {
      counts: all.map((e) => ({ id: e.id, count: e.count as number })),
      failover: { killed: first, lastAcked: before.count as number, next: second, found: t.found as number, firstCount: firstAfter.count as number, ms: p.at - killedAt },
      restart: { id: other, rejoinedAs: r.role as string, syncedSeq: r.seq as number },
      handover: { from: second, to: other, blackoutMs: h.blackoutMs as number, firstCount: again.count as number, lastBefore },
      sharedRefs: all.every((e) => e.shared === true),
    }
    print(`
Summary
  failover after kill -9 : ${result.failover.ms} ms; count ${result.failover.lastAcked} (last acknowledged) → ${result.failover.firstCount}, no reset
  restart                : node ${first} came back under the supervisor; node ${other} synced as ${result.restart.rejoinedAs} (seq ${result.restart.syncedSeq})
  planned handover       : ${second} → ${other}, write blackout ${result.handover.blackoutMs.toFixed(2)} ms; count ${lastBefore} → ${result.handover.firstCount}
  counts                 : ${result.counts.map((c) => c.count).join(' ')}`)
    return result
  } finally {
    await supervisor.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runDemo()
  process.exit(0)
}
