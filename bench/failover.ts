/**
 * Failover and handover, real clock, ≥ 20 trials each (median and p99):
 * - handover blackout: last write accepted on the old active → first write accepted on the new one;
 * - hung active: its heartbeat stops (process alive) → the standby is active, against T + I;
 * - crash over TCP: `kill -9` of the active Node process → the standby process is active;
 * - tab close in Chromium: closing the active tab → the other tab is active (Web Locks lease).
 */
import { fork } from 'node:child_process'
import { TEST_KEY } from '../test/support/group-key.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLeaseStore, Understudy, realClock, type Transport } from '../src/index.js'
import { broadcastChannel } from '../adapters/broadcast-channel.js'
import { tcp } from '../adapters/tcp.js'

const TRIALS = Number(process.env.TRIALS ?? 20)
const I = 50
const T = 200

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number
const row = (name: string, xs: number[], target: string) =>
  console.log(`| ${name} | ${pct(xs, 0.5).toFixed(2)} | ${pct(xs, 0.99).toFixed(2)} | ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} | ${xs.length} | ${target} |`)

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Two elected nodes in this process; resolves once one is active and the other has its state. */
async function pair(kind: 'broadcast-channel' | 'tcp') {
  const lease = new MemoryLeaseStore(realClock)
  let ta: Transport
  let tb: Transport
  if (kind === 'tcp') {
    const port = await freePort()
    ta = tcp({ key: TEST_KEY, id: 'a', listen: { port } })
    tb = tcp({ key: TEST_KEY, id: 'b', connect: { port }, backoff: { initialMs: 5, maxMs: 50 } })
  } else {
    const name = `fo-${Math.random()}`
    ta = broadcastChannel(name, { id: 'a' })
    tb = broadcastChannel(name, { id: 'b' })
  }
  const a = await Understudy.start({ group: 'g', transport: ta, lease, heartbeat: { intervalMs: I, timeoutMs: T } })
  const b = await Understudy.start({ group: 'g', transport: tb, lease, heartbeat: { intervalMs: I, timeoutMs: T } })
  while (a.role !== 'active' && b.role !== 'active') await new Promise((r) => setTimeout(r, 5))
  const [act, stb] = a.role === 'active' ? [a, b] : [b, a]
  const root = act.register('app', { n: 0 })
  stb.register('app', { n: 0 })
  await act.commit()
  return { act, stb, root }
}

async function handoverBlackout(kind: 'broadcast-channel' | 'tcp'): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < TRIALS + 3; i++) {
    const { act, stb, root } = await pair(kind)
    root.n = 1
    await act.commit()
    let promotedAt = 0
    stb.on('role', (e) => e.role === 'active' && (promotedAt = performance.now()))
    const lastWrite = performance.now()
    await act.handover()
    ;(stb.root('app') as { n: number }).n = 2 // first write on the new active
    if (i >= 3) out.push(promotedAt - lastWrite)
    await act.close()
    await stb.close()
  }
  return out
}

async function hungFailover(): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < TRIALS; i++) {
    const { act, stb } = await pair('broadcast-channel')
    const hungAt = performance.now()
    ;(act as unknown as { node: { elector: { frozen: boolean } } }).node.elector.frozen = true
    await new Promise<void>((r) => stb.on('role', (e) => e.role === 'active' && r()))
    out.push(performance.now() - hungAt)
    await act.close()
    await stb.close()
  }
  return out
}

