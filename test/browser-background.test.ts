/**
 * Issue 15, item 4: an active tab in the background, in a real Chromium.
 *
 * Two tabs in one window: when the user opens a second tab, the first is
 * hidden and Chromium throttles its timers (to one wake-up a second, and
 * less after five minutes). The active's pings then arrive a second apart or
 * more, and a standby that declares a peer lost after 1 s of silence dropped
 * the active for good. Here the active tab stays in the background for two
 * minutes while it commits in bursts with idle gaps (only pings in between, as
 * in an idle app): every commit must reach the visible standby, the standby
 * must never see the active leave, and once the active tab is closed the
 * standby takes over with every acknowledged item.
 *
 * Driven over raw CDP (support/cdp.ts): Playwright keeps its pages visible.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveChromium } from './support/chromium.js'
import { launchCdpChromium, type CdpBrowser, type CdpTab } from './support/cdp.js'
import { bundlePage, serve } from './support/serve.js'

/** How long the active stays in the background, and how often it commits a burst. */
const BACKGROUND_MS = 120_000
const ROUND_MS = 4000
const BURST = 3

interface TabState {
  role: string
  epoch: number
  todos: string[]
  errors: string[]
  peers: { peer: string; up: boolean; at: number }[]
  standbys: number
  visibility: string
}
const state = (t: CdpTab) => t.evaluate<TabState>('electedTest.state()')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.runIf(haveChromium())('a background tab (real Chromium over CDP)', () => {
  let browser: CdpBrowser
  let site: { url: string; close(): Promise<void> }
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-background-'))
    await bundlePage(new URL('./browser/elected.ts', import.meta.url).pathname, join(dir, 'elected'))
    await bundlePage(new URL('./browser/election-worker.ts', import.meta.url).pathname, join(dir, 'election-worker'))
    site = await serve(dir)
    browser = await launchCdpChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await site?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it(
    'a background active tab keeps its standbys for 2 minutes: commits flow and failover keeps every acknowledged item',
    async () => {
      const channel = `bc-${Math.random().toString(36).slice(2)}`
      const lease = `lease-${Math.random().toString(36).slice(2)}`
      // The web demo's timings: I = 100 ms, T = 400 ms, ping every 250 ms, a peer lost after 1 s of silence.
      const startNode = (t: CdpTab, id: string) =>
        t.evaluate(`electedTest.start(${JSON.stringify(channel)}, ${JSON.stringify(lease)}, ${JSON.stringify(id)}, 100, 400, true, { pingMs: 250, timeoutMs: 1000 })`)
      const ready = 'typeof electedTest === "object"'

      const active = await browser.newTab(`${site.url}elected/`)
      await active.waitFor(ready)
      await startNode(active, 'first')
      await active.waitFor('electedTest.state().role === "active"')
      // The user opens another tab in the same window: the active tab goes to the background.
      const standby = await browser.newTab(`${site.url}elected/`)
      await standby.waitFor(ready)
      await startNode(standby, 'second')
      await active.waitFor('electedTest.state().standbys === 1')
      expect((await state(active)).visibility).toBe('hidden')
      expect((await state(standby)).visibility).toBe('visible')
      // The premise: the background tab's timers are throttled (a 100 ms timer chain runs about once a second,
      // aligned to whole seconds: the first wait may be shorter).
      const gaps = await active.evaluate<number[]>(
        'new Promise((done) => { const at = [performance.now()]; const next = () => { at.push(performance.now()); if (at.length < 5) setTimeout(next, 100); else done(at.slice(1).map((t, i) => t - at[i])) }; setTimeout(next, 100) })',
      )
      expect(Math.min(...gaps.slice(1))).toBeGreaterThan(500)

      const acked: string[] = []
      const problems: string[] = []
      const started = Date.now()
      let rounds = 0
      for (let round = 0; round < BACKGROUND_MS / ROUND_MS && Date.now() - started < BACKGROUND_MS + 10_000; round++) {
        rounds++
        const due = started + (round + 1) * ROUND_MS
        const r = await active.evaluate<{ acked: string[]; failed: string[] }>(`electedTest.burst('round ${round}', ${BURST}, 3000)`)
        acked.push(...r.acked)
        for (const f of r.failed) problems.push(`at ${Date.now() - started} ms: ${f}`)
        // The visible standby holds what was acknowledged (the standby's acknowledgement is what resolved the commit).
        const s = await state(standby)
        const missing = r.acked.filter((t) => !s.todos.includes(t))
        if (missing.length) problems.push(`at ${Date.now() - started} ms: the standby lacks ${missing.join(', ')}`)
        const a = await state(active)
        if (a.visibility !== 'hidden') problems.push(`at ${Date.now() - started} ms: the active tab is ${a.visibility}`)
        if (a.role !== 'active' || s.role !== 'standby') problems.push(`at ${Date.now() - started} ms: roles ${a.role}/${s.role}`)
        await sleep(Math.max(0, due - Date.now()))
      }
      const ranMs = Date.now() - started
      const s = await state(standby)
      const a = await state(active)
      const left = s.peers.filter((p) => !p.up).map((p) => `${p.peer} left at ${p.at - started} ms`)
      console.log(
        `background tab: ${ranMs} ms in the background, ${rounds} bursts, ${acked.length} commits acknowledged, ${problems.length} problems; standby saw ${left.length} departures; active counted ${a.standbys} standby`,
      )

      // Failover: the background active tab is closed; the visible standby takes over with every acknowledged item.
      const closedAt = Date.now()
      await active.close()
      await standby.waitFor('electedTest.state().role === "active"', 10_000)
      const after = await state(standby)
      console.log(`background tab: the standby was active ${Date.now() - closedAt} ms after the background active tab closed`)

      expect(ranMs).toBeGreaterThanOrEqual(BACKGROUND_MS - ROUND_MS)
      expect(problems).toEqual([])
      expect(left).toEqual([])
      expect(acked.length).toBe(rounds * BURST)
      expect(after.todos.filter((t) => acked.includes(t))).toEqual(acked)
      expect(after.errors).toEqual([])
      await standby.close()
    },
    200_000,
  )
})
