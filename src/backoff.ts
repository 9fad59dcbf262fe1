import { defaultRandom, type Random } from './random.js'

/** Reconnection timing: capped exponential backoff with jitter. */
export interface BackoffOptions {
  /** Delay before the first retry, ms (default 50). */
  initialMs: number
  /** Longest delay, ms (default 5000). */
  maxMs: number
  /** Growth per attempt (default 2). */
  factor: number
  /** Fraction of the delay taken away at random, 0–1 (default 0.5), so peers do not retry in lockstep. */
  jitter: number
}

/** Every default reconnection timing in one place. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 5000, factor: 2, jitter: 0.5 }

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: Partial<BackoffOptions> = {}, random: Random = defaultRandom): number {
  const o = { ...DEFAULT_BACKOFF, ...options }
  const raw = Math.min(o.maxMs, o.initialMs * o.factor ** Math.min(attempt, 64))
  return Math.round(raw * (1 - o.jitter * random()))
}
