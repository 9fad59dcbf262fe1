/**
 * Checkpointed step sequences with rollback policies.
 *
 * A long-running job is a sequence of named steps. A step's `run` does the
 * work and reports success (and which step is next) or failure (with a code);
 * `checkpoint(marker)` records how far it got. On failure a policy decides:
 * retry the step, roll this step back, roll back to the previous step, or fail
 * the sequence. A step's `rollback` receives the last marker, so it undoes
 * exactly what was done.
 *
 * The progress (current step, phase, attempt, markers, the stack of completed
 * steps, nested sequences) is plain data. Keep it in a replicated root (as
 * `Understudy.runSequence` does) and a new active resumes an interrupted
 * sequence where the old one stopped — rolling the interrupted step back
 * first when it has a rollback function.
 */
import { UnderstudyError } from '../errors.js'

/** What a step's `run` reports. */
export type StepOutcome = { ok: true; next?: string } | { ok: false; code: string; message?: string }

/** What a step's `rollback` reports: on success, the sequence continues at `next` (default: the step rolled back). */
export type RollbackOutcome = { ok: true; next?: string } | { ok: false; code: string; message?: string }

/** What a step function sees. */
export interface StepContext<C> {
  /** The application's context, as given to `runSequence`. */
  readonly context: C
  /** This step's name. */
  readonly step: string
  /** 1 on the first run of this step, 2 on the first retry… */
  readonly attempt: number
  /** The last marker this step checkpointed (what a rollback undoes, or where a resumed run goes on from); undefined when none. */
  readonly marker: unknown
  /** True when this run goes on from an interruption (the active died mid-step, and the step had no rollback), or this rollback undoes one. */
  readonly resumed: boolean
  /** Records how far the step got; resolves once the progress is committed (replicated, with a node). */
  checkpoint(marker: unknown): Promise<void>
  /** Runs a nested sequence, its progress kept under this step's (so it resumes too). */
  run<D>(child: Sequence<D>, context: D, startStep?: string): Promise<SequenceResult>
}

/** What a policy is asked about. */
export type PolicyEvent =
  | {
      type: 'step-failed'
      step: string
      code: string
      message?: string
      /** Runs of this step so far, the failed one included. */
      attempt: number
      /** Rollbacks this sequence has made so far. */
      rollbacks: number
      hasRollback: boolean
      /** The step completed before this one, if any (what 'rollback-previous' returns to). */
      previous?: string
    }
  | { type: 'rollback-failed'; step: string; code: string; message?: string; attempt: number; rollbacks: number }

/** What to do about a failure. After a failed rollback, 'retry' retries the rollback; anything but 'fail' is taken as 'fail'. */
export type PolicyDecision = 'retry' | 'rollback-step' | 'rollback-previous' | 'fail'

/** Decides about a failure; `undefined` falls through (step policy → sequence policy → {@link defaultPolicy}). */
export type Policy = (event: PolicyEvent) => PolicyDecision | undefined

export interface Step<C> {
  name: string
  run(ctx: StepContext<C>): StepOutcome | Promise<StepOutcome>
  /** Undoes what `run` did, up to `ctx.marker`. */
  rollback?(ctx: StepContext<C>): RollbackOutcome | Promise<RollbackOutcome>
  policy?: Policy
}

export interface Sequence<C> {
  name: string
  steps: Step<C>[]
  /** Consulted after the step's own policy, before the default. */
  policy?: Policy
  /** Most rollbacks in one run of the sequence (default 3); past it, the sequence fails whatever the policies say. */
  maxRollbacks?: number
}

/** Retries a failing step up to 5 times, then rolls back to the previous step (up to `maxRollbacks` times), else fails; a failed rollback fails. */
export const DEFAULT_RETRIES = 5
export const DEFAULT_MAX_ROLLBACKS = 3

/** The default policy, for a sequence allowing `maxRollbacks` rollbacks. */
export function defaultPolicy(maxRollbacks = DEFAULT_MAX_ROLLBACKS): (e: PolicyEvent) => PolicyDecision {
  return (e) => {
    if (e.type === 'rollback-failed') return 'fail'
    if (e.attempt <= DEFAULT_RETRIES) return 'retry'
    return e.previous !== undefined && e.rollbacks < maxRollbacks ? 'rollback-previous' : 'fail'
  }
}

