/**
 * A browser standby over an authenticated WebSocket (WebCrypto in a real page)
 * to a Node active: `wsTest.start(url, key, encrypt)` starts it; `state()`
 * reports its role, the replicated root and any errors.
 */
import { Understudy } from 'understudy-ha'
import { webSocket } from 'understudy-ha/adapters/websocket'

let ha: Understudy | undefined
const errors: string[] = []

;(globalThis as { wsTest?: unknown }).wsTest = {
  async start(url: string, key: string, encrypt: boolean): Promise<void> {
    ha = await Understudy.start({ group: 'browser-ws', transport: webSocket(url, { id: 'page', key, encrypt, backoff: { initialMs: 20, maxMs: 200 } }) })
    ha.on('error', (e) => errors.push(`${e.error.name}: ${e.error.message}`))
  },
  state(): { role: string; root: string; errors: string[]; subtle: boolean } {
    return { role: ha?.role ?? 'none', root: JSON.stringify(ha?.root('r') ?? null), errors, subtle: !!globalThis.crypto?.subtle }
  },
  async close(): Promise<void> {
    await ha?.close()
  },
}
