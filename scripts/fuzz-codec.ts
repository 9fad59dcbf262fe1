/**
 * The differential fuzz of the frame reader against cbor-x, at any size and
 * seed (the test suite runs 100,000 inputs of one seed):
 *
 *   npx tsx scripts/fuzz-codec.ts --inputs 1000000 --seed 7
 *   npm run fuzz:codec -- --inputs 1000000 --seed 7
 *
 * Prints the counts by outcome, refusal and generator, and every disagreement
 * with its seed, index and bytes; exits 1 on any disagreement. Inputs depend on
 * one another only through the reader's string cache, so a disagreement
 * replays with the same seed and `--inputs <index + 1>`.
 */
import { parseArgs } from 'node:util'
import { fuzzCodec } from '../test/support/codec-fuzz.js'

const { values } = parseArgs({ options: { inputs: { type: 'string', default: '1000000' }, seed: { type: 'string', default: '1' } } })
const inputs = Number(values.inputs)
const seed = Number(values.seed)
if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: tsx scripts/fuzz-codec.ts --inputs N --seed S')
  process.exit(2)
}

const started = performance.now()
const report = fuzzCodec({
  inputs,
  seed,
  onProgress: (done, r) => process.stderr.write(`\r${done.toLocaleString('en')} / ${inputs.toLocaleString('en')} inputs, ${r.disagreed} disagreements`),
})
process.stderr.write('\n')
const seconds = (performance.now() - started) / 1000

console.log(`seed ${seed}: ${report.inputs.toLocaleString('en')} inputs in ${seconds.toFixed(1)} s`)
console.log(`  agreed (same value):            ${report.agreed}`)
console.log(`  both refused:                   ${report.bothRefused}`)
console.log(`  refused by us, outside subset:  ${Object.values(report.refusals).reduce((a, b) => a + b, 0)}`)
for (const [why, n] of Object.entries(report.refusals).sort((a, b) => b[1] - a[1])) console.log(`    ${why}: ${n}`)
console.log(`  disagreements:                  ${report.disagreed}`)
console.log(`  by generator: ${Object.entries(report.sources).map(([k, n]) => `${k} ${n}`).join(', ')}`)
for (const d of report.disagreements) {
  console.log(`\nDISAGREEMENT at input ${d.index} (${d.source}); replay: npx tsx scripts/fuzz-codec.ts --seed ${d.seed} --inputs ${d.index + 1}`)
  console.log(`  bytes:  ${d.hex}`)
  console.log(`  ours:   ${d.ours}`)
  console.log(`  cbor-x: ${d.cborx}`)
}
process.exit(report.disagreed === 0 ? 0 : 1)