/** A sequence's progress: plain, replicable data. */
export interface SequenceProgress {
  sequence: string
  status: 'running' | 'completed' | 'failed'
  /** The step being run or rolled back. */
  step: string | undefined
  phase: 'run' | 'rollback'
  /** Runs of the current step so far. */
  attempt: number
  /** The last checkpoint marker of each step. */
  markers: Map<string, unknown>
  /** Steps completed, most recent last (bounded to the last 64). */
  completed: string[]
  rollbacks: number
  retries: number
  stepsRun: number
  /** Nested sequences' progress, by the step that runs them. */
  children: Map<string, SequenceProgress>
  /** A readable log, most recent last (bounded to the last 100 lines). */
  history: string[]
  error: { step: string; code: string; message?: string } | undefined
}

export interface SequenceResult {
  status: 'completed' | 'failed'
  /** A readable account: how it ended, where, and after how many retries and rollbacks. */
  description: string
  /** The failing step and its code, when failed. */
  step?: string
  code?: string
  progress: SequenceProgress
}

export interface RunOptions {
  /** Progress to record into (a replicated object, to survive failover); a `'running'` one is resumed. */
  progress?: SequenceProgress
  /** Makes progress durable/replicated (e.g. `() => ha.commit()`); awaited after each change of step. */
  commit?: () => Promise<unknown>
}

/** A fresh progress record for `sequence`. */
export function newProgress(sequence: string): SequenceProgress {
  return {
    sequence,
    status: 'running',
    step: undefined,
    phase: 'run',
    attempt: 0,
    markers: new Map(),
    completed: [],
    rollbacks: 0,
    retries: 0,
    stepsRun: 0,
    children: new Map(),
    history: [],
    error: undefined,
  }
}

class SequenceError extends UnderstudyError {
  override name = 'SequenceError'
  constructor(message: string) {
    super('SEQUENCE', message)
  }
}

/** Errors that mean "this node may not go on" (deposed, closed): they stop the run instead of counting as a step failure. */
const STOPS = new Set(['NOT_ACTIVE', 'CLOSED', 'STALE_EPOCH'])

/**
 * Runs `seq` from `startStep` (default: the first step), or resumes the
 * `'running'` progress given in `options.progress`. A completed or failed
 * progress is returned as it is. Rejects only when the node may not go on
 * (NotActiveError, ClosedError): the sequence is then resumed elsewhere.
 */
