import { backoffDelay, type BackoffOptions } from './backoff.js'
import type { Clock } from './clock.js'
import { ConfigError } from './errors.js'
import { defaultRandom, type Random } from './random.js'

/**
 * When a supervised process is started again after it ends. Restarts are
 * counted in a sliding window: more than `maxRestarts` within `windowMs` and
 * the supervisor gives up on it (a crash loop is not fixed by retrying
 * faster). Delays grow exponentially, and a run that lasted `resetAfterMs`
 * counts as healthy: the next failure starts again from the first delay.
 */
export interface RestartPolicy {
  /** `'always'` (default): after any exit; `'on-failure'`: after a non-zero exit code or a signal only. */
  when: 'always' | 'on-failure'
  /** Most restarts within `windowMs` (default 5). */
  maxRestarts: number
  /** The window restarts are counted in, ms (default 60 000). */
  windowMs: number
  /** Delay before each restart (default: 100 ms doubling up to 10 s, 20% jitter). */
  backoff: BackoffOptions
  /** A run at least this long resets the backoff (default 10 000 ms). */
  resetAfterMs: number
}

export const DEFAULT_RESTART: RestartPolicy = {
  when: 'always',
  maxRestarts: 5,
  windowMs: 60_000,
  backoff: { initialMs: 100, maxMs: 10_000, factor: 2, jitter: 0.2 },
  resetAfterMs: 10_000,
}

/** Fills in defaults and checks every field, naming the bad one. */
export function restartPolicy(p: Partial<Omit<RestartPolicy, 'backoff'>> & { backoff?: Partial<BackoffOptions> } = {}): RestartPolicy {
  const out: RestartPolicy = { ...DEFAULT_RESTART, ...p, backoff: { ...DEFAULT_RESTART.backoff, ...p.backoff } }
  if (out.when !== 'always' && out.when !== 'on-failure') throw new ConfigError(`restart policy: "when" must be "always" or "on-failure", not ${JSON.stringify(out.when)}`)
  if (!Number.isSafeInteger(out.maxRestarts) || out.maxRestarts < 0) throw new ConfigError(`restart policy: "maxRestarts" must be a whole number ≥ 0, not ${String(out.maxRestarts)}`)
  for (const [k, v] of [['windowMs', out.windowMs], ['resetAfterMs', out.resetAfterMs], ['backoff.initialMs', out.backoff.initialMs], ['backoff.maxMs', out.backoff.maxMs]] as const)
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`restart policy: "${k}" must be a number of ms ≥ 0, not ${String(v)}`)
  if (!(out.backoff.factor >= 1)) throw new ConfigError(`restart policy: "backoff.factor" must be ≥ 1, not ${String(out.backoff.factor)}`)
  if (!(out.backoff.jitter >= 0 && out.backoff.jitter <= 1)) throw new ConfigError(`restart policy: "backoff.jitter" must be between 0 and 1, not ${String(out.backoff.jitter)}`)
  return out
}

/** What to do after an exit. */
export type RestartDecision =
  | { restart: true; delayMs: number; attempt: number }
  | { restart: false; reason: 'clean-exit' | 'too-many-restarts'; restarts: number }

/** How one process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null
  signal: string | null
}

/** Applies a {@link RestartPolicy} to the exits of one process. Pure apart from the clock. */
export class RestartTracker {
  private restarts: number[] = []
  /** Consecutive quick failures: the backoff exponent. */
  private streak = 0

  constructor(
    readonly policy: RestartPolicy,
    private readonly clock: Clock,
    private readonly random: Random = defaultRandom,
  ) {}

  /** Decides after an exit; `ranMs` is how long the process had run. */
  onExit(status: ExitStatus, ranMs: number): RestartDecision {
    const now = this.clock.now()
    const failed = status.signal !== null || status.code !== 0
    if (!failed && this.policy.when === 'on-failure') return { restart: false, reason: 'clean-exit', restarts: this.restarts.length }
    this.restarts = this.restarts.filter((t) => now - t < this.policy.windowMs)
    if (this.restarts.length >= this.policy.maxRestarts) return { restart: false, reason: 'too-many-restarts', restarts: this.restarts.length }
    if (ranMs >= this.policy.resetAfterMs) this.streak = 0
    const delayMs = backoffDelay(this.streak, this.policy.backoff, this.random)
    this.streak++
    this.restarts.push(now)
    return { restart: true, delayMs, attempt: this.restarts.length }
  }
}
