/**
 * The partition set-up the network-partition test and the etcd benchmark
 * share: etcd in namespace `e`, node 0 in `a` and node 1 in `b` (see
 * `NetLab`), TCP between the nodes on port 7100, each node reaching etcd over
 * its own link.
 */
import { Cluster, type ClusterOptions } from './cluster.js'
import { startEtcd } from './etcd.js'
import type { NetLab } from './netns.js'

/** The namespace of node `i`. */
export const side = (i: number) => (i === 0 ? 'a' : 'b') as 'a' | 'b'

/** One etcd member in namespace `e`, listening on its links to `a` and to `b`. */
export function partitionEtcd(lab: NetLab) {
  return startEtcd({ members: 1, ports: [23790, 23800], alsoListen: [lab.hosts.e.addr.a as string, lab.hosts.e.addr.b as string], wrap: lab.exec('e') })
}

/** The two nodes, each on the etcd of {@link partitionEtcd} under `prefix`. */
export function partitionCluster(lab: NetLab, group: string, prefix: string, heartbeat: ClusterOptions['heartbeat']): Promise<Cluster> {
  return Cluster.create({
    size: 2,
    group,
    ports: [7100, 7100],
    hosts: [lab.hosts.a.addr.b as string, lab.hosts.b.addr.a as string],
    etcd: (i) => ({ hosts: [`http://${lab.hosts.e.addr[side(i)]}:23790`], prefix }),
    heartbeat,
    wrap: (i) => lab.exec(side(i)),
  })
}
