/**
 * HELLO frames: who is in the group, and which active a standby follows.
 *
 * With a lease (or an election), the lease decides who is active; a peer's
 * word never does. A peer's claim to be active is believed only once the
 * lease row this node observed names that peer's incarnation as the holder,
 * at the epoch it claims or later. A claim the row does not back makes the
 * node consult the store at once ({@link ElectorLike.verify}), and be judged
 * again on the answer:
 * - an active renews its lease: refused, it is deposed as at any beat (and
 *   then follows the holder); confirmed, it stays active and reports the
 *   false claim ({@link LeaseClaimError});
 * - a standby reads the row: if it names the peer now (a genuine failover,
 *   followed after one read), it follows; otherwise it follows nobody new —
 *   nor takes a snapshot or a delta from that peer — and reports the claim if
 *   the row still does not back it a beat later.
 * Without a lease (a group whose active is set by hand), a HELLO is believed.
 */
import type { Clock } from '../clock.js'
import { LeaseClaimError } from '../errors.js'
import type { HelloFrame } from '../codec/frames.js'
import type { ActiveSession } from '../replication/active.js'
import type { StandbySession } from '../replication/standby.js'
import type { PeerId } from '../transport.js'
import type { UnderstudyEvents } from '../types.js'
import type { ElectorLike } from './elector.js'
import type { HandingOver } from './handover.js'
import type { RoleEvent } from './machine.js'
import type { Members } from './members.js'

/** What HELLO handling needs of the node (the coordinator). */
export interface HelloHost {
  readonly group: string
  readonly incarnation: string
  readonly members: Members
  readonly active: ActiveSession | undefined
  readonly standby: StandbySession | undefined
  readonly elector: ElectorLike | undefined
  readonly closed: boolean
  highestEpoch: number
  /** The active this node follows as a standby. */
  activePeer: PeerId | undefined
  /** Set on the standby chosen by a handover (see the coordinator). */
  chosen: boolean
  handingOver: HandingOver | undefined
  hello(): Uint8Array
  send(frame: Uint8Array, to?: PeerId): void | Promise<void>
  emit<K extends keyof UnderstudyEvents>(event: K, value: UnderstudyEvents[K]): void
  becomeStandby(event: RoleEvent, reason: string): void
  peerDown(peer: PeerId, reason: 'closed' | 'lost'): void
}

/** How many incarnations of peers no longer members {@link Hellos} remembers the announcer of. */
const REMEMBERED = 1024

export class Hellos {
  /** Claims to be active waiting for the store's answer: the epoch claimed, and the check that answers it. */
  private readonly claims = new Map<PeerId, { epoch: number; check: Promise<unknown> }>()
  /** The last consultation of the store a claim started: an active's claims within a beat of it share it (a flood costs no more renewals). */
  private lastCheck: { at: number; check: Promise<unknown> } | undefined
  /** When each peer's false claim was last reported: at most once a beat per peer. */
  private readonly reported = new Map<PeerId, number>()
  /**
   * The peer that first announced each incarnation. An incarnation is
   * announced, not proven: only its first announcer can be the holder the
   * lease names — even after it left (a holder that closed still names the
   * row it released), another peer announcing it is not believed.
   */
  private readonly announcer = new Map<string, PeerId>()

  constructor(
    private readonly node: HelloHost,
    private readonly clock: Clock,
    /** I: how long a standby gives the store to show a claimed takeover before it reports the claim. */
    private readonly intervalMs: number,
  ) {}

  onHello(from: PeerId, f: HelloFrame): void {
    const n = this.node
    const { role, epoch, seq, incarnation } = f
    if (f.group !== n.group) return
    let known = n.members.get(from)
    // Another run of the node behind this peer: what it held before is gone (as if it went down and came back).
    if (known && known.incarnation !== incarnation) {
      n.peerDown(from, 'lost')
      known = undefined
    }
    n.members.set(from, { role, epoch, seq, node: f.node, incarnation })
    this.announced(incarnation, from)
    if (!known) {
      n.send(n.hello(), from)
      n.emit('peer', { peer: from, up: true, role })
    }
    if (role === 'stopped') return n.peerDown(from, 'closed')
    if (role !== 'active') {
      if (role === 'standby') n.active?.standbyHello(from)
      return
    }
    // The target of this node's handover announces itself: the handover is done (whom this node follows is still the lease's call).
    const h = n.handingOver
    if (h && from === h.to && epoch > h.epoch) h.resolve(epoch)
    if (n.active) return this.activeHearsActive(from, epoch)
    if (n.standby) this.standbyHearsActive(from, epoch, seq, known !== undefined)
  }

  /**
   * The lease row this node observed changed, or this node was just deposed:
   * a standby stops following an active the row no longer names, and follows
   * the holder it names if that peer announced itself active.
   */
  leaseChanged(): void {
    const n = this.node
    const row = n.elector?.row
    if (!row || !n.standby || n.closed) return
    const following = n.activePeer !== undefined ? n.members.get(n.activePeer) : undefined
    if (following && following.incarnation !== row.holder) n.activePeer = undefined
    for (const [peer, m] of n.members) if (peer !== n.activePeer && m.role === 'active' && this.named(peer, m.epoch)) return this.standbyHearsActive(peer, m.epoch, m.seq, false)
  }

