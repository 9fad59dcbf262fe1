/**
 * With a lease, the lease decides who is active; a peer's word never does.
 *
 * Found by an attacker with only network access to a group that elects
 * through a lease: a HELLO claiming to be the active at a huge epoch made
 * the real active step down while its lease kept being renewed (nobody was
 * active for the rest of the run), and a HELLO plus a forged snapshot sent to
 * a standby were adopted — after the real active crashed, the standby took
 * over serving the forged data. Here the "stranger" is a raw memory-transport
 * endpoint that sends hand-written frames.
 */
import { describe, expect, it } from 'vitest'
import { LeaseClaimError, type Understudy } from 'understudy-ha'
import type { MemoryTransport } from 'understudy-ha/adapters/memory'
import { writeHello, writeSnapshot } from '../src/codec/frames.js'
import type { SnapshotBody } from '../src/graph/wire.js'
import { I, T, lab } from './regressions/lab.js'
import { remoteLab, T as RT } from './regressions/remote-lab.js'
import { settle } from './support/pair.js'

const HUGE = 1_000_000

/** A peer that is no node at all: it sends the frames it is told to, and (`answer`) a forged snapshot to whoever sends it anything. */
function stranger(transport: MemoryTransport, answer?: { epoch: number; seq: number }) {
  let answers = 0
  const message = (from: string) => answer && answers++ < 50 && snapshot(from, answer.epoch, answer.seq)
  transport.open({ message, peerUp: () => {}, peerDown: () => {}, error: () => {} })
  const hello = (to: string, epoch: number, seq = 0, incarnation = 'mallory@0000000000') =>
    transport.send(writeHello({ group: 'g', node: 'mallory', incarnation, role: 'active', epoch, seq }), to)
  /** A forged `app` root `{ acked: [666] }`, as a snapshot at (epoch, seq). */
  function snapshot(to: string, epoch: number, seq: number) {
    const body: SnapshotBody = [['app', 1], [[1, 0, ['acked', [2]]], [2, 1, [666]]]]
    transport.send(writeSnapshot(epoch, seq, body), to)
  }
  return { hello, snapshot }
}

/** The errors `ha` reports, as they come. */
function errorsOf(ha: Understudy): Error[] {
  const out: Error[] = []
  ha.on('error', (e) => out.push(e.error))
  return out
}

const claims = (errors: Error[]) => errors.filter((e): e is LeaseClaimError => e instanceof LeaseClaimError)

/** a (elected active) and b (its standby) with `writes` acknowledged numbers in `app.acked`. */
async function pair(seed: number, writes: number) {
  const l = lab(seed)
  const a = await l.start('a')
  await l.run(4 * I, () => a.role === 'active')
  const b = await l.start('b')
  await l.run(4 * I)
  expect([a.role, b.role]).toEqual(['active', 'standby'])
  const root = a.register('app', { acked: [] as number[] })
  b.register('app', { acked: [] as number[] })
  const acked: number[] = []
  /** Commits the next number on a; resolves once it is acknowledged. */
  const write = async () => {
    const n = acked.length
    root.acked.push(n)
    const p = a.commit().then(() => acked.push(n))
    await l.run(10 * I, () => acked.includes(n))
    await p
  }
  for (let i = 0; i < writes; i++) await write()
  return { ...l, a, b, root, acked, write }
}

