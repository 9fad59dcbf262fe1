/** Runs one measurement in a fresh process and prints it as JSON on the last line. */
import { measureTransport } from './transports.js'

const [what, arg] = process.argv.slice(2)
if (what === 'transport') console.log(JSON.stringify(await measureTransport(arg as string)))
