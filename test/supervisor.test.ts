/**
 * The supervisor: the restart policy on a virtual clock, then real child
 * processes through the Supervisor class and through `understudy supervise`.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { ConfigError, RestartTracker, VirtualClock, restartPolicy } from 'understudy-ha'
import { Supervisor, type SupervisorEvents } from 'understudy-ha/adapters/supervisor'

const CLI = new URL('../bin/understudy.ts', import.meta.url).pathname
const node = (code: string) => ({ command: process.execPath, args: ['-e', code] })
const CRASH = { killed: { code: null, signal: 'SIGKILL' }, failed: { code: 3, signal: null }, clean: { code: 0, signal: null } } as const

describe('restart policy (virtual clock)', () => {
  const tracker = (p: Parameters<typeof restartPolicy>[0] = {}) => {
    const clock = new VirtualClock()
    return { clock, t: new RestartTracker(restartPolicy({ ...p, backoff: { jitter: 0, ...p.backoff } }), clock) }
  }

  it('backs off exponentially up to the cap while runs are short, and starts over after a healthy run', () => {
    const { clock, t } = tracker({ maxRestarts: 100, backoff: { initialMs: 100, maxMs: 1000 }, resetAfterMs: 5000 })
    const delays: number[] = []
    for (let i = 0; i < 6; i++) {
      const d = t.onExit(CRASH.killed, 50)
      if (!d.restart) throw new Error('gave up')
      delays.push(d.delayMs)
      clock.advance(d.delayMs + 50)
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000])
    const after = t.onExit(CRASH.failed, 6000)
    expect(after.restart && after.delayMs).toBe(100)
  })

  it('gives up after maxRestarts within the window; restarts older than the window no longer count', () => {
    const { clock, t } = tracker({ maxRestarts: 3, windowMs: 10_000, backoff: { initialMs: 1, maxMs: 1 } })
    for (let i = 0; i < 3; i++) {
      expect(t.onExit(CRASH.failed, 10).restart).toBe(true)
      clock.advance(1000)
    }
    expect(t.onExit(CRASH.failed, 10)).toEqual({ restart: false, reason: 'too-many-restarts', restarts: 3 })
    clock.advance(7001) // the first restart (t=0) has left the window
    expect(t.onExit(CRASH.failed, 10).restart).toBe(true)
  })

  it("'on-failure' leaves a clean exit alone; 'always' restarts it", () => {
    expect(tracker({ when: 'on-failure' }).t.onExit(CRASH.clean, 10)).toEqual({ restart: false, reason: 'clean-exit', restarts: 0 })
    expect(tracker({ when: 'on-failure' }).t.onExit(CRASH.killed, 10).restart).toBe(true)
    expect(tracker().t.onExit(CRASH.clean, 10).restart).toBe(true)
  })

  it('bad policies are a ConfigError naming the field', () => {
    expect(() => restartPolicy({ maxRestarts: -1 })).toThrow(/maxRestarts/)
    expect(() => restartPolicy({ when: 'sometimes' as 'always' })).toThrow(ConfigError)
    expect(() => restartPolicy({ backoff: { factor: 0.5 } })).toThrow(/backoff\.factor/)
    expect(() => restartPolicy({ windowMs: Number.NaN })).toThrow(/windowMs/)
  })
})

/** Collects a supervisor's events. */
function record(s: Supervisor) {
  const events: { type: keyof SupervisorEvents; e: unknown }[] = []
  for (const type of ['start', 'exit', 'restart', 'done', 'stopped'] as const) s.on(type, (e) => events.push({ type, e }))
  const next = <K extends keyof SupervisorEvents>(type: K) => new Promise<SupervisorEvents[K]>((r) => s.once(type, r))
  return { events, next }
}

