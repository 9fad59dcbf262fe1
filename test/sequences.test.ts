/**
 * Checkpointed step sequences: policies, rollbacks with markers, nesting, and
 * resumption on a new active after the old one dies mid-step.
 */
import { describe, expect, it } from 'vitest'
import { NotActiveError, Understudy, runSequence, newProgress, type Sequence, type StepOutcome } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

const ok = (next?: string): StepOutcome => (next === undefined ? { ok: true } : { ok: true, next })
const bad = (code: string, message?: string): StepOutcome => ({ ok: false, code, ...(message ? { message } : {}) })

describe('sequences', () => {
  it('runs the steps in order, follows `next`, and describes the result', async () => {
    const trace: string[] = []
    const seq: Sequence<{ n: number }> = {
      name: 'loop',
      steps: [
        { name: 'init', run: ({ context }) => ((context.n = 0), trace.push('init'), ok()) },
        { name: 'inc', run: ({ context }) => (trace.push('inc'), ++context.n < 3 ? ok('inc') : ok('done')) },
        { name: 'skipped', run: () => (trace.push('skipped'), ok()) },
        { name: 'done', run: () => (trace.push('done'), ok()) },
      ],
    }
    const r = await runSequence(seq, { n: 0 })
    expect(trace).toEqual(['init', 'inc', 'inc', 'inc', 'done'])
    expect(r.status).toBe('completed')
    expect(r.description).toBe('sequence "loop" completed (5 step runs, 0 retries, 0 rollbacks)')
  })

  it('default policy: retry a failing step 5 times, then roll back to the previous step (its rollback gets its last marker) and run it again', async () => {
    const trace: string[] = []
    let failures = 6
    const seq: Sequence<null> = {
      name: 'job',
      steps: [
        {
          name: 'prepare',
          run: async (ctx) => {
            trace.push(`prepare#${ctx.attempt}`)
            await ctx.checkpoint({ made: 'tmp-file' })
            return ok()
          },
          rollback: (ctx) => (trace.push(`undo prepare ${JSON.stringify(ctx.marker)}`), { ok: true }),
        },
        { name: 'work', run: (ctx) => (trace.push(`work#${ctx.attempt}`), failures-- > 0 ? bad('BUSY') : ok()) },
      ],
    }
    const r = await runSequence(seq, null)
    expect(trace).toEqual([
      'prepare#1',
      ...[1, 2, 3, 4, 5, 6].map((a) => `work#${a}`),
      'undo prepare {"made":"tmp-file"}',
      'prepare#1',
      'work#1',
    ])
    expect(r.status).toBe('completed')
    expect(r.progress.retries).toBe(5)
    expect(r.progress.rollbacks).toBe(1)
  })

  it('gives up after maxRollbacks, with a readable description naming the step and code', async () => {
    const seq: Sequence<null> = {
      name: 'doomed',
      maxRollbacks: 2,
      steps: [
        { name: 'a', run: () => ok() },
        { name: 'b', run: () => bad('DISK_FULL', 'no space left') },
      ],
    }
    const r = await runSequence(seq, null)
    expect(r).toMatchObject({ status: 'failed', step: 'b', code: 'DISK_FULL' })
    expect(r.description).toBe('sequence "doomed" failed at step "b": DISK_FULL (no space left) (21 step runs, 15 retries, 2 rollbacks)')
  })

  it('a policy overrides only some events and falls through to the sequence’s policy, then the default', async () => {
    const trace: string[] = []
    let runs = 0
    const seq: Sequence<null> = {
      name: 'p',
      policy: (e) => (e.type === 'step-failed' && e.code === 'FATAL' ? 'fail' : undefined),
      steps: [
        {
          name: 's',
          run: () => (trace.push(`s${++runs}`), runs === 1 ? bad('GLITCH') : runs === 2 ? bad('TRANSIENT') : bad('FATAL')),
          rollback: () => (trace.push('undo s'), { ok: true }),
          // The step's own policy handles GLITCH; TRANSIENT falls through to the default (retry); FATAL to the sequence's (fail).
          policy: (e) => (e.type === 'step-failed' && e.code === 'GLITCH' ? 'rollback-step' : undefined),
        },
      ],
    }
    const r = await runSequence(seq, null)
    expect(trace).toEqual(['s1', 'undo s', 's2', 's3'])
    expect(r).toMatchObject({ status: 'failed', code: 'FATAL' })
  })

  it('a policy that would roll back forever is stopped at maxRollbacks', async () => {
    const seq: Sequence<null> = { name: 'loop', maxRollbacks: 4, steps: [{ name: 's', run: () => bad('AGAIN'), policy: () => 'rollback-step' }] }
    const r = await runSequence(seq, null)
    expect(r).toMatchObject({ status: 'failed', code: 'AGAIN' })
    expect(r.progress.rollbacks).toBe(4)
    expect(r.description).toMatch(/gave up after 4 rollbacks/)
  })

  it('rollback-step continues where the rollback says; a failed rollback fails the sequence unless the policy retries it', async () => {
    let rollbackFails = 2
    const trace: string[] = []
    const seq: Sequence<null> = {
      name: 'rb',
      steps: [
        { name: 'a', run: () => (trace.push('a'), ok()) },
        {
          name: 'b',
          run: (ctx) => (trace.push(`b#${ctx.attempt}`), trace.filter((t) => t.startsWith('b')).length === 1 ? bad('X') : ok()),
          rollback: () => (trace.push('undo b'), rollbackFails-- > 0 ? { ok: false, code: 'STUCK' } : { ok: true, next: 'a' }),
          policy: (e) => (e.type === 'step-failed' ? 'rollback-step' : e.type === 'rollback-failed' && e.attempt < 3 ? 'retry' : undefined),
        },
      ],
    }
    const r = await runSequence(seq, null)
    expect(trace).toEqual(['a', 'b#1', 'undo b', 'undo b', 'undo b', 'a', 'b#1'])
    expect(r.status).toBe('completed')

    const never: Sequence<null> = { name: 'never', steps: [{ name: 'x', run: () => bad('X'), rollback: () => ({ ok: false, code: 'NOPE' }), policy: () => 'rollback-step' }] }
    const r2 = await runSequence(never, null)
    expect(r2).toMatchObject({ status: 'failed', step: 'x', code: 'NOPE' })
  })

  it('a throw is a failure with code EXCEPTION; a bad outcome is BAD_OUTCOME; NotActiveError stops the run instead', async () => {
    const thrower: Sequence<null> = { name: 't', steps: [{ name: 'x', run: () => { throw new Error('boom') }, policy: () => 'fail' }] }
    expect(await runSequence(thrower, null)).toMatchObject({ status: 'failed', code: 'EXCEPTION' })
    const odd: Sequence<null> = { name: 'o', steps: [{ name: 'x', run: () => 42 as unknown as StepOutcome, policy: () => 'fail' }] }
    expect(await runSequence(odd, null)).toMatchObject({ status: 'failed', code: 'BAD_OUTCOME' })
    const deposed: Sequence<null> = { name: 'd', steps: [{ name: 'x', run: () => { throw new NotActiveError('deposed') } }] }
    await expect(runSequence(deposed, null)).rejects.toThrow(NotActiveError)
  })

  it('nested sequences: a child runs inside a step, its failure is the step’s outcome', async () => {
    const child: Sequence<{ log: string[] }> = {
      name: 'child',
      steps: [
        { name: 'c1', run: ({ context }) => (context.log.push('c1'), ok()) },
        { name: 'c2', run: ({ context }) => (context.log.push('c2'), ok()) },
      ],
    }
    const log: string[] = []
    const parent: Sequence<null> = {
      name: 'parent',
      steps: [
        { name: 'p1', run: async (ctx) => ((await ctx.run(child, { log })).status === 'completed' ? ok() : bad('CHILD')) },
        { name: 'p2', run: () => (log.push('p2'), ok()) },
      ],
    }
    const r = await runSequence(parent, null)
    expect(log).toEqual(['c1', 'c2', 'p2'])
    expect(r.progress.children.get('p1')?.status).toBe('completed')
  })

  it('refuses bad sequences and unknown steps with messages that name them', async () => {
    await expect(runSequence({ name: 'x', steps: [] }, null)).rejects.toThrow(/at least one step/)
    await expect(runSequence({ name: 'x', steps: [{ name: 'a', run: () => ok() }, { name: 'a', run: () => ok() }] }, null)).rejects.toThrow(/two steps are called "a"/)
    await expect(runSequence({ name: 'x', steps: [{ name: 'a', run: () => ok() }] }, null, 'zz')).rejects.toThrow(/no step "zz"/)
    expect(await runSequence({ name: 'x', steps: [{ name: 'a', run: () => ok('nowhere') }] }, null)).toMatchObject({ status: 'failed', code: 'UNKNOWN_STEP' })
    await expect(runSequence({ name: 'x', steps: [{ name: 'a', run: () => ok() }] }, null, undefined, { progress: newProgress('other') })).rejects.toThrow(/belongs to sequence "other"/)
  })
})

