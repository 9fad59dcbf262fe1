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
    const activeName = await active.evaluate(() => (globalThis as unknown as { demo: { name: string } }).demo.name)
    await (active as Page).close()
    await roleIs(standby as Page, 'active')
    const tookMs = Date.now() - closedAt
    // Not just a badge flip: the event list says the active left.
    await (standby as Page).waitForFunction((n) => document.getElementById('log')?.textContent?.includes(`peer ${n} left: it was the active`), activeName, { timeout: 10_000 })
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
    // A crash says no goodbye: the survivor still reports the active as gone once its pings stop.
    await (standby as Frame).waitForFunction(() => /peer \w+ left: it was the active/.test(document.getElementById('log')?.textContent ?? ''), undefined, { timeout: 10_000 })
    // The crashed pane keeps showing where it was, not "epoch 0 · seq -1".
    expect(await active.evaluate(() => [document.getElementById('epoch')?.textContent, document.getElementById('seq')?.textContent])).not.toContain('-1')
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

  it('tabs reuse the lowest free name, so a tab opened after every tab closed restores that name\'s IndexedDB state instead of starting empty', async () => {
    const profile = await browser.newContext({ viewport: { width: 1280, height: 760 } })
    const openTab = async () => {
      const p = await profile.newPage()
      await p.goto(`${site.url}pane.html`)
      await ready(p)
      return p
    }
    const first = [await openTab(), await openTab()]
    const names = await Promise.all(first.map((p) => p.evaluate(() => (globalThis as unknown as { demo: { name: string } }).demo.name)))
    expect(names.sort()).toEqual(['tab-1', 'tab-2'])
    const [active] = await settled(first)
    await addTodo(active, 'survives closing every tab', 'home')
    for (const p of first) await p.close()
    const again = [await openTab(), await openTab()]
    const [, [other]] = await settled(again)
    for (const p of again) expect((await state(p)).todos).toEqual(['survives closing every tab'])
    expect((await state(other as Page)).restoredSeq).toBeGreaterThanOrEqual(0)
    const databases = await (other as Page).evaluate(async () => (await indexedDB.databases()).map((d) => d.name ?? '').filter((n) => n.startsWith('understudy-demo-')).sort())
    expect(databases).toEqual(['understudy-demo-tab-1', 'understudy-demo-tab-2'])
    await profile.close()
  }, 120_000)

  it('desktop and phone widths: a viewport meta, no sideways scrolling, coloured legend swatches, epoch and seq explained; screenshots', async () => {
    const shots: [string, { width: number; height: number }, boolean][] = [
      ['desktop', { width: 1280, height: 800 }, false],
      ['phone', { width: 390, height: 844 }, true],
    ]
    for (const [label, viewport, isMobile] of shots) {
      const profile = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, deviceScaleFactor: isMobile ? 2 : 1 })
      const page = await profile.newPage()
      await page.goto(site.url)
      const pane = await profile.newPage()
      await pane.goto(`${site.url}pane.html?name=${label}`)
      await ready(pane)
      for (const p of [page, pane]) {
        // Without a viewport meta, a phone lays the page out 980 px wide and shrinks it.
        const layout = await p.evaluate(() => ({ inner: window.innerWidth, scroll: document.documentElement.scrollWidth }))
        expect(layout.inner, `${label} ${p.url()}`).toBe(viewport.width)
        expect(layout.scroll, `${label} ${p.url()}: sideways scrolling`).toBeLessThanOrEqual(viewport.width)
      }
      const swatches = await pane.evaluate(() => [...document.querySelectorAll('.legend .swatch')].map((s) => getComputedStyle(s).backgroundColor))
      expect(swatches).toEqual(['rgb(31, 138, 76)', 'rgb(184, 189, 199)', 'rgb(192, 57, 43)'])
      expect(await pane.textContent('.explain')).toMatch(/epoch.*takeover.*seq.*batch/s)
      await page.screenshot({ path: join(ARTIFACTS, `demo-web-${label}.png`), fullPage: true })
      await pane.screenshot({ path: join(ARTIFACTS, `demo-web-pane-${label}.png`), fullPage: true })
      await profile.close()
    }
  }, 120_000)
})