describe('Supervisor with real processes', () => {
  it('restarts a crashing process with backoff, then gives up after maxRestarts and reports it', async () => {
    const lines: string[] = []
    const s = new Supervisor({ processes: [{ name: 'crasher', ...node('process.exit(3)') }], restart: { maxRestarts: 2, backoff: { initialMs: 5, maxMs: 20 } }, log: (l) => lines.push(l) })
    const { events } = record(s)
    s.start()
    expect(await s.ended).toEqual({ gaveUp: ['crasher'] })
    expect(events.filter((e) => e.type === 'start')).toHaveLength(3)
    expect(events.filter((e) => e.type === 'restart').map((e) => (e.e as { attempt: number }).attempt)).toEqual([1, 2])
    expect(events.find((e) => e.type === 'done')?.e).toEqual({ name: 'crasher', reason: 'too-many-restarts', restarts: 2 })
    expect(lines.join('\n')).toMatch(/crasher: exited with code 3 after .*; restarting in \d+ ms \(1 of 2 within 60\.0 s\)/)
    expect(lines.join('\n')).toMatch(/crasher: exited with code 3 .*giving up: 2 restarts within 60\.0 s/)
  })

  it('a process killed with SIGKILL comes back with a new pid; stop() ends everything', async () => {
    const s = new Supervisor({ processes: [{ name: 'worker', ...node('setInterval(() => {}, 1000)') }, { name: 'other', ...node('setInterval(() => {}, 1000)') }], restart: { backoff: { initialMs: 5 } } })
    const { next } = record(s)
    const first = next('start')
    s.start()
    await first
    const pid = s.child('worker')?.pid as number
    const restarted = next('restart')
    const again = new Promise<number>((r) => s.on('start', (e) => e.name === 'worker' && e.attempt === 1 && r(e.pid)))
    process.kill(pid, 'SIGKILL')
    expect(await restarted).toMatchObject({ name: 'worker', attempt: 1 })
    const newPid = await again
    expect(newPid).not.toBe(pid)
    await s.stop()
    expect(s.child('worker')).toBeUndefined()
    expect(s.child('other')).toBeUndefined()
    expect(() => process.kill(newPid, 0)).toThrow() // gone
  })

  it('stop() escalates to SIGKILL for a process that ignores SIGTERM', async () => {
    const s = new Supervisor({
      processes: [{ name: 'stubborn', ...node("process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)") }],
      stdio: 'pipe',
      stopTimeoutMs: 300,
    })
    const exits = record(s).next('exit')
    s.start()
    await new Promise((r) => s.child('stubborn')?.stdout?.once('data', r))
    await s.stop()
    expect(await exits).toMatchObject({ name: 'stubborn', signal: 'SIGKILL' })
  })

  it('signal() forwards a signal to the processes', async () => {
    const s = new Supervisor({ processes: [{ name: 'listener', ...node("process.on('SIGUSR2', () => console.log('got SIGUSR2')); console.log('ready'); setInterval(() => {}, 1000)") }], stdio: 'pipe' })
    s.start()
    const out = createInterface({ input: s.child('listener')?.stdout as NodeJS.ReadableStream })
    const lines: string[] = []
    const seen = (want: string) => new Promise<void>((r) => out.on('line', (l) => (lines.push(l), l === want && r())))
    await seen('ready')
    const got = seen('got SIGUSR2')
    s.signal('SIGUSR2')
    await got
    await s.stop()
  })

  it('refuses bad input with ConfigError', () => {
    expect(() => new Supervisor({ processes: [] })).toThrow(/at least one process/)
    expect(() => new Supervisor({ processes: [{ command: '' }] })).toThrow(/processes\[0\] needs a "command"/)
    expect(() => new Supervisor({ processes: [{ command: 'x' }, {} as { command: string }] })).toThrow(/processes\[1\] needs a "command"/)
    expect(new Supervisor({ processes: [{ command: '/usr/bin/node' }, { command: 'node' }, { command: 'sh' }] }).names).toEqual(['node#1', 'node#2', 'sh'])
    expect(() => new Supervisor({ processes: [{ name: 'a', command: 'x' }, { name: 'a', command: 'y' }] })).toThrow(/unique/)
  })
})

/** Runs `understudy supervise` from source; resolves with its exit code, stdout and stderr. */
function cli(args: string[], onStdout?: (line: string, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr.on('data', (d) => (stderr += String(d)))
  createInterface({ input: child.stdout }).on('line', (l) => {
    stdout += `${l}\n`
    onStdout?.(l, child)
  })
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('exit', (code) => setImmediate(() => resolve({ code, stdout, stderr }))))
}

describe('understudy supervise (the command)', () => {
  it('restarts a crashing command, reports each restart, gives up and exits 1', async () => {
    const r = await cli(['supervise', '--max-restarts', '2', '--backoff', '5', '--name', 'crasher', '--', process.execPath, '-e', 'process.exit(4)'])
    expect(r.code).toBe(1)
    expect(r.stderr.match(/restarting in/g)).toHaveLength(2)
    expect(r.stderr).toMatch(/\[supervise\] crasher: exited with code 4 .*giving up/)
  }, 30_000)

  it('SIGTERM stops every process (they get SIGTERM) and exits 0; --run lines run through the shell', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-supervise-'))
    const marker = join(dir, 'got-sigterm')
    const script = join(dir, 'child.cjs')
    await writeFile(script, `process.on('SIGTERM', () => { require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes'); process.exit(0) }); console.log('ready'); setInterval(() => {}, 1000)`)
    let readyCount = 0
    const r = await cli(['supervise', '--run', `${process.execPath} ${script}`, '--', process.execPath, '-e', "console.log('ready'); setInterval(() => {}, 1000)"], (line, child) => {
      if (line === 'ready' && ++readyCount === 2) child.kill('SIGTERM')
    })
    expect(r.code).toBe(0)
    expect(await readFile(marker, 'utf8')).toBe('yes')
    expect(r.stderr).toMatch(/stopping: SIGTERM to/)
  }, 30_000)

  it('reads a config file; a bad one, or bad flags, exit 2 with a message that names the problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-supervise-'))
    const good = join(dir, 'ok.json')
    await writeFile(good, JSON.stringify({ processes: [{ name: 'once', command: process.execPath, args: ['-e', 'process.exit(0)'] }], restart: { when: 'on-failure' } }))
    const ok = await cli(['supervise', '--config', good])
    expect(ok.code).toBe(0)
    expect(ok.stderr).toMatch(/once: exited with code 0; not restarted \(policy "on-failure"\)/)
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ processes: [{ name: 'x', command: 'true' }], restart: { maxRestarts: -3 } }))
    const r1 = await cli(['supervise', '--config', bad])
    expect(r1.code).toBe(2)
    expect(r1.stderr).toMatch(/maxRestarts/)
    const r2 = await cli(['supervise', '--window', 'soon', '--', 'true'])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(/--window must be a number/)
    const r3 = await cli(['supervise', '--config', join(dir, 'missing.json')])
    expect(r3.stderr).toMatch(/cannot read/)
    const help = await cli(['supervise', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--max-restarts/)
  }, 60_000)
})
