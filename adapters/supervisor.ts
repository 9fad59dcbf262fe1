/**
 * A process supervisor for Node (the "overlord" of classic HA setups): runs
 * commands, restarts one that exits or crashes under a {@link RestartPolicy}
 * (a sliding window of restarts, exponential backoff), forwards signals, and
 * stops everything cleanly — SIGTERM, then SIGKILL after `stopTimeoutMs`.
 * The `understudy supervise` command is a thin layer over it.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { ConfigError, Emitter, RestartTracker, realClock, restartPolicy, type BackoffOptions, type Clock, type Random, type RestartPolicy } from '../src/index.js'

/** One command to keep running. */
export interface ProcessSpec {
  /** Shown in reports (default: the command's base name, numbered when repeated). */
  name?: string
  command: string
  args?: string[]
  cwd?: string
  /** Added to the supervisor's environment. */
  env?: Record<string, string>
}

export interface SupervisorOptions {
  processes: ProcessSpec[]
  restart?: Partial<Omit<RestartPolicy, 'backoff'>> & { backoff?: Partial<BackoffOptions> }
  /** After SIGTERM (or the stop signal), how long a process has before SIGKILL (default 5000 ms). */
  stopTimeoutMs?: number
  /** Children's stdio (default `'inherit'`). With `'pipe'`, read `child(name).stdout`. */
  stdio?: 'inherit' | 'pipe'
  /** Reports, one line each (default: none; the CLI prints them to stderr). */
  log?: (line: string) => void
  /** Time source for backoff delays and windows (default: the real clock). */
  clock?: Clock
  /** Jitter source (default `Math.random`). */
  random?: Random
}

export interface SupervisorEvents {
  /** A process started (again). `attempt` is 0 for the first start. */
  start: { name: string; pid: number; attempt: number }
  /** A process ended. */
  exit: { name: string; code: number | null; signal: string | null; ranMs: number }
  /** It will start again in `delayMs`. */
  restart: { name: string; attempt: number; delayMs: number }
  /** It will not be started again: it exited cleanly under `'on-failure'`, or restarted too often. */
  done: { name: string; reason: 'clean-exit' | 'too-many-restarts'; restarts: number }
  /** Every process has ended for good (after `stop()`, or when none will restart). */
  stopped: { gaveUp: string[] }
}

