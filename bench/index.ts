/** `npm run bench`: benchmarks, never part of `npm test`. */
import { runCore } from './core.js'

console.log(`Node ${process.version}, ${process.platform}/${process.arch}`)
await runCore(Number(process.env.ROUNDS ?? 5))