describe('sequences across a failover', () => {
  /** An active and a standby on a memory network; roles set by hand. */
  async function pair() {
    const net = new MemoryNetwork()
    const a = await Understudy.start({ group: 'g', transport: net.join('a'), role: 'active' })
    const b = await Understudy.start({ group: 'g', transport: net.join('b') })
    return { a, b }
  }

  it('the active dies mid-step: the new active resumes, rolling the interrupted step back to its last marker first; completed steps are not run again', async () => {
    const { a, b } = await pair()
    const ran: string[] = []
    let release!: () => void
    const stuck = new Promise<void>((r) => (release = r))
    const make = (node: string, hang: boolean): Sequence<{ out: string[] }> => ({
      name: 'import',
      steps: [
        { name: 'fetch', run: ({ context }) => (ran.push(`${node}:fetch`), context.out.push('fetched'), ok()) },
        {
          name: 'load',
          run: async (ctx) => {
            ran.push(`${node}:load#${ctx.attempt}${ctx.resumed ? ' (resumed)' : ''}`)
            for (let row = (ctx.marker as { row?: number } | undefined)?.row ?? 0; row < 6; row++) {
              ctx.context.out.push(`row ${row}`)
              await ctx.checkpoint({ row: row + 1 })
              if (hang && row === 2) await stuck // the active dies here
            }
            return ok()
          },
          rollback: (ctx) => {
            const upTo = (ctx.marker as { row: number }).row
            ran.push(`${node}:undo load to ${upTo}${ctx.resumed ? ' (resumed)' : ''}`)
            // Undo exactly what the marker says was done.
            ctx.context.out.splice(ctx.context.out.length - upTo, upTo)
            return { ok: true }
          },
        },
        { name: 'report', run: ({ context }) => (ran.push(`${node}:report`), context.out.push('reported'), ok()) },
      ],
    })
    const state = a.register('job', { out: [] as string[] })
    await a.commit()
    const running = a.runSequence('import-1', make('a', true), state)
    // Wait until the standby holds the progress at row 3 of "load".
    for (let i = 0; i < 5000 && (b.sequences().get('import-1')?.markers.get('load') as { row: number } | undefined)?.row !== 3; i++) await new Promise((r) => setTimeout(r, 1))
    expect((b.root('job') as { out: string[] }).out).toEqual(['fetched', 'row 0', 'row 1', 'row 2'])
    await a.abort()
    release()
    await expect(running).rejects.toThrow()
    b.promote()
    const mirror = b.root('job') as { out: string[] }
    // b is alone now: 'async' commits, since sync ones would wait for a standby to join.
    const r = await b.runSequence('import-1', make('b', false), mirror, { mode: 'async' })
    expect(r.status).toBe('completed')
    expect(ran).toEqual(['a:fetch', 'a:load#1', 'b:undo load to 3 (resumed)', 'b:load#1', 'b:report'])
    expect(mirror.out).toEqual(['fetched', 'row 0', 'row 1', 'row 2', 'row 3', 'row 4', 'row 5', 'reported'])
    expect(r.progress.history.join('\n')).toMatch(/resumed at "load" \(run\) after an interruption/)
    // Asking again returns the finished result without running anything.
    expect((await b.runSequence('import-1', make('b', false), mirror, { mode: 'async' })).status).toBe('completed')
    expect(ran).toHaveLength(5)
    await b.close()
  })

  it('a step without a rollback is run again on resume with its last marker, and a nested sequence resumes inside it', async () => {
    const { a, b } = await pair()
    let release!: () => void
    const stuck = new Promise<void>((r) => (release = r))
    const trace: string[] = []
    const child = (node: string, hang: boolean): Sequence<null> => ({
      name: 'child',
      steps: [
        { name: 'c1', run: () => (trace.push(`${node}:c1`), ok()) },
        { name: 'c2', run: async (ctx) => (trace.push(`${node}:c2${ctx.resumed ? ' (resumed)' : ''}`), hang ? await stuck : undefined, ok()) },
      ],
    })
    const parent = (node: string, hang: boolean): Sequence<null> => ({
      name: 'parent',
      steps: [{ name: 'outer', run: async (ctx) => (trace.push(`${node}:outer${ctx.resumed ? ' (resumed)' : ''}`), (await ctx.run(child(node, hang), null)).status === 'completed' ? ok() : bad('CHILD')) }],
    })
    a.register('x', {})
    const running = a.runSequence('nest', parent('a', true), null)
    for (let i = 0; i < 5000 && b.sequences().get('nest')?.children.get('outer')?.step !== 'c2'; i++) await new Promise((r) => setTimeout(r, 1))
    await a.abort()
    release()
    await expect(running).rejects.toThrow()
    b.promote()
    const r = await b.runSequence('nest', parent('b', false), null, { mode: 'async' })
    expect(r.status).toBe('completed')
    expect(trace).toEqual(['a:outer', 'a:c1', 'a:c2', 'b:outer (resumed)', 'b:c2 (resumed)'])
    await b.close()
  })

  it('runSequence on a standby is refused', async () => {
    const { a, b } = await pair()
    expect(() => b.runSequence('x', { name: 's', steps: [{ name: 'a', run: () => ok() }] }, null)).toThrow(NotActiveError)
    await Promise.all([a.close(), b.close()])
  })
})
