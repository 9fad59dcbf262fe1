/**
 * The client of the classic pipe reader example, as a checkpointed step
 * sequence: open the pipe, read a chunk, validate it, append it; repeat until
 * the alphabet is complete; close.
 *
 * - `read` checkpoints where the chunk started; its rollback discards the
 *   chunk and reopens the pipe at that marker — exactly what it undoes.
 * - `validate` fails with BAD_DATA on a garbled letter; the default policy
 *   would retry it (useless: the data is what it is), so its own policy rolls
 *   back to the previous step, `read`, which reads the chunk again.
 * - `append` is idempotent (the chunk and the output change in one batch), so
 *   a resumed run never appends twice.
 *
 * The job (`output`, `chunk`) lives in the replicated graph; the socket is a
 * local resource, reopened where needed — after a failover, on the new active.
 */
import { connect, type Socket } from 'node:net'
import type { Sequence, StepOutcome } from 'understudy-ha'
import { ALPHABET } from './server.js'

export const CHUNK = 5

/** The replicated part of the job. */
export interface Job {
  output: string
  chunk: string
}

/** What one node holds locally: the open pipe and the bytes read from it but not yet taken. */
export interface ReaderContext {
  job: Job
  port: number
  local: { socket?: Socket; buffer: string; ended: boolean; waiting?: () => void }
  /** Called at the start of every step run (for demos and tests). */
  onStep?: (step: string) => void | Promise<void>
}

/** Opens the pipe at letter `from`. */
async function open(ctx: ReaderContext, from: number): Promise<void> {
  close(ctx)
  const socket = connect({ port: ctx.port, host: '127.0.0.1' })
  const local: ReaderContext['local'] = { socket, buffer: '', ended: false }
  ctx.local = local
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => {
    local.buffer += d
    local.waiting?.()
  })
  socket.on('end', () => {
    local.ended = true
    local.waiting?.()
  })
  socket.on('error', () => {
    local.ended = true
    local.waiting?.()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write(`FROM ${from}\n`)
}

function close(ctx: ReaderContext): void {
  ctx.local.socket?.destroy()
  ctx.local = { buffer: '', ended: false }
}

/** Takes up to `n` letters from the pipe, waiting for them. */
async function take(ctx: ReaderContext, n: number): Promise<string> {
  const local = ctx.local
  while (local.buffer.length < n && !local.ended) await new Promise<void>((r) => (local.waiting = r))
  const out = local.buffer.slice(0, n)
  local.buffer = local.buffer.slice(n)
  return out
}

const ok = (next?: string): StepOutcome => (next ? { ok: true, next } : { ok: true })

export const pipeReader: Sequence<ReaderContext> = {
  name: 'pipe-reader',
  steps: [
    {
      name: 'open',
      run: async (s) => {
        await s.context.onStep?.('open')
        await open(s.context, s.context.job.output.length)
        return ok()
      },
      rollback: (s) => (close(s.context), { ok: true }),
    },
    {
      name: 'read',
      run: async (s) => {
        const ctx = s.context
        await ctx.onStep?.('read')
        const from = ctx.job.output.length
        await s.checkpoint({ from })
        // After a failover the pipe is not open on this node: reopen it where the job is.
        if (!ctx.local.socket) await open(ctx, from)
        const want = Math.min(CHUNK, ALPHABET.length - from)
        const chunk = await take(ctx, want)
        if (chunk.length < want) return { ok: false, code: 'SHORT_READ', message: `got ${chunk.length} of ${want} letters` }
        ctx.job.chunk = chunk
        return ok()
      },
      // Undo the read: forget the chunk, and reopen the pipe at the marker so the same letters come again.
      rollback: async (s) => {
        const from = (s.marker as { from: number } | undefined)?.from ?? s.context.job.output.length
        s.context.job.chunk = ''
        await open(s.context, from)
        return { ok: true, next: 'read' }
      },
    },
    {
      name: 'validate',
      run: async (s) => {
        const { job } = s.context
        await s.context.onStep?.('validate')
        const expected = ALPHABET.slice(job.output.length, job.output.length + job.chunk.length)
        for (let i = 0; i < job.chunk.length; i++)
          if (job.chunk[i] !== expected[i]) return { ok: false, code: 'BAD_DATA', message: `"${job.chunk[i]}" at letter ${job.output.length + i}, expected "${expected[i]}"` }
        return ok()
      },
      // Validating the same bytes again cannot help: go back and read them again.
      policy: (e) => (e.type === 'step-failed' && e.code === 'BAD_DATA' ? 'rollback-previous' : undefined),
    },
    {
      name: 'append',
      run: async (s) => {
        const { job } = s.context
        await s.context.onStep?.('append')
        if (job.chunk) {
          job.output += job.chunk
          job.chunk = ''
        }
        return ok(job.output.length < ALPHABET.length ? 'read' : 'close')
      },
    },
    {
      name: 'close',
      run: (s) => (close(s.context), ok()),
    },
  ],
  // Garbled data can come many times in one run: allow as many re-reads as the alphabet has chunks, several times over.
  maxRollbacks: 50,
}
