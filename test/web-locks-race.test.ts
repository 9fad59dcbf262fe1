// @vitest-environment happy-dom
/**
 * The Web Locks lease under a race real browsers produce: a follower is
 * granted the dead holder's lock, another tab steals that lock to take the
 * expired lease, and news of the steal reaches the first follower late. The
 * first follower must not take the new holder's fresh row for the dead one's
 * (invariant 3: one active per epoch, and no needless second election).
 * A fake LockManager delivers the steal when the test says so.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { webLocksLease } from 'understudy-ha/adapters/web-locks'

type Callback = (lock: { name: string } | null) => unknown
interface Holder {
  release: () => void
  rob: () => void
}

/** An exclusive-only LockManager: queues, ifAvailable, steal (its AbortError held back until `deliverSteals()`), signal. */
class FakeLocks {
  private readonly held = new Map<string, Holder>()
  private readonly queues = new Map<string, (() => void)[]>()
  private readonly steals: (() => void)[] = []

  request(name: string, a: LockOptions | Callback, b?: Callback): Promise<unknown> {
    const options = (typeof a === 'function' ? {} : a) as LockOptions
    const cb = (typeof a === 'function' ? a : b) as Callback
    return new Promise((resolve, reject) => {
      const grant = () => {
        let release!: () => void
        const holding = new Promise<void>((r) => (release = r))
        const holder: Holder = { release, rob: () => reject(new DOMException('the lock was stolen', 'AbortError')) }
        this.held.set(name, holder)
        void Promise.resolve()
          .then(() => cb({ name }))
          .then(
            async (v) => {
              await Promise.race([holding, Promise.resolve(v)])
              if (this.held.get(name) === holder) this.free(name)
              resolve(v)
            },
            (e: unknown) => {
              if (this.held.get(name) === holder) this.free(name)
              reject(e)
            },
          )
      }
      if (options.steal) {
        const robbed = this.held.get(name)
        if (robbed) this.steals.push(robbed.rob)
        this.held.delete(name)
        return grant()
      }
      if (!this.held.has(name)) return grant()
      if (options.ifAvailable) return void Promise.resolve().then(() => cb(null)).then(resolve, reject)
      const q = this.queues.get(name) ?? []
      this.queues.set(name, q)
      q.push(grant)
      options.signal?.addEventListener('abort', () => {
        const i = q.indexOf(grant)
        if (i >= 0) q.splice(i, 1)
        reject(new DOMException('aborted', 'AbortError'))
      })
    })
  }

  private free(name: string): void {
    this.held.delete(name)
    this.queues.get(name)?.shift()?.()
  }

  /** The holder of `name` dies: its lock goes to the next in the queue. */
  crash(name: string): void {
    this.free(name)
  }

  deliverSteals(): void {
    for (const rob of this.steals.splice(0)) rob()
  }

  query(): Promise<LockManagerSnapshot> {
    return Promise.resolve({ held: [...this.held.keys()].map((name) => ({ name, mode: 'exclusive' as const })), pending: [] })
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

afterEach(() => {
  vi.useRealTimers()
})

describe('web-locks lease: a steal reported late (invariant 3)', () => {
  it('a follower granted the dead holder’s lock does not take the fresh row of the tab that stole it from it', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(0)
    const locks = new FakeLocks()
    const tab = () => webLocksLease('race', { locks: locks as unknown as LockManager, table: 'localStorage' })
    const [x, a, b] = [tab(), tab(), tab()]
    const T = 400
    // X holds the lease (and its holder lock); A and B follow, queued on X's holder lock.
    expect(await x.updateHeartbeat('X', 'active', undefined, T)).toMatchObject({ holder: 'X', epoch: 1 })
    let aGone = 0
    a.watch('active', () => aGone++)
    b.watch('active', () => undefined)
    await settle()
    // X's tab dies at t = 100: A is next in the queue and is granted the lock.
    vi.setSystemTime(100)
    locks.crash('understudy-lease:race:active:holder')
    await settle()
    expect(aGone).toBe(1)
    // To A, X's row (renewed before the grant) is expired at once: X is gone, no need to wait T.
    expect((await a.read('active'))?.lastSeen).toBe(Number.MIN_SAFE_INTEGER)
    // At t = 500 X's row has expired by time. B takes the lease, stealing the holder lock from A;
    // the browser has not told A yet.
    vi.setSystemTime(500)
    const seenByB = await b.read('active')
    const row = await b.updateHeartbeat('B', 'active', seenByB, T)
    expect(row).toMatchObject({ holder: 'B', epoch: 2, lastSeen: 500 })
    // A beats now, before the steal reaches it: B's row is fresh, so A stays a follower.
    vi.setSystemTime(510)
    const seenByA = await a.read('active')
    expect(seenByA).toMatchObject({ holder: 'B', lastSeen: 500 })
    expect(await a.updateHeartbeat('A', 'active', seenByA, T)).toBeUndefined()
    locks.deliverSteals()
    await settle()
    expect(await b.read('active')).toMatchObject({ holder: 'B', epoch: 2 })
  })
})
