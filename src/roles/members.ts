/** The peers of this node's group, as their HELLO frames described them. */
import type { RoleName } from '../codec/frames.js'
import type { PeerId } from '../transport.js'

export interface Member {
  role: RoleName
  epoch: number
  seq: number
  /** The node id it announced. */
  node: string
  /** The run of that node it announced (in-sync sets name runs: a restarted node holds only what it restored). */
  incarnation: string
}

export class Members extends Map<PeerId, Member> {
  /**
   * The incarnations of the standbys further along than this node at `mine`
   * = (epoch, seq) — a higher epoch, then a higher seq; ties go to the lower
   * node id — which an election should let win.
   */
  ahead(mine: readonly [number, number], myNode: string): string[] {
    const out: string[] = []
    for (const p of this.values()) {
      if (p.role !== 'standby') continue
      const theirs: [number, number] = [p.seq >= 0 ? p.epoch : 0, p.seq]
      if (theirs[0] > mine[0] || (theirs[0] === mine[0] && (theirs[1] > mine[1] || (theirs[1] === mine[1] && p.node < myNode)))) out.push(p.incarnation)
    }
    return out
  }
}
