/**
 * `npm run demo`, run as a test: real processes under the supervisor, TCP on
 * 127.0.0.1, a file lease, fs checkpoints. Asserts what the demo shows:
 * counter continuity through a kill -9, the restarted process rejoining as
 * standby, and a planned handover.
 */
import { describe, expect, it } from 'vitest'
import { runDemo } from '../demo/node/demo.js'

describe('npm run demo (Node)', () => {
  it('kill -9 the active: the standby continues the count from the last acknowledged value; the supervisor restarts the killed node as standby; a handover follows', async () => {
    const lines: string[] = []
    const r = await runDemo({ everyMs: 100, print: (l) => lines.push(l) })
    // Counter continuity: every count is the previous + 1, across both role changes (sync sections: nothing acknowledged is lost).
    const counts = r.counts.map((c) => c.count)
    expect(counts).toEqual(counts.map((_, i) => i + 1))
    expect(r.failover.found).toBeGreaterThanOrEqual(r.failover.lastAcked)
    expect(r.failover.firstCount).toBe(r.failover.found + 1)
    // Normally the standby is elected; the killed node wins only if it is back first with a checkpoint further along.
    expect(r.restart.id).not.toBe(r.failover.next)
    expect(r.restart.rejoinedAs).toBe('standby')
    expect(r.handover.to).toBe(r.restart.id)
    expect(r.handover.firstCount).toBe(r.handover.lastBefore + 1)
    expect(r.handover.blackoutMs).toBeGreaterThanOrEqual(0)
    expect(r.sharedRefs).toBe(true)
    // The timeline a person reads.
    const text = lines.join('\n')
    expect(text).toMatch(/failover took \d+ ms/)
    expect(text).toMatch(/supervisor +restarted/)
    expect(text).toMatch(/write blackout [\d.]+ ms/)
  }, 90_000)
})
