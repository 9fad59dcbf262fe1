import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { seededRandom } from 'understudy-ha'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'

const TRIALS = Number(process.env.CRASH_TRIALS ?? 100)
const ROOT = new URL('../', import.meta.url)

/** A value the writer produced, checked whole: its seq, then filler derived from it. */
function check(value: Uint8Array): number {
  const seq = new DataView(value.buffer, value.byteOffset).getUint32(0)
  expect(value.length).toBe(1000 + ((seq * 7919) % 200_000))
  for (let i = 4; i < value.length; i += 509) expect(value[i]).toBe((seq + i) & 255)
  expect(value[value.length - 1]).toBe((seq + value.length - 1) & 255)
  return seq
}

describe('fs checkpoints survive SIGKILL at any point of a write', () => {
  it(`${TRIALS} trials: the store always opens and yields a whole value at least as new as the last completed save`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-crash-'))
    const rnd = seededRandom(17)
    // One writer process, killed and restarted: each trial kills it after a varied number of completed saves.
    let trials = 0
    try {
      while (trials < TRIALS) {
        const child = fork(new URL('test/e2e/ckpt-writer.ts', ROOT), [join(dir, 'store')], { execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
        let lastSaved = 0
        let saves = 0
        const killAfter = 1 + Math.floor(rnd() * 6)
        await new Promise<void>((resolve) => {
          child.on('message', (m: { saved: number }) => {
            lastSaved = m.saved
            // Kill mid-stream: after a few saves, at a moment the next save is in flight.
            if (++saves >= killAfter) child.kill('SIGKILL')
          })
          child.on('exit', () => resolve())
        })
        const store = fsCheckpoints(join(dir, 'store'))
        const value = await store.load(['counter'])
        expect(value).toBeDefined()
        const seq = check(value as Uint8Array)
        // The writer restarts its own numbering at 1: what matters is that the value is whole and not older than the last acknowledged save.
        expect(seq).toBeGreaterThanOrEqual(lastSaved)
        await store.close()
        trials++
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 240_000)
})
