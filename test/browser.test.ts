import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { haveChromium, launchChromium } from './support/chromium.js'
import { bundlePage, serve } from './support/serve.js'

type TestApi = {
  start(role: string, channel: string): Promise<void>
  run(seed: number, ops: number): Promise<{ seq: number; dump: string }>
  state(): { seq: number; dump: string; errors: string[]; role: string; peers: string[] }
}
declare const understudyTest: TestApi

describe.skipIf(!haveChromium())('real browser (headless Chromium)', () => {
  let browser: Browser
  let tabs: BrowserContext
  let site: { url: string; close(): Promise<void> }
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-browser-'))
    await bundlePage(new URL('./browser/page.ts', import.meta.url).pathname, dir)
    site = await serve(dir)
    browser = await launchChromium()
    // One context = one browser profile: its pages are tabs that share BroadcastChannel, storage and locks.
    tabs = await browser.newContext()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await site?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function page(): Promise<Page> {
    const p = await tabs.newPage()
    await p.goto(site.url)
    await p.waitForFunction(() => typeof (globalThis as { understudyTest?: unknown }).understudyTest === 'object')
    return p
  }

  it('BroadcastChannel between two pages: the standby page converges to the active page (invariant 1)', async () => {
    const channel = `bc-${Math.random().toString(36).slice(2)}`
    const standby = await page()
    const active = await page()
    await standby.evaluate((c) => understudyTest.start('standby', c), channel)
    await active.evaluate((c) => understudyTest.start('active', c), channel)
    const done = await active.evaluate(() => understudyTest.run(11, 300))
    const seen = await standby.evaluate(() => understudyTest.state())
    expect(seen.role).toBe('standby')
    expect(seen.seq).toBe(done.seq)
    expect(seen.dump).toBe(done.dump)
    expect(seen.errors).toEqual([])
    // Closing the active tab says goodbye on pagehide: the standby hears it at once, not after a ping timeout.
    await active.close({ runBeforeUnload: true })
    await standby.waitForFunction(() => understudyTest.state().peers.includes('active down'), undefined, { timeout: 900 })
    await standby.close()
  }, 60_000)
})
