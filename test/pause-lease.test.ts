/**
 * S2 (and S1) under process pauses, with real processes: three nodes over TCP
 * on 127.0.0.1, a file lease (I = 100 ms, T = 400 ms, lockStaleMs 300), fs
 * checkpoints, sync commits. Over and over, writes flow for a while, then a
 * node — usually the active — is frozen with SIGSTOP for 0.3–1.5 s and
 * resumed with SIGCONT. Half of the pauses are aimed: the test watches the
 * lease file's lock and stops the node while it holds it, inside a lease
 * operation (best effort: if it does not take the lock within 250 ms, the
 * pause lands wherever the node is); the others land at a random moment. The lease row's epoch, read
 * through the lease store every 25 ms, must never go down; no two processes
 * may accept writes in one epoch; every acknowledged write must survive.
 * The schedule is drawn from a seeded generator (UNDERSTUDY_SEED); the number
 * of pauses is UNDERSTUDY_PAUSES (default 60).
 */
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../src/random.js'
import { Cluster, Writer, describeAcks, epochViolations, missing, report, sleep, type Ack, type ClusterNode, type Problem } from './support/cluster.js'

const PAUSES = Number(process.env.UNDERSTUDY_PAUSES ?? 60)
const SEED = Number(process.env.UNDERSTUDY_SEED ?? 20261130)
const SIZE = 3
/** Bound on recovery after SIGCONT: an active, then a write acknowledged. */
const SETTLE_MS = 5000

