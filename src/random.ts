/** A source of uniform numbers in [0, 1). Injected so ids and jitter are reproducible by seed. */
export type Random = () => number

/**
 * A small, fast seeded generator (mulberry32). Not cryptographic: it is for
 * ids, jitter and simulations, where reproducibility matters more than secrecy.
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The default source: `Math.random`. */
export const defaultRandom: Random = Math.random

/** A random identifier of `length` base-36 characters drawn from `random`. */
export function randomId(random: Random, length = 12): string {
  let s = ''
  while (s.length < length) s += Math.floor(random() * 36).toString(36)
  return s
}
