/**
 * S1 under crash and quick restart, with real processes: two nodes over TCP
 * on 127.0.0.1, a file lease (I = 100 ms, T = 400 ms, lockStaleMs 300), fs
 * checkpoints, sync commits. Over and over, writes flow for a while, the
 * active is killed with SIGKILL and restarted on the same port and checkpoint
 * folder 0–300 ms later (as a supervisor would), and a new active must take
 * over, accept writes again, and hold every write any active acknowledged.
 * The schedule is drawn from a seeded generator (UNDERSTUDY_SEED); the number
 * of kills is UNDERSTUDY_KILLS (default 100).
 */
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../src/random.js'
import { Cluster, Writer, describeAcks, epochViolations, missing, report, sleep, type Ack, type Problem } from '../support/cluster.js'

const KILLS = Number(process.env.UNDERSTUDY_KILLS ?? 100)
const SEED = Number(process.env.UNDERSTUDY_SEED ?? 20261130)
/** Bound on each failover: a new active, then a write acknowledged under it (generous: CI machines are often loaded). */
const FAILOVER_MS = 5000

describe('crash and quick restart (real processes, TCP, file lease, fs checkpoints)', () => {
  it(
    `no sync-acknowledged write is lost across ≥ 100 kill -9s with a restart 0–300 ms later`,
    async () => {
      const random = seededRandom(SEED)
      const cluster = await Cluster.create({ size: 2, group: 'kill-restart' })
      const writer = new Writer(cluster)
      const problems: Problem[] = []
      const lostSeen = new Set<number>()
      const checkHolds = (acks: readonly Ack[], items: readonly number[], who: string, when: string) => {
        const lost = missing(acks, items).filter((a) => !lostSeen.has(a.k))
        for (const a of lost) lostSeen.add(a.k)
        if (lost.length) {
          const text = `${lost.length} acknowledged write(s) missing from ${who} ${when}: k ${describeAcks(lost)}`
          problems.push({ at: Date.now(), text })
          cluster.note(text, 'violation')
        }
      }
      let kills = 0
      let stuck = false
      const started = Date.now()
      try {
        try {
          await Promise.all([cluster.start(0), cluster.start(1)])
          const first = await cluster.waitForActive(0, 5000)
          if (!first) throw new Error(`no active was elected within 5 s\n${cluster.timeline()}`)
          writer.start()
          if (!(await cluster.waitForAcks(0, 1, 5000))) throw new Error(`no write was acknowledged within 5 s of the first election\n${cluster.timeline()}`)

          for (let i = 0; i < KILLS; i++) {
            const flowMs = 100 + Math.floor(random() * 301)
            const restartMs = Math.floor(random() * 301)
            // The processes that will restart the nodes load while writes flow.
            cluster.prepare()
            await sleep(flowMs)
            await Promise.all(cluster.nodes.map((n) => cluster.warm(n.index)))
            // An active may step down by itself (a lease it could not confirm in time): wait for the next one.
            const victim = cluster.active() ?? (await cluster.waitForActive(0, FAILOVER_MS))
            if (!victim) {
              const text = `before kill ${i + 1}: no active for ${FAILOVER_MS} ms`
              problems.push({ at: Date.now(), text })
              cluster.note(text, 'violation')
              stuck = true
              break
            }
            const acked = [...cluster.acks]
            const killAt = Date.now()
            await cluster.kill(victim.index)
            kills++
            await sleep(Math.max(0, restartMs - (Date.now() - killAt)))
            cluster.note(`restart ${victim.id} (${restartMs} ms after the kill)`)
            await cluster.start(victim.index)
            const next = await cluster.waitForActive(killAt, FAILOVER_MS)
            if (!next) {
              const text = `kill ${i + 1}: no new active within ${FAILOVER_MS} ms of the restart`
              problems.push({ at: Date.now(), text })
              cluster.note(text, 'violation')
              stuck = true
              break
            }
            const electedAt = cluster.roles.filter((r) => r.who === next.who && r.role === 'active').at(-1)?.at ?? killAt
            if (!(await cluster.waitForAcks(electedAt, 1, FAILOVER_MS))) {
              const text = `kill ${i + 1}: ${next.who} is active (epoch ${next.epoch}) but acknowledged no write within ${FAILOVER_MS} ms`
              problems.push({ at: Date.now(), text })
              cluster.note(text, 'violation')
              stuck = true
              break
            }
            const d = await cluster.dump(next.index)
            // Only an active's state is complete: a node that just stepped down may be resyncing.
            if (d?.role === 'active') checkHolds(acked, d.items, next.who, `after kill ${i + 1} (${next.who} is ${d.role}, epoch ${d.epoch})`)
            else cluster.note(`${next.who} ${d ? `was ${d.role} by the time it answered a dump` : 'did not answer a dump'} after kill ${i + 1}`)
          }
        } finally {
          await writer.stop()
        }
        // Late acks (sent before a kill, read after it) still count.
        await sleep(300)
        const final = await cluster.activeDump(FAILOVER_MS)
        if (final) checkHolds(cluster.acks, final.items, final.who, `at the end (${final.who} is active, epoch ${final.epoch})`)
        else problems.push({ at: Date.now(), text: `no active answered a dump at the end (within ${FAILOVER_MS} ms)` })
        problems.push(...epochViolations(cluster.roles, cluster.acks, cluster.t0))
        problems.sort((a, b) => a.at - b.at)

        const secs = ((Date.now() - started) / 1000).toFixed(1)
        const head = `seed ${SEED}: ${kills} kill -9s of ${KILLS}${stuck ? ' (stopped early: the group got stuck)' : ''}, ${writer.sent} writes sent, ${cluster.acks.length} acknowledged, ${lostSeen.size} acknowledged write(s) lost, ${secs} s`
        const saved = await cluster.saveTimeline('kill-restart')
        console.log(problems.length ? report(cluster, problems, head, saved) : head)
        expect(problems.map((p) => p.text), report(cluster, problems, head, saved)).toEqual([])
        expect(kills).toBe(KILLS)
      } finally {
        await writer.stop()
        await cluster.close()
      }
    },
    60_000 + KILLS * 5_000,
  )
})
