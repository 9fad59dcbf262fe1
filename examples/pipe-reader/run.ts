/**
 * `npm run pipe-reader`: the classic pipe reader, as a replicated step
 * sequence. An active and a standby (in one process, over the in-memory
 * transport) share the job; the alphabet server garbles some letters; halfway
 * through, the active is killed and the standby resumes the sequence.
 */
import { Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'
import { pipeReader, type Job, type ReaderContext } from './reader.js'
import { startAlphabetServer } from './server.js'

/** Runs the drill: the active is killed at the start of step `killIn` once `killAt` letters are in. */
export async function pipeReaderDrill(options: { seed?: number; badRate?: number; killAt?: number; killIn?: string; log?: (line: string) => void } = {}) {
  const log = options.log ?? (() => undefined)
  const server = await startAlphabetServer({ seed: options.seed ?? 7, badRate: options.badRate ?? 0.1 })
  const [ta, tb] = memoryPair()
  const active = await Understudy.start({ group: 'pipe', transport: ta, role: 'active' })
  const standby = await Understudy.start({ group: 'pipe', transport: tb })
  const job = active.register<Job>('job', { output: '', chunk: '' })
  await active.commit()
  const killAt = options.killAt ?? 13
  let killed = false
  const ctxA: ReaderContext = {
    job,
    port: server.port,
    local: { buffer: '', ended: false },
    onStep: async (step) => {
      log(`  active  ${step.padEnd(8)} output "${job.output}"${job.chunk ? ` chunk "${job.chunk}"` : ''}`)
      if (!killed && step === (options.killIn ?? 'read') && job.output.length >= killAt) {
        killed = true
        log(`  — the active dies in the middle of "${step}" —`)
        await active.abort()
      }
    },
  }
  const first = await active.runSequence('reader', pipeReader, ctxA).catch((err: Error) => err)
  if (!killed) await active.close()
  standby.promote()
  const mirror = standby.root('job') as Job
  const ctxB: ReaderContext = {
    job: mirror,
    port: server.port,
    local: { buffer: '', ended: false },
    onStep: (step) => log(`  standby ${step.padEnd(8)} output "${mirror.output}"${mirror.chunk ? ` chunk "${mirror.chunk}"` : ''}`),
  }
  const result = await standby.runSequence('reader', pipeReader, ctxB, { mode: 'async' })
  await standby.close()
  await server.close()
  return { first, result, output: mirror.output, connections: server.connections }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await pipeReaderDrill({ log: (l) => console.log(l) })
  console.log(`\nthe active stopped with: ${r.first instanceof Error ? r.first.message : r.first.description}`)
  console.log(`the standby: ${r.result.description}`)
  console.log(`output: "${r.output}" (${r.connections} pipe connections)`)
  console.log('\nprogress history:')
  for (const line of r.result.progress.history) console.log(`  ${line}`)
}
