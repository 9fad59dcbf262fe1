/**
 * examples/counter, run as written: real processes on 127.0.0.1, a file
 * lease, fs checkpoints. The active is killed with SIGKILL; the standby
 * continues the count. Then the survivor is killed too and restarted alone:
 * it restores the count from its checkpoint and continues.
 */
import { describe, expect, it } from 'vitest'
import { drill } from '../examples/counter/run.js'

describe('examples/counter (1+1 counter drill)', () => {
  it('no reset and no gap across a kill -9 of the active, nor across losing both copies', async () => {
    const { phases, counts } = await drill({ everyMs: 100, ticks: 3 })
    expect(phases).toHaveLength(2)
    for (const p of phases) {
      // 'all-replicas': every value the dead active reported is in the section; at most one more (written, not yet reported).
      expect(p.found).toBeGreaterThanOrEqual(p.lastCount)
      expect(p.found).toBeLessThanOrEqual(p.lastCount + 1)
      expect(p.firstCount).toBe(p.found + 1)
    }
    expect(phases[0]?.next).not.toBe(phases[0]?.active) // a standby took over
    expect(phases[1]?.next).toBe(phases[1]?.active) // the same node, restarted from its own checkpoint
    expect(counts[0]).toBe(1)
    for (let i = 1; i < counts.length; i++) expect(counts[i]! - counts[i - 1]!).toBeGreaterThanOrEqual(1)
    for (let i = 1; i < counts.length; i++) expect(counts[i]! - counts[i - 1]!).toBeLessThanOrEqual(2)
  }, 90_000)
})
