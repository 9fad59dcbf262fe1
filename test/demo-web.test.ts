/**
 * The web demo in a real Chromium (Debian's, through playwright-core): the
 * built demo/web, served on 127.0.0.1. Two pages share one browser context,
 * as two tabs of one profile do (BroadcastChannel, Web Locks and IndexedDB
 * are per profile).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core'
import { haveChromium, launchChromium } from './support/chromium.js'
import { serve } from './support/serve.js'

const ROOT = new URL('../', import.meta.url).pathname
/** Screenshots land here (kept out of git). */
const ARTIFACTS = join(ROOT, 'test-artifacts')

interface DemoState {
  role: string
  epoch: number
  todos: string[]
  committed: string[]
  failoverMs: number | undefined
  restoredSeq: number
  stats: { snapshots: number; standbys: number }
}
type Where = Page | Frame
const state = (p: Where) => p.evaluate(() => (globalThis as unknown as { demo: { state(): DemoState } }).demo.state())
const ready = (p: Where) => p.waitForFunction(() => typeof (globalThis as { demo?: unknown }).demo === 'object', undefined, { timeout: 15_000 })
const roleIs = (p: Where, role: string, timeout = 15_000) =>
  p.waitForFunction((r) => (globalThis as unknown as { demo: { state(): DemoState } }).demo.state().role === r, role, { timeout, polling: 20 })