async function killFailover(): Promise<number[]> {
  const out: number[] = []
  const root = new URL('../', import.meta.url)
  for (let i = 0; i < TRIALS; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-bench-'))
    const lease = join(dir, 'lease.json')
    const port = await freePort()
    const start = (id: string, mode: string) => {
      const child = fork(new URL('test/e2e/ha-node.ts', root), [id, String(port), mode, lease], { execArgv: ['--import', 'tsx'], cwd: root, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
      const seen: { role?: string; at?: number; ready?: boolean; acked?: number }[] = []
      child.on('message', (m: (typeof seen)[number]) => seen.push(m))
      const until = async (pred: (m: (typeof seen)[number]) => boolean) => {
        for (let k = 0; k < 2000; k++) {
          const m = seen.find(pred)
          if (m) return m
          await new Promise((r) => setTimeout(r, 5))
        }
        throw new Error('timed out')
      }
      return { child, until }
    }
    const a = start('a', 'listen')
    await a.until((m) => m.role === 'active')
    const b = start('b', 'connect')
    await b.until((m) => !!m.ready)
    a.child.send({ cmd: 'write', from: 0, count: 5 })
    await a.until((m) => m.acked === 4)
    const killedAt = Date.now()
    a.child.kill('SIGKILL')
    const promoted = await b.until((m) => m.role === 'active')
    out.push((promoted.at as number) - killedAt)
    b.child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
  return out
}

async function tabCloseFailover(): Promise<number[] | undefined> {
  const { haveChromium, launchChromium } = await import('../test/support/chromium.js')
  if (!haveChromium()) return undefined
  const { bundlePage, serve } = await import('../test/support/serve.js')
  const dir = await mkdtemp(join(tmpdir(), 'understudy-bench-'))
  await bundlePage(new URL('../test/browser/elected.ts', import.meta.url).pathname, dir)
  const site = await serve(dir)
  const browser = await launchChromium()
  const out: number[] = []
  type Api = { start(c: string, l: string, id: string): Promise<void>; state(): { role: string; roles: { role: string; at: number }[] } }
  const api = () => (globalThis as unknown as { electedTest: Api }).electedTest
  for (let i = 0; i < TRIALS; i++) {
    const tabs = await browser.newContext()
    const pages = await Promise.all([tabs.newPage(), tabs.newPage()])
    const names = [`c-${Math.random()}`, `l-${Math.random()}`]
    for (const [k, p] of pages.entries()) {
      await p.goto(site.url)
      await p.waitForFunction(() => typeof (globalThis as { electedTest?: unknown }).electedTest === 'object')
      await p.evaluate(([c, l, id]) => (globalThis as unknown as { electedTest: Api }).electedTest.start(c as string, l as string, id as string), [...names, `t${k}`])
    }
    let act = pages[0] as (typeof pages)[number]
    for (let k = 0; k < 400; k++) {
      const roles = await Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as { electedTest: Api }).electedTest.state().role)))
      const at = roles.indexOf('active')
      if (at >= 0) {
        act = pages[at] as (typeof pages)[number]
        break
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    const stb = pages.find((p) => p !== act) as (typeof pages)[number]
    const closedAt = Date.now()
    await act.close()
    await stb.waitForFunction(() => (globalThis as unknown as { electedTest: Api }).electedTest.state().role === 'active', undefined, { timeout: 5000 })
    const promotedAt = await stb.evaluate(() => (globalThis as unknown as { electedTest: Api }).electedTest.state().roles.find((r) => r.role === 'active')?.at as number)
    out.push(promotedAt - closedAt)
    await tabs.close()
  }
  void api
  await browser.close()
  await site.close()
  await rm(dir, { recursive: true, force: true })
  return out
}

export async function runFailover(): Promise<void> {
  console.log(`\nFailover and handover: real clock, I = ${I} ms, T = ${T} ms, ${TRIALS} trials each (ms)\n`)
  console.log('| measure | p50 | p99 | min–max | trials | target |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  row('handover blackout, BroadcastChannel (Node)', await handoverBlackout('broadcast-channel'), '≤ 5 ms p50')
  row('handover blackout, TCP loopback', await handoverBlackout('tcp'), '≤ 5 ms p50')
  row('hung active → standby active', await hungFailover(), `≤ T + I = ${T + I} ms`)
  row('kill -9 of the active process (TCP, file lease)', await killFailover(), `≤ T + I = ${T + I} ms`)
  const tabs = await tabCloseFailover()
  if (tabs) row('Chromium: close the active tab (Web Locks)', tabs, '≤ 50 ms p50')
  else console.log('| Chromium: close the active tab | n/a: no /usr/bin/chromium | | | | |')
}
