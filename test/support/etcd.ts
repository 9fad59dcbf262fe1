/**
 * Real etcd for tests: a single member or a 3-member cluster on 127.0.0.1,
 * on ports the OS picks (never etcd's defaults 2379/2380), in a temporary data
 * folder, stopped by PID.
 *
 * Where the tests find etcd:
 * - `UNDERSTUDY_ETCD` / `UNDERSTUDY_ETCD_CLUSTER` (comma-separated client
 *   URLs): members someone else started (`.ci/run` starts both and waits for
 *   `etcdctl endpoint health`); the tests use them and never stop them;
 * - otherwise the tests start their own with {@link startEtcd} (about 1 s),
 *   when an `etcd` binary is on the PATH;
 * - otherwise they skip, saying why — except with `CI` set, where a missing
 *   etcd fails them ({@link etcdUnavailable}).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { etcdClientOptions } from '../../adapters/etcd.js'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The etcd binary on the PATH, or undefined. */
export function etcdBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() || undefined : undefined
}

/**
 * Why etcd tests cannot run here, or undefined when they can. With `CI` set
 * the caller must fail rather than skip (a CI that silently skipped them
 * would prove nothing).
 */
export function etcdUnavailable(): string | undefined {
  if (process.env.UNDERSTUDY_ETCD || etcdBinary()) return undefined
  return 'no etcd: install etcd-server (apt-get install etcd-server etcd-client) or set UNDERSTUDY_ETCD to its client URL'
}

/** Free TCP ports on 127.0.0.1, picked by the OS. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, host, () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

export interface EtcdMember {
  name: string
  clientUrl: string
  peerUrl: string
  child: ChildProcess | undefined
  exited: boolean
}

export interface EtcdCluster {
  /** Client URLs, one per member. */
  endpoints: string[]
  members: EtcdMember[]
  /** SIGKILL member `i`; resolves once it has exited (bounded: 5 s). */
  kill(i: number): Promise<void>
  /** The index of the current raft leader (asks each live member), or -1. */
  leader(): Promise<number>
  /** Stops every member and removes the data folder. */
  stop(): Promise<void>
}

export interface StartEtcdOptions {
  members?: 1 | 3
  /** Address to listen on (default 127.0.0.1). */
  host?: string
  /**
   * Run each member through this prefix (e.g. `['ip', 'netns', 'exec', 'ns1']`);
   * the health check then runs `etcdctl` through it too.
   */
  wrap?: string[]
  /** More addresses a single member serves clients on (its own namespace's link addresses). */
  alsoListen?: string[]
  /** Ports to use (2 per member: client, peer), when the caller picked them. */
  ports?: number[]
  /** Bound on start-up until healthy, ms (default 15 s). */
  startTimeoutMs?: number
  /** raft heartbeat and election timeout, ms (default 50 and 500: a lost leader is replaced within about a second). */
  heartbeatMs?: number
  electionMs?: number
}