  /** Whether the lease row this node observed names `peer`'s incarnation as the holder, at `epoch` or later (and `peer` announced it first). */
  private named(peer: PeerId, epoch: number): boolean {
    const row = this.node.elector?.row
    return row !== undefined && row.epoch >= epoch && this.node.members.get(peer)?.incarnation === row.holder && this.announcer.get(row.holder) === peer
  }

  /** Records the first announcer of `incarnation`; forgets the oldest ones of peers that left (never the holder's) past {@link REMEMBERED}. */
  private announced(incarnation: string, from: PeerId): void {
    const a = this.announcer
    if (a.has(incarnation)) return
    a.set(incarnation, from)
    if (a.size <= REMEMBERED + this.node.members.size) return
    const holder = this.node.elector?.row?.holder
    for (const [i, p] of a) {
      if (a.size <= REMEMBERED) break
      if (i !== holder && this.node.members.get(p)?.incarnation !== i) a.delete(i)
    }
  }

  /** Records what hearing an active at `epoch` teaches: the highest epoch, a lapsed handover choice, a handover's end. */
  private heard(epoch: number): void {
    const n = this.node
    // A handover's choice lapses once some node is active at a higher epoch than this one knew of.
    if (epoch > n.highestEpoch) n.chosen = false
    n.highestEpoch = Math.max(n.highestEpoch, epoch)
    if (n.handingOver && epoch > n.handingOver.epoch) n.handingOver.resolve(epoch)
  }

  private activeHearsActive(from: PeerId, epoch: number): void {
    const n = this.node
    const a = n.active as ActiveSession
    if (!n.elector) this.heard(epoch)
    // An active of an older (or the same) epoch may not know it was deposed: tell it.
    if (epoch <= a.epoch) return void n.send(n.hello(), from)
    // The lease decides: renew now; a refusal deposes this node (and it then follows the holder).
    if (n.elector) return this.claim(from, epoch)
    n.becomeStandby('deposed', `this node was deposed by an active of epoch ${epoch}`)
    n.activePeer = from
    n.standby?.mirror.requestResync()
  }

  /** Follow one active: the first seen, or one with a higher epoch — with a lease, only the holder it names. */
  private standbyHearsActive(from: PeerId, epoch: number, seq: number, known: boolean): void {
    const n = this.node
    const s = n.standby as StandbySession
    if (!n.elector) this.heard(epoch)
    if (epoch < s.epoch) return
    // Another claiming the same epoch as the active followed is ignored.
    const current = n.activePeer !== undefined ? n.members.get(n.activePeer) : undefined
    if (current && from !== n.activePeer && current.role === 'active' && epoch <= current.epoch) return
    if (n.elector) {
      if (!this.named(from, epoch)) return this.claim(from, epoch)
      this.heard(epoch)
    }
    const fresh = from !== n.activePeer
    // The active it already follows says hello again: it may have lost this node (it asks strangers who they are), so answer.
    if (!fresh && known) n.send(n.hello(), from)
    n.activePeer = from
    s.follow(from, epoch, seq, fresh)
  }

  /** A claim the observed row does not back: consult the store now, and judge the claim again on its answer. */
  private claim(from: PeerId, epoch: number): void {
    const now = this.clock.now()
    const last = this.lastCheck
    // An active's consultation is a renewal (a store write): claims within a beat of the last one share it. A
    // standby's is a read it needs fresh to follow a genuine new holder (calls in flight are shared by the elector).
    const check = this.node.active && last && now - last.at < this.intervalMs ? last.check : (this.node.elector as ElectorLike).verify()
    if (check !== last?.check) this.lastCheck = { at: now, check }
    this.claims.set(from, { epoch, check })
    void check.then(() => this.judge(from, check))
  }

  /**
   * Judges a claim once the store has answered. An active's renewal is
   * authoritative (a compare-and-set); a read may lag another node's write
   * (Web Locks' table in `localStorage` reaches other tabs a little later),
   * so a standby gives the store one beat more — its regular read refreshes
   * the row meanwhile — before it reports the claim as false.
   */
  private judge(from: PeerId, check: Promise<unknown>, last = false): void {
    const n = this.node
    const c = this.claims.get(from)
    // A later claim of the same peer waits for a later check.
    if (c?.check !== check) return
    const m = n.members.get(from)
    if (n.closed || !m || m.role !== 'active' || m.epoch !== c.epoch) return void this.claims.delete(from)
    const row = n.elector?.row
    if (n.standby && this.named(from, c.epoch)) {
      this.claims.delete(from)
      if (n.activePeer !== from) this.standbyHearsActive(from, m.epoch, m.seq, true)
      return
    }
    const self = n.active !== undefined && n.elector?.isLeader === true && row?.holder === n.incarnation
    if (!n.active && !last) return void this.clock.setTimeout(() => this.judge(from, check, true), this.intervalMs)
    this.claims.delete(from)
    // An active that could not confirm its lease says nothing: its own beats settle who holds it.
    if (n.active && !self) return
    const now = this.clock.now()
    if (now - (this.reported.get(from) ?? -Infinity) < this.intervalMs) return
    if (this.reported.size >= 1024) this.reported.clear()
    this.reported.set(from, now)
    n.emit('error', { error: new LeaseClaimError(from, m.incarnation, c.epoch, row, self), from })
  }
}
