/**
 * The file lease's numbered versions: old ones are collected without a reader
 * ever finding no table, a damaged newest version is read past without
 * handing an epoch out twice, and epochs never go backwards through release
 * or clear.
 */
import { describe, expect, it } from 'vitest'
import { VirtualClock, type LeaseRow } from 'understudy-ha'
import { mkdtemp, readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileLease } from 'understudy-ha/adapters/file-lease'

const T = 200

async function table(): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lease-versions-'))
  return { dir, path: join(dir, 'lease.json') }
}

async function versions(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .filter((n) => /^lease\.json\.\d+$/.test(n))
    .map((n) => Number(n.slice('lease.json.'.length)))
    .sort((a, b) => a - b)
}

describe('file lease: numbered versions', () => {
  it('each change is a new version; old ones are collected, and a reader racing with that never finds no table', async () => {
    const { dir, path } = await table()
    const clock = new VirtualClock(Date.now())
    const writer = fileLease(path, { clock })
    const reader = fileLease(path, { clock })
    let row = (await writer.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    let stop = false
    let reads = 0
    const missing: number[] = []
    const reading = (async () => {
      while (!stop) {
        const r = await reader.read('p')
        if (!r) missing.push(reads)
        reads++
      }
    })()
    for (let i = 0; i < 100; i++) {
      clock.advance(1)
      row = (await writer.updateHeartbeat('a', 'p', row, T)) as LeaseRow
      expect(row).toMatchObject({ holder: 'a', epoch: 1 })
    }
    stop = true
    await reading
    expect(missing).toEqual([])
    expect(reads).toBeGreaterThan(0)
    const left = await versions(dir)
    expect(left.at(-1)).toBe(101)
    expect(left.length).toBeLessThanOrEqual(10)
    // No temp file is left behind.
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('a damaged newest version is read past, and never lets an epoch it may have handed out be handed out again', async () => {
    const { dir, path } = await table()
    const clock = new VirtualClock(Date.now())
    const s = fileLease(path, { clock })
    const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow // version 1
    clock.advance(T + 1)
    const b = (await s.updateHeartbeat('b', 'p', a, T)) as LeaseRow // version 2: b holds epoch 2
    expect(b.epoch).toBe(2)
    // A bit flip truncates version 2: what is left (version 1) says a holds epoch 1.
    await truncate(join(dir, 'lease.json.2'), 10)

    const seen = (await s.read('p')) as LeaseRow
    expect(seen.epoch).toBeGreaterThanOrEqual(2)
    expect(seen.holder).toBe('')
    // Neither a (whose row is all that can be read) nor b (whose row was lost) may renew.
    expect(await s.updateHeartbeat('a', 'p', a, T)).toBeUndefined()
    expect(await s.updateHeartbeat('b', 'p', b, T)).toBeUndefined()
    // Nobody takes it over before a lease granted in the damaged version would have expired …
    clock.advance(T + 1)
    expect(await s.updateHeartbeat('c', 'p', seen, T)).toBeUndefined()
    // … nor creates a role that may have been created there.
    expect(await s.updateHeartbeat('c', 'q', undefined, T)).toBeUndefined()
    clock.advance(1000)
    const c = (await s.updateHeartbeat('c', 'p', seen, T)) as LeaseRow
    expect(c.holder).toBe('c')
    expect(c.epoch).toBeGreaterThan(b.epoch)
    // The write went above the damaged version, not into it.
    expect(await versions(dir)).toEqual([1, 2, 3])
    expect(JSON.parse(await readFile(join(dir, 'lease.json.3'), 'utf8')).rows.p).toMatchObject({ holder: 'c', epoch: c.epoch })
    // Any other role starts above the floor too.
    expect((await s.updateHeartbeat('d', 'q', undefined, T))?.epoch).toBeGreaterThan(b.epoch)
  })

  it('with no whole version left, epochs restart above the highest version number', async () => {
    const { dir, path } = await table()
    const clock = new VirtualClock(Date.now())
    const s = fileLease(path, { clock })
    let row = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    for (let i = 0; i < 3; i++) {
      clock.advance(T + 1)
      row = (await s.updateHeartbeat(`n${i}`, 'p', row, T)) as LeaseRow
    }
    expect(row.epoch).toBe(4)
    for (const v of await versions(dir)) await writeFile(join(dir, `lease.json.${v}`), '{"rows":')
    expect(await s.read('p')).toBeUndefined()
    expect(await s.updateHeartbeat('z', 'p', undefined, T)).toBeUndefined()
    clock.advance(T + 1001)
    expect((await s.updateHeartbeat('z', 'p', undefined, T))?.epoch).toBeGreaterThan(4)
  })

  it('epochs never go backwards through release or clear', async () => {
    const { path } = await table()
    const clock = new VirtualClock(Date.now())
    const s = fileLease(path, { clock })
    const a = (await s.updateHeartbeat('a', 'p', undefined, T)) as LeaseRow
    await s.release('a', 'p')
    const b = (await s.updateHeartbeat('b', 'p', await s.read('p'), T)) as LeaseRow
    expect(b.epoch).toBe(a.epoch + 1)
    await s.clear()
    expect(await s.read('p')).toBeUndefined()
    expect((await s.updateHeartbeat('c', 'p', undefined, T))?.epoch).toBe(b.epoch + 1)
  })

  it('rows keep fields the store does not know, and the old lock options are accepted', async () => {
    const { dir, path } = await table()
    const clock = new VirtualClock(Date.now())
    const now = clock.now()
    await writeFile(
      join(dir, 'lease.json.1'),
      JSON.stringify({ rows: { p: { holder: 'a', epoch: 3, lastSeen: now, incarnation: 'a#7' } }, released: {} }),
    )
    const s = fileLease(path, { clock, lockStaleMs: 300, lockWaitMs: 1000 })
    expect(await s.read('p')).toEqual({ holder: 'a', epoch: 3, lastSeen: now, incarnation: 'a#7' })
    // A change to another row writes this one back as it was.
    await s.updateHeartbeat('b', 'q', undefined, T)
    expect(JSON.parse(await readFile(join(dir, 'lease.json.2'), 'utf8')).rows.p).toEqual({ holder: 'a', epoch: 3, lastSeen: now, incarnation: 'a#7' })
  })
})