/** Starts etcd members and resolves once every one answers (bounded). Throws, with their output, if they do not. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const bin = etcdBinary()
  if (!bin) throw new Error(etcdUnavailable())
  const n = options.members ?? 1
  const host = options.host ?? '127.0.0.1'
  const ports = options.ports ?? (await freePorts(2 * n, host))
  const dir = await mkdtemp(join(tmpdir(), 'understudy-etcd-'))
  const token = `us-${process.pid}-${Date.now().toString(36)}`
  const members: EtcdMember[] = Array.from({ length: n }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `http://${host}:${ports[2 * i]}`,
    peerUrl: `http://${host}:${ports[2 * i + 1]}`,
    child: undefined,
    exited: false,
  }))
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const output: string[] = []
  for (const m of members) {
    const args = [
      `--name=${m.name}`,
      `--data-dir=${join(dir, m.name)}`,
      `--listen-client-urls=${[m.clientUrl, ...(options.alsoListen ?? []).map((h) => m.clientUrl.replace(host, h))].join(',')}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initial}`,
      `--initial-cluster-token=${token}`,
      '--initial-cluster-state=new',
      `--heartbeat-interval=${options.heartbeatMs ?? 50}`,
      `--election-timeout=${options.electionMs ?? 500}`,
      '--log-level=error',
    ]
    const [cmd, ...pre] = [...(options.wrap ?? []), bin]
    const child = spawn(cmd as string, [...pre, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr?.on('data', (d: Buffer) => output.length < 200 && output.push(`${m.name}: ${d.toString().trimEnd()}`))
    child.on('exit', () => (m.exited = true))
    m.child = child
  }
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    async kill(i) {
      const m = members[i] as EtcdMember
      if (!m.child || m.exited) return
      const gone = new Promise<void>((r) => m.child?.once('exit', () => r()))
      m.child.kill('SIGKILL')
      await Promise.race([gone, sleep(5000)])
    },
    async leader() {
      for (let i = 0; i < members.length; i++) {
        const m = members[i] as EtcdMember
        if (m.exited) continue
        const c = new Etcd3(etcdClientOptions(m.clientUrl))
        try {
          const s = await c.maintenance.status()
          if (s.leader === s.header.member_id) return i
        } catch {
          /* not answering */
        } finally {
          c.close()
        }
      }
      return -1
    },
    async stop() {
      await Promise.all(members.map((_, i) => cluster.kill(i)))
      await rm(dir, { recursive: true, force: true })
    },
  }
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000)
  if (options.wrap) {
    for (let tries = 0; tries < 1000 && Date.now() < deadline; tries++) {
      if (members.some((m) => m.exited)) break
      const r = spawnSync(options.wrap[0] as string, [...options.wrap.slice(1), 'etcdctl', `--endpoints=${cluster.endpoints.join(',')}`, '--command-timeout=1s', 'endpoint', 'health'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 5000 })
      if (r.status === 0) return cluster
      await sleep(50)
    }
    await cluster.stop()
    throw new Error(`etcd (${n} member${n > 1 ? 's' : ''} on ${host}, through ${options.wrap.join(' ')}) did not become healthy in time:\n${output.join('\n')}`)
  }
  const client = new Etcd3(etcdClientOptions(cluster.endpoints))
  try {
    for (let tries = 0; tries < 1000 && Date.now() < deadline; tries++) {
      if (members.some((m) => m.exited)) break
      try {
        // A linearizable write on every member's behalf: the cluster has a leader and a quorum.
        await client.put(`health/${token}`).value('1').options({ deadline: Date.now() + 1000 }).exec()
        const healthy = await Promise.all(members.map((m) => memberAnswers(m.clientUrl)))
        if (healthy.every(Boolean)) return cluster
      } catch {
        /* not yet */
      }
      await sleep(50)
    }
  } finally {
    client.close()
  }
  await cluster.stop()
  throw new Error(`etcd (${n} member${n > 1 ? 's' : ''} on ${host}) did not become healthy in time:\n${output.join('\n')}`)
}

async function memberAnswers(url: string): Promise<boolean> {
  const c = new Etcd3(etcdClientOptions(url))
  try {
    await c.get('health').options({ deadline: Date.now() + 1000 }).exec()
    return true
  } catch {
    return false
  } finally {
    c.close()
  }
}

/**
 * Endpoints for a test: the members named in the environment variable `env`
 * if set (and nothing to stop), else members this test starts.
 */
export async function etcdFor(env: 'UNDERSTUDY_ETCD' | 'UNDERSTUDY_ETCD_CLUSTER', members: 1 | 3): Promise<{ endpoints: string[]; stop: () => Promise<void>; started: boolean }> {
  const given = process.env[env]
  if (given) return { endpoints: given.split(',').map((s) => s.trim()).filter(Boolean), stop: async () => {}, started: false }
  const c = await startEtcd({ members })
  return { endpoints: c.endpoints, stop: () => c.stop(), started: true }
}
