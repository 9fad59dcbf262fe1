/**
 * A process paused (SIGSTOP, a long GC, a swapped-out page) in the middle of a
 * file-lease operation, replayed deterministically: two or three handles on
 * one table file, one of them held at the point where it has decided and not
 * yet written, while the others go on.
 */
import { describe, expect, it } from 'vitest'
import { VirtualClock, type LeaseRow } from 'understudy-ha'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileLease } from 'understudy-ha/adapters/file-lease'

const T = 200

/** A gate a store waits at before it writes: `reached` resolves when it is there, `open()` lets it go on. */
function gate() {
  let arrive!: () => void
  let open!: () => void
  const reached = new Promise<void>((r) => (arrive = r))
  const opened = new Promise<void>((r) => (open = r))
  let armed = false
  return {
    reached,
    open,
    arm: () => (armed = true),
    hook: async () => {
      if (!armed) return
      armed = false
      arrive()
      await opened
    },
  }
}

async function table(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'lease-pause-')), 'lease.json')
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('file lease: a paused writer', () => {
  it('a writer paused inside a file-lease operation never makes the epoch go backwards', async () => {
    const path = await table()
    const clock = new VirtualClock(Date.now())
    const g = gate()
    // Short stale-lock settings, as in the field report: they must not let a paused writer in.
    const a = fileLease(path, { clock, lockStaleMs: 30, lockWaitMs: 2000, beforeCommit: g.hook })
    const b = fileLease(path, { clock, lockStaleMs: 30, lockWaitMs: 2000 })
    const first = (await a.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    expect(first).toMatchObject({ holder: 'a', epoch: 1 })

    // a renews, and stops after deciding, before its write lands.
    g.arm()
    const renewal = a.updateHeartbeat('a', 'p', first, T)
    await g.reached
    // Long enough for any lock a to hold to look stale, and for its lease to expire.
    await sleep(100)
    clock.advance(T + 1)
    const taken = await b.updateHeartbeat('b', 'p', first, T)
    expect(taken).toMatchObject({ holder: 'b', epoch: 2 })

    // a wakes up and finishes its operation.
    g.open()
    const late = await renewal
    expect(late).toBeUndefined()
    expect(await b.read('p')).toMatchObject({ holder: 'b', epoch: 2 })
    expect(await a.read('p')).toMatchObject({ holder: 'b', epoch: 2 })
    // And a's next renewal, with the row it had, is refused too.
    expect(await a.updateHeartbeat('a', 'p', first, T)).toBeUndefined()
  })

  it('three handles: a taker paused inside its takeover never hands out an epoch someone else holds', async () => {
    const path = await table()
    const clock = new VirtualClock(Date.now())
    const g = gate()
    const opts = { clock, lockStaleMs: 30, lockWaitMs: 2000 }
    const a = fileLease(path, opts)
    const b = fileLease(path, { ...opts, beforeCommit: g.hook })
    const c = fileLease(path, opts)
    const first = (await a.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    clock.advance(T + 1)

    // b and c both see a's expired row; b decides to take it and stops there.
    g.arm()
    const bTakes = b.updateHeartbeat('b', 'p', first, T)
    await g.reached
    await sleep(100)
    const cRow = await c.updateHeartbeat('c', 'p', first, T)
    expect(cRow).toMatchObject({ holder: 'c', epoch: 2 })

    g.open()
    expect(await bTakes).toBeUndefined()
    expect(await a.read('p')).toMatchObject({ holder: 'c', epoch: 2 })
    // c still holds it: its renewal is accepted.
    clock.advance(10)
    expect(await c.updateHeartbeat('c', 'p', cRow, T)).toMatchObject({ holder: 'c', epoch: 2 })
  })

  it('a writer paused for longer than the versions kept, whose number was collected meanwhile, does not count its late write', async () => {
    const path = await table()
    const clock = new VirtualClock(Date.now())
    const g = gate()
    const a = fileLease(path, { clock, beforeCommit: g.hook })
    const b = fileLease(path, { clock })
    const first = (await a.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    g.arm()
    const renewal = a.updateHeartbeat('a', 'p', first, T)
    await g.reached
    clock.advance(T + 1)
    let row = (await b.updateHeartbeat('b', 'p', first, T)) as LeaseRow
    // b renews many times: the version a is about to write is written, and collected as old.
    for (let i = 0; i < 20; i++) {
      clock.advance(10)
      row = (await b.updateHeartbeat('b', 'p', row, T)) as LeaseRow
    }
    expect(await readdir(dirname(path))).not.toContain('lease.json.2')
    g.open()
    expect(await renewal).toBeUndefined()
    expect(await a.read('p')).toEqual(row)
    clock.advance(10)
    expect(await b.updateHeartbeat('b', 'p', row, T)).toMatchObject({ holder: 'b', epoch: 2 })
  })

  it('a holder paused inside a renewal that nobody overtook completes it when it wakes', async () => {
    const path = await table()
    const clock = new VirtualClock(Date.now())
    const g = gate()
    const a = fileLease(path, { clock, beforeCommit: g.hook })
    const b = fileLease(path, { clock })
    const first = (await a.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    clock.advance(50)
    g.arm()
    const renewal = a.updateHeartbeat('a', 'p', first, T)
    await g.reached
    // b only reads meanwhile: the table is still a's first row.
    expect(await b.read('p')).toEqual(first)
    g.open()
    expect(await renewal).toMatchObject({ holder: 'a', epoch: 1, lastSeen: first.lastSeen + 50 })
  })
})
