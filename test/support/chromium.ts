import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** The Chromium the browser tests drive: `CHROMIUM_PATH`, else Debian's (`apt-get install chromium`; `.ci/run` installs it). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Launch flags that work in this headless, sandbox-less environment. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** What to print, loudly, when the browser tests cannot run. */
export function missingChromiumNotice(): string {
  const line = '!'.repeat(78)
  return [
    line,
    `!! BROWSER TESTS SKIPPED: no Chromium at ${CHROMIUM}`,
    '!! The real-Chromium tests (test/browser.test.ts, test/demo-web.test.ts) did not run.',
    '!! Install it (Debian/Ubuntu: apt-get install chromium) or point CHROMIUM_PATH at a',
    '!! Chromium or Chrome binary. With CI set, a missing browser fails the run instead.',
    line,
  ].join('\n')
}

/** True when a real browser can run here. In CI a missing browser is a failure, not a skip; elsewhere a skip says so loudly. */
export function haveChromium(): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.CI) throw new Error(`Chromium is required in CI but ${CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM_PATH)`)
  console.warn(missingChromiumNotice())
  return false
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
}
