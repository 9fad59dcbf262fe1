/**
 * Runs once per `vitest run`: says up front, and again at the end, when the
 * real-browser tests will be skipped (in CI a missing browser fails instead).
 */
import { haveChromium, missingChromiumNotice } from './chromium.js'

export default function setup(): (() => void) | undefined {
  if (haveChromium()) return undefined
  return () => console.warn(`\n${missingChromiumNotice()}\n`)
}
