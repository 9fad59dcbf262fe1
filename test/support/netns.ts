/**
 * A small private network in Linux network namespaces, for a real partition:
 * three namespaces (two nodes and etcd), each pair joined by a veth pair on a
 * private /30 of its own, and a cut that drops every packet in and out of a
 * namespace (iptables DROP both ways, loopback excepted), so TCP connections
 * go silent rather than closing, as on a real partition. Everything is made
 * under names unique to this process and removed by {@link NetLab.destroy}.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), `ip` and `iptables`;
 * {@link netnsUnavailable} says why not, where not.
 */
import { spawnSync } from 'node:child_process'

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() }
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args)
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.out}`)
}

/** Why network namespaces cannot be used here (not root, no `ip` or `iptables`, not permitted), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  for (const tool of ['ip', 'iptables']) if (!run('sh', ['-c', `command -v ${tool}`]).ok) return `${tool} is not installed (apt-get install iproute2 iptables)`
  const probe = `us-probe-${process.pid}`
  const add = run('ip', ['netns', 'add', probe])
  if (!add.ok) return `ip netns add is not permitted here: ${add.out}`
  const ipt = run('ip', ['netns', 'exec', probe, 'iptables', '-S'])
  run('ip', ['netns', 'del', probe])
  if (!ipt.ok) return `iptables does not work inside a namespace here: ${ipt.out}`
  return undefined
}

/** One namespace of the lab: its name and its address on each link. */
export interface LabHost {
  ns: string
  /** Address by peer name: how that peer reaches this host. */
  addr: Record<string, string>
}

/**
 * Hosts `a`, `b` and `e` (etcd), fully meshed by point-to-point links:
 * a–b 10.231.0.0/30, a–e 10.231.0.4/30, b–e 10.231.0.8/30.
 */
export class NetLab {
  readonly hosts: Record<'a' | 'b' | 'e', LabHost>
  private readonly cutNs = new Set<string>()

  private constructor(tag: string) {
    const ns = (h: string) => `us-${h}-${tag}`
    this.hosts = {
      a: { ns: ns('a'), addr: { b: '10.231.0.1', e: '10.231.0.5' } },
      b: { ns: ns('b'), addr: { a: '10.231.0.2', e: '10.231.0.9' } },
      e: { ns: ns('e'), addr: { a: '10.231.0.6', b: '10.231.0.10' } },
    }
  }

  /** Makes the namespaces and links; on any failure removes what it made and throws. */
  static create(): NetLab {
    const lab = new NetLab(`${process.pid}`)
    try {
      for (const h of Object.values(lab.hosts)) {
        must('ip', ['netns', 'add', h.ns])
        must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up'])
      }
      const link = (x: 'a' | 'b' | 'e', y: 'a' | 'b' | 'e') => {
        const hx = lab.hosts[x]
        const hy = lab.hosts[y]
        must('ip', ['link', 'add', `to-${y}`, 'netns', hx.ns, 'type', 'veth', 'peer', 'name', `to-${x}`, 'netns', hy.ns])
        must('ip', ['-n', hx.ns, 'addr', 'add', `${hx.addr[y]}/30`, 'dev', `to-${y}`])
        must('ip', ['-n', hy.ns, 'addr', 'add', `${hy.addr[x]}/30`, 'dev', `to-${x}`])
        must('ip', ['-n', hx.ns, 'link', 'set', `to-${y}`, 'up'])
        must('ip', ['-n', hy.ns, 'link', 'set', `to-${x}`, 'up'])
      }
      link('a', 'b')
      link('a', 'e')
      link('b', 'e')
    } catch (err) {
      lab.destroy()
      throw err
    }
    return lab
  }

  /** The command prefix that runs a program in host `h`'s namespace. */
  exec(h: 'a' | 'b' | 'e'): string[] {
    return ['ip', 'netns', 'exec', this.hosts[h].ns]
  }

  /** Cuts host `h` off: every packet in or out of it, except on loopback, is dropped. */
  cut(h: 'a' | 'b' | 'e'): void {
    const ns = this.hosts[h].ns
    must('ip', ['netns', 'exec', ns, 'iptables', '-A', 'INPUT', '!', '-i', 'lo', '-j', 'DROP'])
    must('ip', ['netns', 'exec', ns, 'iptables', '-A', 'OUTPUT', '!', '-o', 'lo', '-j', 'DROP'])
    this.cutNs.add(ns)
  }

  /** Heals host `h`'s cut. */
  heal(h: 'a' | 'b' | 'e'): void {
    const ns = this.hosts[h].ns
    must('ip', ['netns', 'exec', ns, 'iptables', '-F'])
    this.cutNs.delete(ns)
  }

  /** Removes the namespaces (which removes their links and rules). Never throws. */
  destroy(): void {
    for (const h of Object.values(this.hosts)) run('ip', ['netns', 'del', h.ns])
  }
}