describe('pauses inside lease operations (real processes, TCP, file lease, fs checkpoints)', () => {
  it(
    'a node paused with SIGSTOP, landing inside lease operations, never brings back an older epoch and never shares an epoch with another writer',
    async () => {
      const random = seededRandom(SEED)
      const cluster = await Cluster.create({ size: SIZE, group: 'pause-lease' })
      const writer = new Writer(cluster)
      const problems: Problem[] = []
      const flag = (text: string) => {
        problems.push({ at: Date.now(), text })
        cluster.note(text, 'violation')
      }
      const lostSeen = new Set<number>()
      const checkHolds = (acks: readonly Ack[], items: readonly number[], who: string, when: string) => {
        const lost = missing(acks, items).filter((a) => !lostSeen.has(a.k))
        for (const a of lost) lostSeen.add(a.k)
        if (lost.length) flag(`${lost.length} acknowledged write(s) missing from ${who} ${when}: k ${describeAcks(lost)}`)
      }

      // The lease row, sampled through the store all along: its epoch never goes down.
      let sampling = true
      let leaseMax = 0
      let leaseLast: string | undefined
      let leaseReads = 0
      const regressions = new Set<string>()
      const sampler = (async () => {
        const deadline = Date.now() + 60_000 + PAUSES * 5_000
        while (sampling && Date.now() < deadline) {
          try {
            const row = await cluster.leaseRow()
            leaseReads++
            if (row) {
              const text = `lease row: ${row.holder} epoch ${row.epoch}`
              if (text !== leaseLast) cluster.note(text, 'lease')
              leaseLast = text
              const back = `the lease row went back to epoch ${row.epoch} (held by ${row.holder}) after epoch ${leaseMax}`
              if (row.epoch < leaseMax && !regressions.has(back)) {
                regressions.add(back)
                flag(back)
              }
              leaseMax = Math.max(leaseMax, row.epoch)
            }
          } catch (err) {
            cluster.note(`lease read failed: ${String(err)}`)
          }
          await sleep(25)
        }
      })()

      let trials = 0
      let aimed = 0
      let inLeaseOp = 0
      let stuck = false
      const started = Date.now()
      try {
        try {
          await Promise.all(cluster.nodes.map((_, i) => cluster.start(i)))
          if (!(await cluster.waitForActive(0, 5000))) throw new Error(`no active was elected within 5 s\n${cluster.timeline()}`)
          writer.start()
          if (!(await cluster.waitForAcks(0, 1, 5000))) throw new Error(`no write was acknowledged within 5 s of the first election\n${cluster.timeline()}`)

          for (let t = 0; t < PAUSES; t++) {
            // Every draw is made whatever the branch, so the schedule depends on the seed only.
            const flowMs = 100 + Math.floor(random() * 301)
            const pauseMs = 300 + Math.floor(random() * 1201)
            const pickActive = random() < 0.75
            const other = Math.floor(random() * SIZE)
            const phaseMs = Math.floor(random() * 100)
            const aim = random() < 0.5
            await sleep(flowMs + phaseMs)
            const active = cluster.active() ?? (await cluster.waitForActive(0, SETTLE_MS))
            if (!active) {
              flag(`before pause ${t + 1}: no active for ${SETTLE_MS} ms`)
              stuck = true
              break
            }
            const victim = (pickActive ? active : cluster.nodes[other]) as ClusterNode
            const acked = [...cluster.acks]
            if (aim) {
              aimed++
              if (await cluster.stopInLeaseOp(victim.index, 250)) inLeaseOp++
            } else cluster.stop(victim.index)
            trials++
            await sleep(pauseMs)
            const contAt = Date.now()
            cluster.cont(victim.index)
            const next = await cluster.waitForActive(0, SETTLE_MS)
            if (!next) {
              flag(`pause ${t + 1}: no active within ${SETTLE_MS} ms of SIGCONT`)
              stuck = true
              break
            }
            if (!(await cluster.waitForAcks(contAt, 1, SETTLE_MS))) {
              flag(`pause ${t + 1}: no write acknowledged within ${SETTLE_MS} ms of SIGCONT (${cluster.active()?.who ?? 'no node'} is active)`)
              stuck = true
              break
            }
            const holder = cluster.active() ?? next
            const d = await cluster.dump(holder.index)
            // Only an active's state is complete: a node that just stepped down may be resyncing.
            if (d?.role === 'active') checkHolds(acked, d.items, holder.who, `after pause ${t + 1} (${holder.who} is ${d.role}, epoch ${d.epoch})`)
            else cluster.note(`${holder.who} ${d ? `was ${d.role} by the time it answered a dump` : 'did not answer a dump'} after pause ${t + 1}`)
          }
        } finally {
          await writer.stop()
        }
        await sleep(300)
        const final = await cluster.activeDump(SETTLE_MS)
        if (final) checkHolds(cluster.acks, final.items, final.who, `at the end (${final.who} is active, epoch ${final.epoch})`)
        else problems.push({ at: Date.now(), text: `no active answered a dump at the end (within ${SETTLE_MS} ms)` })
        sampling = false
        await sampler
        problems.push(...epochViolations(cluster.roles, cluster.acks, cluster.t0))
        problems.sort((a, b) => a.at - b.at)

        const secs = ((Date.now() - started) / 1000).toFixed(1)
        const head = `seed ${SEED}: ${trials} SIGSTOP/SIGCONT trials of ${PAUSES} on ${SIZE} nodes (${aimed} aimed at a lease operation, ${inLeaseOp} caught the node holding the lease lock)${stuck ? ' (stopped early: the group got stuck)' : ''}, ${leaseReads} lease reads (highest epoch ${leaseMax}), ${writer.sent} writes sent, ${cluster.acks.length} acknowledged, ${lostSeen.size} acknowledged write(s) lost, ${secs} s`
        const saved = await cluster.saveTimeline('pause-lease')
        console.log(problems.length ? report(cluster, problems, head, saved) : head)
        expect(problems.map((p) => p.text), report(cluster, problems, head, saved)).toEqual([])
        expect(trials).toBe(PAUSES)
      } finally {
        sampling = false
        await sampler
        await writer.stop()
        await cluster.close()
      }
    },
    60_000 + PAUSES * 5_000,
  )
})
