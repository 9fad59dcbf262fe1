// @vitest-environment happy-dom
/** Browsers: batches waiting under the checkpoint policy are written when the page is hidden or goes away. */
import { describe, expect, it } from 'vitest'
import { MemoryCheckpointStore, Understudy, type StoreKey } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

class CountingStore extends MemoryCheckpointStore {
  logSaves = 0
  override async save(key: StoreKey, value: Uint8Array): Promise<void> {
    if (key[1] === 'log') this.logSaves++
    return super.save(key, value)
  }
}

async function node(onPageHide?: boolean) {
  const store = new CountingStore()
  const ha = await Understudy.start({
    group: 'g',
    transport: new MemoryNetwork().join('a'),
    role: 'active',
    commitMode: 'async',
    checkpoints: store,
    checkpointPolicy: { commits: 1000, ...(onPageHide === undefined ? {} : { onPageHide }) },
  })
  const root = ha.register('app', { n: 0 })
  await ha.commit()
  return { ha, store, root }
}

const settle = async () => {
  for (let i = 0; i < 50; i++) await Promise.resolve()
}

describe('checkpoint policy in a page', () => {
  it('pagehide writes what waits, even a batch not yet closed', async () => {
    const { ha, store, root } = await node()
    root.n = 1 // not committed: still the open batch
    expect(store.logSaves).toBe(0)
    window.dispatchEvent(new Event('pagehide'))
    await settle()
    expect(store.logSaves).toBe(1)
    const log = await store.loadRange(['g', 'log'])
    expect(log).toHaveLength(1)
    await ha.abort()
  })

  it('visibilitychange writes only when the page became hidden', async () => {
    const { ha, store, root } = await node()
    root.n = 1
    await ha.commit()
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
    window.dispatchEvent(new Event('visibilitychange'))
    await settle()
    expect(store.logSaves).toBe(0)
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    window.dispatchEvent(new Event('visibilitychange'))
    await settle()
    expect(store.logSaves).toBe(1)
    await ha.abort()
  })

  it('onPageHide: false, or a closed node, leaves them alone', async () => {
    const { ha, store, root } = await node(false)
    root.n = 1
    await ha.commit()
    window.dispatchEvent(new Event('pagehide'))
    await settle()
    expect(store.logSaves).toBe(0)
    await ha.abort()
    const other = await node()
    other.root.n = 2
    await other.ha.abort()
    window.dispatchEvent(new Event('pagehide'))
    await settle()
    expect(other.store.logSaves).toBe(0)
  })
})