describe('with a lease, the lease decides who is active (a peer\u2019s HELLO is checked against it)', () => {
  it('a flood of false claims costs at most one extra renewal and one report per beat, not one per claim', async () => {
    const { a, lease, network, run } = await pair(37, 1)
    const errors = errorsOf(a)
    const mallory = stranger(network.join('mallory'))
    await run(I)
    let renewals = 0
    const update = lease.updateHeartbeat.bind(lease)
    lease.updateHeartbeat = (...args: Parameters<typeof update>) => (renewals++, update(...args))
    const beats = 10
    for (let k = 0; k < beats * 20; k++) {
      mallory.hello('a', HUGE + k)
      await settle()
      if (k % 20 === 19) await run(I)
    }
    expect(a.role).toBe('active')
    // Its own beat (one per I) plus at most one consultation per beat for the claims.
    expect(renewals).toBeLessThanOrEqual(2 * beats + 2)
    expect(claims(errors).length).toBeLessThanOrEqual(beats + 1)
    expect(claims(errors).length).toBeGreaterThan(0)
  })

  it('a HELLO claiming a higher epoch does not demote an active that still holds its lease', async () => {
    const { a, b, lease, network, run, acked, write } = await pair(31, 3)
    const errors = errorsOf(a)
    const before = await lease.read('g')
    const mallory = stranger(network.join('mallory'))
    await run(I)
    // The attack, again and again, while commits go on.
    for (let k = 0; k < 5; k++) {
      mallory.hello('a', HUGE + k)
      await settle()
      expect(a.role).toBe('active')
      await write()
      await run(I)
    }
    expect(a.role).toBe('active')
    expect(a.epoch).toBe(before?.epoch)
    expect(b.role).toBe('standby')
    const after = await lease.read('g')
    expect({ holder: after?.holder, epoch: after?.epoch }).toEqual({ holder: before?.holder, epoch: before?.epoch })
    expect(acked).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect((b.root('app') as { acked: number[] }).acked).toEqual(acked)
    // Each false claim is reported, naming the peer and the epoch it claimed.
    const reported = claims(errors)
    expect(reported.length).toBeGreaterThanOrEqual(1)
    expect(reported[0]).toMatchObject({ code: 'LEASE_CLAIM', peer: 'mallory', claimedEpoch: HUGE, holder: a.incarnation, leaseEpoch: before?.epoch })
    expect(reported[0]?.message).toMatch(/mallory .*claimed to be active at epoch 1000000, but this node holds the lease/)
    await a.close()
    await b.close()
  })

  it('a standby does not follow, nor adopt a snapshot from, a peer the lease does not name; after the active crashes it takes over with the genuine data', async () => {
    const { a, b, network, run, acked, clock } = await pair(32, 4)
    const errors = errorsOf(b)
    const mirror = b.root('app') as { acked: number[] }
    const at = b.stats()
    const mallory = stranger(network.join('mallory'))
    await run(I)
    // At the epoch the active holds and above: a claim, then a snapshot meant to replace the standby's state.
    // Last, posing as the holder itself: its incarnation is announced, not secret (the member that announced it first is believed).
    for (const [epoch, incarnation] of [[at.epoch], [at.epoch + 1], [HUGE], [at.epoch, a.incarnation], [HUGE, a.incarnation]] as [number, string?][]) {
      mallory.hello('b', epoch, 9, incarnation)
      mallory.snapshot('b', epoch, 9)
      await settle()
      mallory.snapshot('b', epoch, 9)
      await run(I)
    }
    expect(mirror.acked).toEqual(acked)
    expect({ epoch: b.stats().epoch, seq: b.stats().seq, snapshots: b.stats().snapshots }).toEqual({ epoch: at.epoch, seq: at.seq, snapshots: at.snapshots })
    expect(b.epoch).toBe(at.epoch)
    expect(claims(errors).map((e) => e.claimedEpoch)).toEqual(expect.arrayContaining([at.epoch + 1, HUGE]))
    expect(claims(errors)[0]?.message).toMatch(/but the lease names a@\w+ at epoch 1: the claim is ignored/)
    // The real active crashes: the standby takes over, with what the real active committed.
    const crashedAt = clock.now()
    await a.abort()
    await run(10 * T, () => b.role === 'active')
    expect(b.role).toBe('active')
    expect(clock.now() - crashedAt).toBeLessThanOrEqual(T + 2 * I)
    expect(b.epoch).toBe(at.epoch + 1)
    expect(mirror.acked).toEqual(acked)
    await b.close()
  })

  it('a peer posing as the lease holder (an incarnation is announced, not secret) is never followed, even once the holder has left: only the peer that announced it first can be the holder', async () => {
    for (let seed = 50; seed < 54; seed++) {
      const { start, run, network } = lab(seed)
      const a = await start('a')
      await run(4 * I, () => a.role === 'active')
      const b = await start('b')
      const c = await start('c')
      await run(4 * I, () => a.stats().standbys === 2)
      const root = a.register('app', { acked: [] as number[] })
      root.acked.push(1, 2)
      const committed = a.commit()
      await run(I)
      await committed
      // Ahead of the failover, mallory claims each standby's incarnation at the next epoch, and answers anyone who asks with a forged snapshot.
      const mallory = stranger(network.join('mallory'), { epoch: 2, seq: 9 })
      await run(I)
      mallory.hello('c', 2, 9, b.incarnation)
      mallory.hello('b', 2, 9, c.incarnation)
      await run(I)
      await a.abort()
      await run(10 * T, () => b.role === 'active' || c.role === 'active')
      const next = b.role === 'active' ? b : c
      const other = next === b ? c : b
      await run(3 * I, () => other.stats().epoch === 2)
      expect({ seed, epoch: other.stats().epoch, acked: (other.root('app') as { acked: number[] }).acked }).toEqual({ seed, epoch: 2, acked: [1, 2] })
      expect((next.root('app') as { acked: number[] }).acked).toEqual([1, 2])
      // The holder closes: its released row still names it, and it is gone — mallory, still posing as it, is still not followed.
      await next.close()
      await run(10 * T, () => other.role === 'active')
      expect({ seed, role: other.role, epoch: other.epoch, acked: (other.root('app') as { acked: number[] }).acked }).toEqual({ seed, role: 'active', epoch: 3, acked: [1, 2] })
      await other.close()
    }
  })

  it('an active deposed by a genuine new lease holder steps down at its HELLO and follows it', async () => {
    const { a, b, network, run, acked } = await pair(33, 3)
    const elector = (a as unknown as { node: { elector: { frozen: boolean } } }).node.elector
    // a hangs, cut off: b takes the lease after T.
    elector.frozen = true
    network.partition('a', 'b')
    await run(3 * T, () => b.role === 'active')
    expect(b.role).toBe('active')
    expect(b.epoch).toBe(2)
    const next = b.root('app') as { acked: number[] }
    next.acked.push(100)
    // The row b took names a in its in-sync set: the commit waits for a.
    const committed = b.commit()
    // a wakes (it still thinks it is active) and hears b: it checks the lease at once rather than at its next beat.
    elector.frozen = false
    expect(a.role).toBe('active')
    network.heal('a', 'b')
    await settle()
    expect(a.role).toBe('standby')
    await run(2 * I, () => (a.root('app') as { acked: number[] }).acked.length === acked.length + 1)
    expect((a.root('app') as { acked: number[] }).acked).toEqual([...acked, 100])
    await run(I, () => false)
    expect((await committed).epoch).toBe(2)
    expect(a.epoch).toBe(2)
    expect(b.stats().standbys).toBe(1)
    await a.close()
    await b.close()
  })

  it('after a genuine failover a standby follows the new holder after one read of the row, not a beat later', async () => {
    for (let seed = 40; seed < 46; seed++) {
      const { start, run, clock, lease } = lab(seed)
      const a = await start('a')
      await run(4 * I, () => a.role === 'active')
      const b = await start('b')
      const c = await start('c')
      await run(4 * I, () => a.stats().standbys === 2)
      a.register('app', { n: 1 })
      await a.commit()
      // Each call to the store takes 10 ms: a standby that follows on one read does so about 10 ms after the HELLO.
      lease.replyDelayMs = 10
      await a.abort()
      let elected = -1
      for (const n of [b, c]) n.on('role', (e) => e.role === 'active' && (elected = clock.now()))
      await run(10 * T, () => elected >= 0)
      const next = [b, c].find((n) => n.role === 'active') as Understudy
      const other = next === b ? c : b
      // Following the new active, the other standby is sent its state in its epoch.
      await run(3 * I, () => other.stats().epoch === next.epoch)
      expect(other.stats().epoch).toBe(next.epoch)
      expect(clock.now() - elected, `seed ${seed}`).toBeLessThanOrEqual(25)
      expect((other.root('app') as { n: number }).n).toBe(1)
      for (const n of [b, c]) await n.close()
    }
  })

  it('a worker election (remoteElection): a false claim neither demotes the active nor is followed by its standby', async () => {
    const { start, until, store, network } = remoteLab(35)
    const a = await start('a')
    expect(await until(() => a.role === 'active', 20 * RT)).toBe(true)
    const b = await start('b')
    expect(await until(() => a.stats().standbys === 1, 20 * RT)).toBe(true)
    const root = a.register('app', { acked: [] as number[] })
    const mirror = b.register('app', { acked: [] as number[] })
    root.acked.push(0, 1)
    await a.commit()
    const errorsA = errorsOf(a)
    const errorsB = errorsOf(b)
    const before = await store.read('g')
    const mallory = stranger(network.join('mallory'))
    for (let k = 0; k < 3; k++) {
      mallory.hello('a', HUGE)
      mallory.hello('b', HUGE, 9)
      mallory.snapshot('b', HUGE, 9)
      expect(await until(() => claims(errorsA).length > k && claims(errorsB).length > k, 10 * RT)).toBe(true)
      root.acked.push(2 + k)
      await a.commit()
    }
    expect(a.role).toBe('active')
    expect(b.role).toBe('standby')
    const after = await store.read('g')
    expect({ holder: after?.holder, epoch: after?.epoch }).toEqual({ holder: before?.holder, epoch: before?.epoch })
    expect(await until(() => mirror.acked.length === 5, 10 * RT)).toBe(true)
    expect(mirror.acked).toEqual([0, 1, 2, 3, 4])
    expect(claims(errorsA)[0]).toMatchObject({ peer: 'mallory', claimedEpoch: HUGE, holder: a.incarnation })
    expect(claims(errorsB)[0]).toMatchObject({ peer: 'mallory', claimedEpoch: HUGE, holder: a.incarnation })
    await a.close()
    await b.close()
  })
})
