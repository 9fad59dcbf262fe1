/**
 * Chromium driven over the raw DevTools protocol (CDP), for tests that need a
 * tab in the background. Playwright keeps every page it drives visible (a
 * hidden page could not be screenshotted), so its pages never see a hidden
 * tab's throttled timers; here a tab opened in the same window hides the one
 * before it, as it does for a person.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js'

/** A CDP command that failed, or did not answer in time. */
export class CdpError extends Error {
  readonly code = 'CDP_ERROR'
}

/** One tab, attached through a flat session. */
export interface CdpTab {
  readonly targetId: string
  /** Evaluates `expression` in the page (awaiting a promise) and returns its value; a thrown error becomes a {@link CdpError}. */
  evaluate<T>(expression: string, timeoutMs?: number): Promise<T>
  /** Polls `expression` every 50 ms until it is truthy; throws after `timeoutMs`. */
  waitFor(expression: string, timeoutMs?: number): Promise<void>
  /** Closes the tab as a person would (its page gets `pagehide`, its locks are released). */
  close(): Promise<void>
}

/** A Chromium process and its DevTools connection. */
export interface CdpBrowser {
  /** Opens `url` in a new tab of the browser's window: it comes to the front, and the tab that was there goes to the background. */
  newTab(url: string): Promise<CdpTab>
  /** Brings `tab` to the front of its window. */
  activate(tab: CdpTab): Promise<void>
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts Chromium with a fresh profile on a loopback DevTools port and connects to it. */
export async function launchCdpChromium(): Promise<CdpBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'understudy-cdp-'))
  const proc: ChildProcess = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const endpoint = await new Promise<string>((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new CdpError(`Chromium did not open its DevTools port within 30 s: ${seen.slice(-500)}`)), 30_000)
    proc.stderr?.on('data', (d: Buffer) => {
      seen += d.toString()
      const m = /DevTools listening on (ws:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(seen)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    proc.once('exit', (code) => reject(new CdpError(`Chromium exited (${code}) before opening its DevTools port: ${seen.slice(-500)}`)))
  })
  const ws = new WebSocket(endpoint)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  let next = 0
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } }
    const p = m.id !== undefined ? pending.get(m.id) : undefined
    if (!p) return
    pending.delete(m.id as number)
    if (m.error) p.reject(new CdpError(m.error.message))
    else p.resolve(m.result)
  })
  const send = <T>(method: string, params: object = {}, sessionId?: string, timeoutMs = 30_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++next
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new CdpError(`${method} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      ws.send(JSON.stringify({ id, method, params, sessionId }))
    })

  const tab = (targetId: string, sessionId: string): CdpTab => {
    const evaluate = async <T>(expression: string, timeoutMs = 30_000): Promise<T> => {
      const r = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
        'Runtime.evaluate',
        { expression, awaitPromise: true, returnByValue: true },
        sessionId,
        timeoutMs,
      )
      if (r.exceptionDetails) throw new CdpError(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text)
      return r.result.value as T
    }
    return {
      targetId,
      evaluate,
      async waitFor(expression, timeoutMs = 15_000) {
        const until = Date.now() + timeoutMs
        for (let i = 0; Date.now() < until && i < 10_000; i++) {
          if (await evaluate<boolean>(`Boolean(${expression})`).catch(() => false)) return
          await sleep(50)
        }
        throw new CdpError(`${expression} did not hold within ${timeoutMs} ms`)
      },
      close: async () => void (await send('Target.closeTarget', { targetId })),
    }
  }

  return {
    async newTab(url) {
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url, newWindow: false })
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true })
      return tab(targetId, sessionId)
    },
    activate: async (t) => void (await send('Target.activateTarget', { targetId: t.targetId })),
    async close() {
      await send('Browser.close', {}, undefined, 5000).catch(() => undefined)
      ws.close()
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r))
        await Promise.race([exited, sleep(5000)])
        if (proc.exitCode === null) proc.kill('SIGKILL')
      }
      await rm(profile, { recursive: true, force: true })
    },
  }
}