export async function runSequence<C>(seq: Sequence<C>, context: C, startStep?: string, options: RunOptions = {}): Promise<SequenceResult> {
  checkSequence(seq)
  const p = options.progress ?? newProgress(seq.name)
  const commit = options.commit ?? (async () => undefined)
  const index = new Map(seq.steps.map((s, i) => [s.name, i]))
  const maxRollbacks = seq.maxRollbacks ?? DEFAULT_MAX_ROLLBACKS
  const stepNamed = (name: string) => seq.steps[index.get(name) as number] as Step<C>
  const policies = (step: Step<C>): Policy[] => [step.policy, seq.policy, defaultPolicy(seq.maxRollbacks)].filter((x): x is Policy => !!x)
  const decide = (step: Step<C>, e: PolicyEvent): PolicyDecision => {
    for (const policy of policies(step)) {
      const d = policy(e)
      if (d !== undefined) return d
    }
    return 'fail'
  }
  const note = (line: string) => {
    p.history.push(line)
    if (p.history.length > 100) p.history.splice(0, p.history.length - 100)
  }
  if (p.status !== 'running') return result(p)
  if (p.sequence !== seq.name) throw new SequenceError(`runSequence: the progress given belongs to sequence "${p.sequence}", not "${seq.name}"`)
  if (startStep !== undefined && !index.has(startStep)) throw new SequenceError(`runSequence: sequence "${seq.name}" has no step "${startStep}" (its steps: ${[...index.keys()].join(', ')})`)

  let resumed = p.step !== undefined
  let current: string = p.step ?? startStep ?? (seq.steps[0] as Step<C>).name
  if (!index.has(current)) return fail(current, 'UNKNOWN_STEP', `the progress names step "${current}", which sequence "${seq.name}" does not have`)

  const ctxFor = (step: Step<C>): StepContext<C> => ({
    context,
    step: step.name,
    attempt: p.attempt,
    marker: p.markers.get(step.name),
    resumed,
    checkpoint: async (marker: unknown) => {
      p.markers.set(step.name, marker)
      await commit()
    },
    run: async <D>(child: Sequence<D>, childContext: D, childStart?: string) => {
      let cp = p.children.get(step.name)
      if (!cp || cp.sequence !== child.name) {
        p.children.set(step.name, newProgress(child.name))
        cp = p.children.get(step.name) as SequenceProgress
      }
      return runSequence(child, childContext, childStart, { progress: cp, commit })
    },
  })

  /** Runs a step's rollback (none counts as success); retries it while the policy says so. */
  const rollback = async (step: Step<C>, why: string): Promise<RollbackOutcome> => {
    p.step = step.name
    p.phase = 'rollback'
    note(`rolling back "${step.name}" (${why})${p.markers.has(step.name) ? ` to marker ${describe(p.markers.get(step.name))}` : ''}`)
    await commit()
    for (let tries = 1; ; tries++) {
      if (!step.rollback) return { ok: true }
      const r = await call(() => (step.rollback as NonNullable<Step<C>['rollback']>)(ctxFor(step)))
      if (r.ok) {
        p.markers.delete(step.name)
        return r
      }
      note(`rollback of "${step.name}" failed: ${r.code}${r.message ? ` (${r.message})` : ''}`)
      const d = decide(step, { type: 'rollback-failed', step: step.name, code: r.code, ...(r.message !== undefined ? { message: r.message } : {}), attempt: tries, rollbacks: p.rollbacks })
      if (d !== 'retry') return r
    }
  }

  // Resuming an interrupted step: roll it back first when it can be (a redone rollback included), then run it again.
  // Nested sequences it started resume too, unless it was rolled back (then they start afresh).
  let keepChildren = resumed
  if (resumed) {
    const step = stepNamed(current)
    note(`resumed at "${current}" (${p.phase}) after an interruption`)
    if (step.rollback || p.phase === 'rollback') {
      keepChildren = false
      const r = await rollback(step, 'interrupted')
      if (!r.ok) return fail(step.name, r.code, r.message)
      resumed = false // rolled back: the step starts afresh
      current = r.next ?? current
      if (!index.has(current)) return fail(step.name, 'UNKNOWN_STEP', `rollback of "${step.name}" named step "${current}", which does not exist`)
    }
    p.attempt = 0
  }

  for (;;) {
    const step = stepNamed(current)
    if (p.step !== step.name || p.phase !== 'run') {
      if (p.step !== step.name) p.attempt = 0
      p.step = step.name
      p.phase = 'run'
    }
    p.attempt++
    p.stepsRun++
    if (p.attempt === 1 && !keepChildren) {
      // A fresh run of the step (not a resumed one): its nested sequences start afresh, and a marker from an earlier run is void.
      p.children.delete(step.name)
      p.markers.delete(step.name)
    }
    keepChildren = false
    await commit()
    const outcome = await call(() => step.run(ctxFor(step)))
    resumed = false
    if (outcome.ok) {
      const next = outcome.next ?? seq.steps[(index.get(step.name) as number) + 1]?.name
      p.completed.push(step.name)
      if (p.completed.length > 64) p.completed.splice(0, p.completed.length - 64)
      p.attempt = 0
      if (next === undefined) {
        p.status = 'completed'
        p.step = undefined
        note(`completed after ${p.stepsRun} step runs`)
        await commit()
        return result(p)
      }
      if (!index.has(next)) return fail(step.name, 'UNKNOWN_STEP', `step "${step.name}" named next step "${next}", which does not exist`)
      current = next
      continue
    }
    note(`"${step.name}" failed (attempt ${p.attempt}): ${outcome.code}${outcome.message ? ` (${outcome.message})` : ''}`)
    const previous = p.completed.at(-1)
    const decision = decide(step, {
      type: 'step-failed',
      step: step.name,
      code: outcome.code,
      ...(outcome.message !== undefined ? { message: outcome.message } : {}),
      attempt: p.attempt,
      rollbacks: p.rollbacks,
      hasRollback: !!step.rollback,
      ...(previous !== undefined ? { previous } : {}),
    })
    if (decision === 'retry') {
      p.retries++
      continue
    }
    if (decision === 'fail') return fail(step.name, outcome.code, outcome.message)
    // A hard limit, whatever the policies say: a rollback loop ends.
    if (p.rollbacks >= maxRollbacks) return fail(step.name, outcome.code, `${outcome.message ? `${outcome.message}; ` : ''}gave up after ${p.rollbacks} rollbacks`)
    p.rollbacks++
    const r = await rollback(step, outcome.code)
    if (!r.ok) return fail(step.name, r.code, r.message)
    current = r.next ?? step.name
    if (decision === 'rollback-previous' && r.next === undefined) {
      const prev = p.completed.pop()
      if (prev === undefined) return fail(step.name, outcome.code, `${outcome.message ?? ''}${outcome.message ? '; ' : ''}no previous step to roll back to`)
      const r2 = await rollback(stepNamed(prev), `back from "${step.name}"`)
      if (!r2.ok) return fail(prev, r2.code, r2.message)
      current = r2.next ?? prev
    }
    if (!index.has(current)) return fail(step.name, 'UNKNOWN_STEP', `a rollback named step "${current}", which does not exist`)
    p.attempt = 0
    p.step = undefined // the next run starts the step afresh
  }

  async function fail(step: string, code: string, message?: string): Promise<SequenceResult> {
    p.status = 'failed'
    p.error = { step, code, ...(message !== undefined ? { message } : {}) }
    note(`failed at "${step}": ${code}${message ? ` (${message})` : ''}`)
    await commit()
    return result(p)
  }
}

