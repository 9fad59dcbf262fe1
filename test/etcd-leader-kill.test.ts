/**
 * The etcd leader dies under a steady group: a 3-member etcd cluster on
 * 127.0.0.1 (started by this test, since it kills a member), two Understudy
 * node processes on TCP over loopback, writes flowing. Killing the raft
 * leader (SIGKILL) leaves etcd without a leader for about one election
 * timeout (500 ms here). The active must keep its role or hand over cleanly
 * (one new activation, the next epoch), and nothing acknowledged may be lost.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Cluster, describeAcks, epochViolations, missing, sleep, Writer } from './support/cluster.js'
import { etcdUnavailable, startEtcd, type EtcdCluster } from './support/etcd.js'

const noEtcd = etcdUnavailable()
if (noEtcd && process.env.CI) throw new Error(`CI is set, so the etcd tests must run: ${noEtcd}`)

for (const [I, T] of [
  [100, 400],
  [250, 1500],
] as const) {
  describe.skipIf(!!noEtcd)(`the etcd leader is killed in steady state (I = ${I} ms, T = ${T} ms)${noEtcd ? ` (skipped: ${noEtcd})` : ''}`, () => {
    let etcd: EtcdCluster | undefined
    let cluster: Cluster | undefined

    afterAll(async () => {
      await cluster?.close()
      await etcd?.stop()
    })

    it('the active keeps its role or hands over cleanly, and nothing acknowledged is lost', async () => {
      etcd = await startEtcd({ members: 3 })
      const e = etcd
      cluster = await Cluster.create({ size: 2, group: 'leader-kill', etcd: { hosts: e.endpoints, prefix: `understudy-leader-kill/${process.pid}/${T}/` }, heartbeat: { intervalMs: I, timeoutMs: T } })
      const c = cluster
      await c.start(0)
      await c.start(1)
      const first = await c.waitForActive(0, 10_000)
      expect(first, c.timeline()).toBeDefined()
      const writer = new Writer(c, 250, 100_000, 60_000)
      writer.start()
      expect(await c.waitForAcks(0, 100, 10_000), c.timeline()).toBe(true)
      const activeWho = first?.who as string
      const epoch = first?.epoch as number

      const leader = await e.leader()
      expect(leader).toBeGreaterThanOrEqual(0)
      const killAt = Date.now()
      await e.kill(leader)
      c.note(`kill -9 the etcd leader m${leader}`)
      let newLeader = -1
      for (let tries = 0; tries < 100 && newLeader < 0; tries++) {
        newLeader = await e.leader()
        if (newLeader < 0) await sleep(50)
      }
      const leaderMs = Date.now() - killAt
      expect(newLeader, 'etcd elected no new leader').toBeGreaterThanOrEqual(0)
      // Steady state again: writes acknowledged after the new etcd leader, for a while.
      await sleep(Math.max(2000, 3 * T))
      expect(await c.waitForAcks(Date.now(), 20, 10_000), c.timeline()).toBe(true)
      await writer.stop()

      const final = await c.activeDump(5000)
      expect(final, c.timeline()).toBeDefined()
      const lost = missing(c.acks, final?.items ?? [])
      expect(lost.map((a) => a.k), `acknowledged but missing: ${describeAcks(lost)}\n${c.timeline()}`).toEqual([])
      expect(epochViolations(c.roles, c.acks, c.t0), c.timeline()).toEqual([])
      const changes = c.roles.filter((r) => r.at >= killAt)
      // The active may step down while etcd has no leader and take its own row back afterwards: the row never
      // changed hands, so that is the same epoch, and nobody else was active meanwhile.
      const activations = changes.filter((r) => r.role === 'active' && !(r.who === activeWho && r.epoch === epoch))
      const steppedDown = changes.find((r) => r.who === activeWho && r.role !== 'active')
      const retook = changes.find((r) => r.who === activeWho && r.role === 'active' && r.epoch === epoch)
      const kept = activations.length === 0 && final?.who === activeWho && final.epoch === epoch
      if (!kept) {
        // A clean handover: one activation, with the next epoch, by one node.
        expect(activations.length, c.timeline(killAt - 500, killAt + 5000)).toBe(1)
        expect(activations[0]?.epoch, c.timeline(killAt - 500, killAt + 5000)).toBe(epoch + 1)
      }
      // The longest pause between two acknowledged writes around the kill: the writers' blackout.
      const around = c.acks.filter((a) => a.at >= killAt - 1000).map((a) => a.at)
      let gap = 0
      for (let j = 1; j < around.length; j++) gap = Math.max(gap, (around[j] as number) - (around[j - 1] as number))
      console.log(
        `etcd leader kill (3 members, I = ${I} ms, T = ${T} ms): etcd had a new leader after ${leaderMs} ms; ` +
          (kept
            ? steppedDown && retook
              ? `the active ${activeWho} stepped down ${steppedDown.at - killAt} ms after the kill and took its own row back at epoch ${epoch}, ${retook.at - killAt} ms after the kill`
              : `the active ${activeWho} kept its role throughout (epoch ${epoch})`
            : `the role moved to ${activations[0]?.who} at epoch ${activations[0]?.epoch}, ${(activations[0]?.at ?? killAt) - killAt} ms after the kill`) +
          `; longest gap between acks ${gap} ms; ${c.acks.length} acknowledged writes, none lost`,
      )
    }, 90_000)
  })
}
