/**
 * examples/pipe-reader: the classic pipe reader as a replicated step
 * sequence, against a real TCP alphabet server on 127.0.0.1 that garbles
 * letters. The active is killed in the middle of each kind of step; the
 * standby resumes and the output is the alphabet exactly once.
 */
import { describe, expect, it } from 'vitest'
import { pipeReaderDrill } from '../examples/pipe-reader/run.js'
import { ALPHABET } from '../examples/pipe-reader/server.js'

describe('examples/pipe-reader', () => {
  for (const killIn of ['read', 'validate', 'append'])
    for (const seed of [1, 2, 3])
      it(`failover in the middle of "${killIn}" (seed ${seed}): the standby resumes; the alphabet arrives exactly once despite garbled data`, async () => {
        const r = await pipeReaderDrill({ seed, badRate: 0.15, killAt: 5 * seed, killIn })
        expect(r.first).toBeInstanceOf(Error) // the active was stopped mid-sequence
        expect(r.result.status).toBe('completed')
        expect(r.output).toBe(ALPHABET)
        const history = r.result.progress.history.join('\n')
        expect(history).toMatch(new RegExp(`resumed at "${killIn}"`))
        // Only a step with a rollback is rolled back on resume.
        if (killIn === 'read') expect(history).toMatch(/rolling back "read" \(interrupted\)/)
        else expect(history).not.toMatch(/\(interrupted\)/)
      })

  it('garbled letters are caught by validate and re-read (BAD_DATA → roll back to read)', async () => {
    const r = await pipeReaderDrill({ seed: 4, badRate: 0.3, killAt: 100 }) // no kill: killAt is past the end
    expect(r.result.status).toBe('completed')
    expect(r.output).toBe(ALPHABET)
    expect(r.result.progress.history.join('\n')).toMatch(/"validate" failed \(attempt 1\): BAD_DATA/)
    expect(r.result.progress.rollbacks).toBeGreaterThan(0)
  })
})
