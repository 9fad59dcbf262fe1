/**
 * The `understudy` command.
 *
 *   understudy supervise [options] -- <command> [args...]
 *   understudy supervise [options] --run "<command line>" [--run "<command line>" ...]
 *   understudy supervise --config supervise.json
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError } from '../src/index.js'
import { Supervisor, type ProcessSpec, type SupervisorOptions } from '../adapters/supervisor.js'

const HELP = `understudy supervise: keep processes running.

Usage:
  understudy supervise [options] -- <command> [args...]
  understudy supervise [options] --run "<command line>" [--run "<command line>" ...]
  understudy supervise --config <file.json> [options]

Options:
  --run <line>            a command line to run (through /bin/sh, with exec); repeat for several
  --name <name>           name of the process given after --
  --config <file>         JSON: { "processes": [{ "name", "command", "args", "cwd", "env" }],
                                  "restart": { "when", "maxRestarts", "windowMs", "resetAfterMs",
                                               "backoff": { "initialMs", "maxMs", "factor", "jitter" } },
                                  "stopTimeoutMs" }
  --on-failure            restart only after a non-zero exit or a signal (default: after any exit)
  --max-restarts <n>      most restarts within the window before giving up (default 5)
  --window <ms>           the window restarts are counted in (default 60000)
  --backoff <ms>          first restart delay, doubling after each quick failure (default 100)
  --backoff-max <ms>      longest restart delay (default 10000)
  --stop-timeout <ms>     after SIGTERM, wait this long before SIGKILL (default 5000)
  -h, --help              this text

SIGINT and SIGTERM stop every process (then SIGKILL after the stop timeout) and exit 0.
SIGHUP, SIGUSR1 and SIGUSR2 are forwarded to every process.
Exit status: 0 when stopped or every process ended cleanly; 1 when one was given up on; 2 on bad usage.
`

const say = (line: string) => process.stderr.write(`[supervise] ${line}\n`)

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`--${flag} must be a number ≥ 0, not "${v}"`)
  return n
}

/** Parses the command line (and the config file it names) into supervisor options. */
export function parseSupervise(argv: string[]): SupervisorOptions | 'help' {
  const dash = argv.indexOf('--')
  const own = dash < 0 ? argv : argv.slice(0, dash)
  const tail = dash < 0 ? [] : argv.slice(dash + 1)
  const { values } = parseArgs({
    args: own,
    options: {
      run: { type: 'string', multiple: true },
      name: { type: 'string' },
      config: { type: 'string' },
      'on-failure': { type: 'boolean' },
      'max-restarts': { type: 'string' },
      window: { type: 'string' },
      backoff: { type: 'string' },
      'backoff-max': { type: 'string' },
      'stop-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  let file: Partial<SupervisorOptions> = {}
  if (values.config) {
    let text: string
    try {
      text = readFileSync(values.config, 'utf8')
    } catch (err) {
      throw new ConfigError(`--config: cannot read ${values.config} (${(err as Error).message})`)
    }
    try {
      file = JSON.parse(text) as Partial<SupervisorOptions>
    } catch (err) {
      throw new ConfigError(`--config: ${values.config} is not valid JSON (${(err as Error).message})`)
    }
    if (!file || typeof file !== 'object' || Array.isArray(file)) throw new ConfigError(`--config: ${values.config} must hold a JSON object`)
    if (file.processes !== undefined && !Array.isArray(file.processes)) throw new ConfigError(`--config: "processes" in ${values.config} must be an array`)
  }
  const processes: ProcessSpec[] = [...(file.processes ?? [])]
  for (const line of values.run ?? []) processes.push({ command: '/bin/sh', args: ['-c', `exec ${line}`], name: line.split(/\s+/)[0] })
  if (tail.length) processes.push({ command: tail[0] as string, args: tail.slice(1), ...(values.name ? { name: values.name } : {}) })
  if (!processes.length) throw new ConfigError('nothing to run: give a command after --, a --run line, or a --config file with "processes"')
  const restart = { ...file.restart }
  if (values['on-failure']) restart.when = 'on-failure'
  const maxRestarts = number('max-restarts', values['max-restarts'])
  if (maxRestarts !== undefined) restart.maxRestarts = maxRestarts
  const windowMs = number('window', values.window)
  if (windowMs !== undefined) restart.windowMs = windowMs
  const initialMs = number('backoff', values.backoff)
  const maxMs = number('backoff-max', values['backoff-max'])
  if (initialMs !== undefined || maxMs !== undefined)
    restart.backoff = { ...restart.backoff, ...(initialMs !== undefined ? { initialMs } : {}), ...(maxMs !== undefined ? { maxMs } : {}) }
  const stopTimeoutMs = number('stop-timeout', values['stop-timeout']) ?? file.stopTimeoutMs
  return { processes, restart, ...(stopTimeoutMs !== undefined ? { stopTimeoutMs } : {}), log: say }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command !== 'supervise') {
    process.stdout.write(HELP)
    return command === undefined || command === '--help' || command === '-h' ? 0 : 2
  }
  let options: SupervisorOptions | 'help'
  let supervisor: Supervisor
  try {
    options = parseSupervise(rest)
    if (options === 'help') {
      process.stdout.write(HELP)
      return 0
    }
    supervisor = new Supervisor(options)
  } catch (err) {
    say(`${(err as Error).message}\n(see understudy supervise --help)`)
    return 2
  }
  let stoppedBySignal = false
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      stoppedBySignal = true
      void supervisor.stop('SIGTERM')
    })
  for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => supervisor.signal(sig))
  supervisor.start()
  const { gaveUp } = await supervisor.ended
  return stoppedBySignal || gaveUp.length === 0 ? 0 : 1
}

process.exitCode = await main(process.argv.slice(2))