/** Waits until one of `nodes` is active and every other one is a synced standby; returns [active, standbys]. */
async function settled<T extends Where>(nodes: T[]): Promise<[T, T[]]> {
  for (let i = 0; i < 300; i++) {
    const states = await Promise.all(nodes.map(state))
    const active = states.findIndex((s) => s.role === 'active')
    if (active >= 0 && states.every((s, k) => k === active || (s.role === 'standby' && s.stats.snapshots > 0)) && states[active]?.stats.standbys === nodes.length - 1)
      return [nodes[active] as T, nodes.filter((_, k) => k !== active)]
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no settled pair: ${JSON.stringify(await Promise.all(nodes.map(state)))}`)
}

/** Adds a todo through the page's form, as a person would, and waits until the standby acknowledged it. */
async function addTodo(p: Where, title: string, tag: string): Promise<void> {
  await p.fill('#title', title)
  await p.selectOption('#tag', tag)
  await p.click('#add button[type=submit]')
  await p.waitForFunction((t) => (globalThis as unknown as { demo: { state(): DemoState } }).demo.state().committed.includes(t), title, { timeout: 10_000 })
}

describe.runIf(haveChromium())('web demo in Chromium', () => {
  let dir: string
  let site: Awaited<ReturnType<typeof serve>>
  let browser: Browser
  let tabs: BrowserContext

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-web-demo-'))
    await build({ configFile: join(ROOT, 'demo/web/vite.config.ts'), logLevel: 'warn', build: { outDir: dir } })
    site = await serve(dir)
    browser = await launchChromium()
    tabs = await browser.newContext({ viewport: { width: 1280, height: 760 } })
    await mkdir(ARTIFACTS, { recursive: true })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await site?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const openPane = async (name: string) => {
    const p = await tabs.newPage()
    await p.goto(`${site.url}pane.html?name=${name}`)
    await ready(p)
    return p
  }

  it('two tabs: edit todos in the active, close it; the other turns active with every acknowledged todo; reload both: state restored from IndexedDB', async () => {
    const [active, [standby]] = await settled([await openPane('left'), await openPane('right')])
    const titles = ['buy milk', 'write the report', 'call the plumber', 'fix the bike', 'book flights']
    for (const [i, t] of titles.entries()) await addTodo(active, t, ['home', 'work', 'urgent'][i % 3] as string)
    const acked = (await state(active)).committed
    expect(acked).toEqual(titles)
    expect((await state(standby as Page)).todos).toEqual(titles)
    expect(await (standby as Page).evaluate(() => (globalThis as unknown as { demo: { sharedTags(): boolean } }).demo.sharedTags())).toBe(true)

    const closedAt = Date.now()
    await (active as Page).close()
    await roleIs(standby as Page, 'active')
    const tookMs = Date.now() - closedAt
    const after = await state(standby as Page)
    for (const t of acked) expect(after.todos).toContain(t)
    console.log(`web demo: the standby tab was active ${tookMs} ms after the active tab closed`)

    // Both tabs go away; both come back. Nothing is live, so the todos can only come from IndexedDB.
    await (standby as Page).close()
    const [again, others] = await settled([await openPane('left'), await openPane('right')])
    const restored = await state(again)
    expect(restored.restoredSeq).toBeGreaterThanOrEqual(0)
    expect(restored.todos).toEqual(acked)
    expect((await state(others[0] as Page)).todos).toEqual(acked)
    for (const p of [again, ...others]) await (p as Page).close()
  }, 120_000)

  it('ten handovers in a row (election in a Web Worker): an active within 2·T after each, every committed todo on it', async () => {
    const T = 400 // the demo's heartbeat: I = 100 ms, T = 400 ms
    let [active, [standby]] = await settled([await openPane('left'), await openPane('right')])
    const acked: string[] = []
    const took: number[] = []
    for (let h = 0; h < 10; h++) {
      const title = `handover ${h}`
      await addTodo(active, title, 'work')
      acked.push(title)
      const clickedAt = Date.now()
      await active.click('#handover')
      await roleIs(standby as Page, 'active', 2 * T + 1000)
      took.push(Date.now() - clickedAt)
      expect((await state(standby as Page)).todos.slice(-acked.length)).toEqual(acked)
      ;[active, [standby]] = await settled([active, standby as Page])
    }
    console.log(`web demo handovers: the other tab active ${took.join(', ')} ms after the click (test-side, polling every 20 ms)`)
    expect(Math.max(...took)).toBeLessThanOrEqual(2 * T + 500)
    for (const p of [active, standby as Page]) await p.close()
  }, 120_000)

  it('the two-pane view: "crash active", "hang active" and "handover" each leave one active with every acknowledged todo; screenshot', async () => {
    const page = await tabs.newPage()
    await page.goto(site.url)
    const frames = () => page.frames().filter((f) => /pane\.html\?name=/.test(f.url()))
    await page.waitForFunction(() => document.querySelectorAll('iframe').length === 2)
    for (let i = 0; i < 100 && frames().length < 2; i++) await new Promise((r) => setTimeout(r, 50))
    for (const f of frames()) await ready(f)
    let [active, [standby]] = await settled(frames())
    await addTodo(active, 'shared tags demo', 'urgent')
    const acked = (await state(active)).committed

    // Crash: the worker and the channel stop with no goodbye; the other pane takes over and shows how long it took.
    await active.click('#crash')
    await roleIs(standby as Frame, 'active')
    expect((await state(standby as Frame)).todos).toEqual(acked)
    await (standby as Frame).waitForFunction(() => document.getElementById('failover')?.textContent?.includes("after the active's crash"))
    await page.screenshot({ path: join(ARTIFACTS, 'demo-web-after-crash.png'), fullPage: true })

    // The crashed pane reloads and rejoins as the standby.
    // The frame keeps its URL across the reload: wait for its new document, not for the old one's demo object.
    const crashed = active
    const reloaded = page.waitForEvent('framenavigated', { predicate: (f) => f === crashed })
    await crashed.click('#reload')
    await reloaded
    for (const f of frames()) await ready(f)
    ;[active, [standby]] = await settled(frames())

    // Hang: the active's main thread stops for 3 s; its worker notices and lets the lease go; it wakes fenced, as standby.
    void active.click('#hang', { timeout: 30_000 }).catch(() => undefined)
    await roleIs(standby as Frame, 'active')
    await roleIs(active, 'standby')
    ;[active, [standby]] = await settled(frames())
    expect((await state(active)).todos).toEqual(acked)

    // Handover: a planned switchover.
    await active.click('#handover')
    await roleIs(standby as Frame, 'active')
    await roleIs(active, 'standby')
    await page.screenshot({ path: join(ARTIFACTS, 'demo-web-two-pane.png'), fullPage: true })
    expect((await state(standby as Frame)).todos).toEqual(acked)
    await page.close()
  }, 120_000)
})
