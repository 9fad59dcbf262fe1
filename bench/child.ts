/** Runs one measurement in a fresh process and prints it as JSON on the last line. */
import { measureTransport } from './transports.js'

const [what, arg, arg2] = process.argv.slice(2)
if (what === 'transport') console.log(JSON.stringify(await measureTransport(arg as string)))
if (what === 'peer') {
  const { PEERS, NotApplicable } = await import('./peers.js')
  const run = PEERS[arg as string]
  if (!run) throw new Error(`no peer "${arg}"`)
  try {
    console.log(JSON.stringify(await run(arg2 as 'a')))
  } catch (err) {
    if (!(err instanceof NotApplicable)) throw err
    console.log(JSON.stringify({ na: err.message }))
  }
}
if (what === 'scale') {
  const { measureScale } = await import('./scale.js')
  console.log(JSON.stringify(await measureScale(Number(arg))))
}