/** Runs a step or rollback function: a throw is a failure with code `EXCEPTION`, unless it means this node must stop. */
async function call<T extends StepOutcome | RollbackOutcome>(fn: () => T | Promise<T>): Promise<T | { ok: false; code: string; message: string }> {
  try {
    const r = await fn()
    if (!r || typeof r !== 'object' || typeof r.ok !== 'boolean') return { ok: false, code: 'BAD_OUTCOME', message: `a step must return { ok: true, next? } or { ok: false, code }, not ${describe(r)}` }
    return r
  } catch (err) {
    if (err instanceof UnderstudyError && STOPS.has(err.code)) throw err
    return { ok: false, code: 'EXCEPTION', message: err instanceof Error ? err.message : String(err) }
  }
}

function result(p: SequenceProgress): SequenceResult {
  const tally = `${p.stepsRun} step run${p.stepsRun === 1 ? '' : 's'}, ${p.retries} retr${p.retries === 1 ? 'y' : 'ies'}, ${p.rollbacks} rollback${p.rollbacks === 1 ? '' : 's'}`
  if (p.status === 'completed') return { status: 'completed', description: `sequence "${p.sequence}" completed (${tally})`, progress: p }
  const e = p.error ?? { step: p.step ?? '?', code: 'UNKNOWN' }
  return {
    status: 'failed',
    description: `sequence "${p.sequence}" failed at step "${e.step}": ${e.code}${e.message ? ` (${e.message})` : ''} (${tally})`,
    step: e.step,
    code: e.code,
    progress: p,
  }
}

function checkSequence<C>(seq: Sequence<C>): void {
  if (!seq || typeof seq.name !== 'string' || !Array.isArray(seq.steps) || seq.steps.length === 0)
    throw new SequenceError('runSequence: a sequence needs a name and at least one step')
  const names = new Set<string>()
  for (const [i, s] of seq.steps.entries()) {
    if (!s || typeof s.name !== 'string' || !s.name || typeof s.run !== 'function') throw new SequenceError(`sequence "${seq.name}": steps[${i}] needs a name and a run function`)
    if (names.has(s.name)) throw new SequenceError(`sequence "${seq.name}": two steps are called "${s.name}"`)
    names.add(s.name)
  }
}

function describe(v: unknown): string {
  try {
    return JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v)
  } catch {
    return String(v)
  }
}
