/** The peers of this node's group, as their HELLO frames described them. */
import type { RoleName } from '../codec/frames.js'
import type { PeerId } from '../transport.js'
import type { Candidacy } from './elector.js'

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

/**
 * Only the most up-to-date standby takes an expired lease: one that knows of a
 * standby further along (higher epoch, then higher seq; ties to the lower node
 * id) that the row also admits lets it win. A node that just started waits
 * first (`waited` false), to hear its peers: a beat, or T when it restored
 * state from its disk, since that state may lag what one of them holds. A
 * handover's target (`chosen`) goes at once; an active (`mine` undefined) is
 * no candidate.
 */
export function candidacyOf(members: Members, node: string, mine: { epoch: number; seq: number } | undefined, chosen: boolean, waited: boolean): Candidacy {
  if (!mine) return { ready: false, ahead: [] }
  if (chosen) return { ready: true, ahead: [] }
  return { ready: waited, ahead: members.ahead([mine.epoch, mine.seq], node), empty: mine.seq < 0 }
}