interface Slot {
  name: string
  spec: ProcessSpec
  tracker: RestartTracker
  child: ChildProcess | undefined
  startedAt: number
  attempt: number
  timer: unknown
  done: boolean
  exited: Promise<void> | undefined
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`)

/** Runs and watches `options.processes`; call {@link Supervisor.start}. */
export class Supervisor extends Emitter<SupervisorEvents> {
  private readonly slots: Slot[]
  private readonly clock: Clock
  private readonly stopTimeoutMs: number
  private readonly log: (line: string) => void
  private stopping = false
  private readonly gaveUp: string[] = []
  private finished: (() => void) | undefined
  /** Resolves once every process has ended for good. */
  readonly ended: Promise<{ gaveUp: string[] }>

  constructor(private readonly options: SupervisorOptions) {
    super()
    if (!Array.isArray(options.processes) || options.processes.length === 0) throw new ConfigError('supervisor: give at least one process to run')
    const policy = restartPolicy(options.restart)
    this.clock = options.clock ?? realClock
    this.stopTimeoutMs = options.stopTimeoutMs ?? 5000
    this.log = options.log ?? (() => undefined)
    options.processes.forEach((spec, i) => {
      if (!spec || typeof spec.command !== 'string' || !spec.command) throw new ConfigError(`supervisor: processes[${i}] needs a "command"`)
      if (spec.args !== undefined && (!Array.isArray(spec.args) || spec.args.some((a) => typeof a !== 'string')))
        throw new ConfigError(`supervisor: processes[${i}].args must be an array of strings`)
    })
    // Unnamed processes are called after their command; a command run more than once gets #1, #2…
    const base = (spec: ProcessSpec) => spec.command.split(/[\\/]/).pop() || spec.command
    const unnamed = new Map<string, number>()
    for (const spec of options.processes) if (!spec.name) unnamed.set(base(spec), (unnamed.get(base(spec)) ?? 0) + 1)
    const seen = new Map<string, number>()
    this.slots = options.processes.map((spec) => {
      let name = spec.name
      if (!name) {
        const b = base(spec)
        const n = (seen.get(b) ?? 0) + 1
        seen.set(b, n)
        name = (unnamed.get(b) as number) > 1 ? `${b}#${n}` : b
      }
      return { name, spec, tracker: new RestartTracker(policy, this.clock, options.random), child: undefined, startedAt: 0, attempt: 0, timer: undefined, done: false, exited: undefined }
    })
    if (new Set(this.slots.map((s) => s.name)).size !== this.slots.length) throw new ConfigError('supervisor: process names must be unique')
    this.ended = new Promise((resolve) => (this.finished = () => resolve({ gaveUp: [...this.gaveUp] })))
  }

  /** Names of the supervised processes. */
  get names(): string[] {
    return this.slots.map((s) => s.name)
  }

  /** Starts every process. */
  start(): this {
    for (const s of this.slots) this.launch(s)
    return this
  }

  /** The running child process called `name`, if it is running now. */
  child(name: string): ChildProcess | undefined {
    return this.slot(name).child
  }

  /** Sends `signal` to every running process (as the CLI does with SIGHUP, SIGUSR1 and SIGUSR2). */
  signal(signal: NodeJS.Signals, name?: string): void {
    for (const s of name === undefined ? this.slots : [this.slot(name)]) s.child?.kill(signal)
  }

  /**
   * Stops supervising: no more restarts; each process gets `signal` (default
   * SIGTERM) and, after `stopTimeoutMs`, SIGKILL. Resolves once all have exited.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.stopping) {
      this.stopping = true
      this.log(`stopping: ${signal} to ${this.slots.filter((s) => s.child).map((s) => s.name).join(', ') || 'nothing running'}`)
      for (const s of this.slots) {
        this.clock.clearTimeout(s.timer)
        s.timer = undefined
        const child = s.child
        if (!child) continue
        child.kill(signal)
        const late = setTimeout(() => {
          this.log(`${s.name}: still running ${fmtMs(this.stopTimeoutMs)} after ${signal}; SIGKILL`)
          child.kill('SIGKILL')
        }, this.stopTimeoutMs)
        void s.exited?.then(() => clearTimeout(late))
      }
      this.checkEnded()
    }
    await this.ended
  }

  private slot(name: string): Slot {
    const s = this.slots.find((x) => x.name === name)
    if (!s) throw new ConfigError(`supervisor: no process is called "${name}" (there are ${this.names.join(', ')})`)
    return s
  }

  private launch(s: Slot): void {
    s.timer = undefined
    if (this.stopping) return this.checkEnded()
    const opts: SpawnOptions = {
      cwd: s.spec.cwd,
      env: { ...process.env, ...s.spec.env },
      stdio: this.options.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    }
    const child = nodeSpawn(s.spec.command, s.spec.args ?? [], opts)
    s.child = child
    s.startedAt = this.clock.now()
    let resolveExit!: () => void
    s.exited = new Promise((r) => (resolveExit = r))
    child.once('error', (err) => {
      // Could not start (no such command): it counts as a failed run.
      this.log(`${s.name}: could not start: ${err.message}`)
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) this.onExit(s, child, 127, null, resolveExit)
    })
    child.once('exit', (code, signal) => this.onExit(s, child, code, signal, resolveExit))
    if (child.pid !== undefined) {
      this.log(`${s.name}: started (pid ${child.pid})${s.attempt ? `, restart ${s.attempt}` : ''}`)
      this.emit('start', { name: s.name, pid: child.pid, attempt: s.attempt })
    }
  }

  private onExit(s: Slot, child: ChildProcess, code: number | null, signal: string | null, resolveExit: () => void): void {
    if (s.child !== child) return
    s.child = undefined
    resolveExit()
    const ranMs = this.clock.now() - s.startedAt
    this.emit('exit', { name: s.name, code, signal, ranMs })
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
    if (this.stopping) {
      this.log(`${s.name}: ${how}`)
      s.done = true
      return this.checkEnded()
    }
    const d = s.tracker.onExit({ code, signal }, ranMs)
    if (!d.restart) {
      s.done = true
      if (d.reason === 'too-many-restarts') {
        this.gaveUp.push(s.name)
        this.log(`${s.name}: ${how} after ${fmtMs(ranMs)}; giving up: ${d.restarts} restarts within ${fmtMs(s.tracker.policy.windowMs)}`)
      } else this.log(`${s.name}: ${how}; not restarted (policy "on-failure")`)
      this.emit('done', { name: s.name, reason: d.reason, restarts: d.restarts })
      return this.checkEnded()
    }
    s.attempt++
    this.log(`${s.name}: ${how} after ${fmtMs(ranMs)}; restarting in ${fmtMs(d.delayMs)} (${d.attempt} of ${s.tracker.policy.maxRestarts} within ${fmtMs(s.tracker.policy.windowMs)})`)
    this.emit('restart', { name: s.name, attempt: s.attempt, delayMs: d.delayMs })
    s.timer = this.clock.setTimeout(() => this.launch(s), d.delayMs)
  }

  private checkEnded(): void {
    if (!this.finished) return
    if (this.slots.some((s) => s.child || s.timer !== undefined || (!s.done && !this.stopping))) return
    const done = this.finished
    this.finished = undefined
    this.emit('stopped', { gaveUp: [...this.gaveUp] })
    done()
  }
}

/** Creates a {@link Supervisor} and starts it. */
export function supervise(options: SupervisorOptions): Supervisor {
  return new Supervisor(options).start()
}
