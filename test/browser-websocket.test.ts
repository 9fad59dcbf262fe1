/**
 * Group authentication where users run it: a real Chromium page (WebCrypto,
 * asynchronous) as the standby of a Node active over WebSocket, with a key —
 * HMAC and AES-GCM — and a page holding the wrong key, which never receives
 * the state.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { Understudy } from 'understudy-ha'
import { webSocketServer } from 'understudy-ha/adapters/websocket/server'
import { haveChromium, launchChromium } from './support/chromium.js'
import { TEST_KEY } from './support/group-key.js'
import { bundlePage, serve } from './support/serve.js'

declare const wsTest: {
  start(url: string, key: string, encrypt: boolean): Promise<void>
  state(): { role: string; root: string; errors: string[]; subtle: boolean }
  close(): Promise<void>
}

describe.skipIf(!haveChromium())('a browser standby over an authenticated WebSocket (headless Chromium)', () => {
  let browser: Browser
  let site: { url: string; close(): Promise<void> }
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-ws-browser-'))
    await bundlePage(new URL('./browser/ws-page.ts', import.meta.url).pathname, dir)
    site = await serve(dir)
    browser = await launchChromium()
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await site?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function page(): Promise<Page> {
    const p = await browser.newPage()
    await p.goto(site.url)
    await p.waitForFunction(() => typeof (globalThis as { wsTest?: unknown }).wsTest === 'object')
    return p
  }

  for (const encrypt of [false, true])
    it(`the page (WebCrypto) proves the key and converges to the Node active, ${encrypt ? 'encrypted (AES-GCM)' : 'authenticated (HMAC)'}`, async () => {
      const server = webSocketServer({ key: TEST_KEY, encrypt, id: 'node', port: 0 })
      const active = await Understudy.start({ group: 'browser-ws', transport: server, role: 'active' })
      const p = await page()
      try {
        const root = active.register('r', { items: [] as string[], note: 'déjà vu 🎭' })
        await p.evaluate(([url, key, enc]) => wsTest.start(url as string, key as string, enc as boolean), [`ws://127.0.0.1:${server.port}/`, TEST_KEY, encrypt] as const)
        await p.waitForFunction(() => wsTest.state().root !== 'null', undefined, { timeout: 10_000 })
        for (let i = 0; i < 50; i++) {
          root.items.push(`item ${i}`)
          await active.commit()
        }
        await p.waitForFunction((n) => (JSON.parse(wsTest.state().root) as { items: string[] }).items.length === n, 50, { timeout: 10_000 })
        const state = await p.evaluate(() => wsTest.state())
        expect(state.subtle).toBe(true)
        expect(JSON.parse(state.root)).toEqual(JSON.parse(JSON.stringify(root)))
        expect(state.errors).toEqual([])
        expect(active.stats().standbys).toBe(1)
      } finally {
        await p.evaluate(() => wsTest.close()).catch(() => undefined)
        await p.close()
        await active.close()
      }
    })

  it('a page holding another key is refused: it never becomes a standby and receives no state', async () => {
    const server = webSocketServer({ key: TEST_KEY, id: 'node', port: 0, handshakeTimeoutMs: 1000 })
    const active = await Understudy.start({ group: 'browser-ws', transport: server, role: 'active' })
    const errors: string[] = []
    active.on('error', (e) => errors.push(e.error.name))
    const p = await page()
    try {
      active.register('r', { secret: 'payroll' })
      await active.commit()
      await p.evaluate((url) => wsTest.start(url, 'another-group-key-0123456789', false), `ws://127.0.0.1:${server.port}/`)
      await p.waitForFunction(() => wsTest.state().errors.some((e) => e.startsWith('AuthError')), undefined, { timeout: 10_000 })
      expect(await p.evaluate(() => wsTest.state().root)).toBe('null')
      expect(active.stats().standbys).toBe(0)
      expect(errors).toContain('AuthError')
    } finally {
      await p.evaluate(() => wsTest.close()).catch(() => undefined)
      await p.close()
      await active.close()
    }
  })
})
