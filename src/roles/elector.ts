import type { Clock } from '../clock.js'
import { ConfigError } from '../errors.js'
import { isExpired, longExpired, mayEverTakeOver, mayTakeOver, type LeaseRow, type LeaseStore } from './lease.js'

/** Heartbeat timing: interval I and timeout T, with T > 2·I. */
export interface HeartbeatOptions {
  intervalMs: number
  timeoutMs: number
}

/** Throws {@link ConfigError} unless I > 0 and T > 2·I. */
export function checkHeartbeat(h: HeartbeatOptions): void {
  if (!(h.intervalMs > 0)) throw new ConfigError(`heartbeat.intervalMs must be positive (got ${h.intervalMs})`)
  if (!(h.timeoutMs > 2 * h.intervalMs))
    throw new ConfigError(
      `heartbeat.timeoutMs (${h.timeoutMs}) must exceed 2 × intervalMs (2 × ${h.intervalMs} = ${2 * h.intervalMs}): a holder renews every I and must be able to miss one beat without losing the lease`,
    )
}

/**
 * What a node knows of its own claim to the lease, for an election that runs
 * elsewhere (a worker) and holds the row: whether it could take over at all,
 * and which standbys are further along than it.
 */
export interface Candidacy {
  /** It holds state (or was chosen by a handover) and has heard its peers since it started. */
  ready: boolean
  /** Incarnations of standbys further along than this node (or level with it and ordered first). */
  ahead: string[]
  /** It holds no state at all (nothing restored, nothing received). */
  empty?: boolean
}

/**
 * A node may take `row` when it is ready, no standby ahead of it could ever
 * take that row too, and — if it holds no state — the group is new (no row)
 * or the row has been expired for 2·T more: a row means the group had state,
 * and a node with none taking over would wipe it from everyone who follows.
 * (`now`: the store's clock; `timeoutMs`: T.)
 */
export function eligibleWith(c: Candidacy, row: LeaseRow | undefined, now: number, timeoutMs: number): boolean {
  if (!c.ready || c.ahead.some((incarnation) => mayEverTakeOver(row, incarnation))) return false
  return !c.empty || !row || longExpired(row, now, timeoutMs)
}

export interface ElectorEvents {
  /** This node now holds the role, under `epoch`. */
  elected(epoch: number): void
  /** This node no longer holds the role (lost, refused, or could not confirm in time). */
  demoted(reason: string): void
  /**
   * Whether this node may take the expired (or absent) row `row` now: a
   * standby without state, or behind another that may take it, lets that one
   * win. Asked only once the row admits this node at all (see `mayTakeOver`:
   * a row with an in-sync set admits only its members).
   */
  eligible?(row: LeaseRow | undefined, now: number, timeoutMs: number): boolean
  /** This node's candidacy, for an election in another thread (which then decides `eligible` itself). */
  candidacy?(): Candidacy
  /** The in-sync set the holder stores with each renewal (incarnations of standbys holding every acknowledged write). */
  isr?(): string[]
  /**
   * A row this node wrote was stored (a takeover or a renewal); called before
   * `elected` on a takeover. `validUntil` (this thread's clock): the write
   * that stored it was sent at `sent`, so the lease is surely still this
   * node's until sent + T − I; past that, the node must not accept writes
   * until a later renewal is confirmed.
   */
  confirmed?(row: LeaseRow, validUntil: number): void
  /**
   * The row this node observed changed holder or epoch (a read, a takeover, a
   * refused renewal): who the lease says is active. A standby follows only
   * that holder.
   */
  observed?(row: LeaseRow | undefined): void
  /** Called on every beat (every I), whatever the role. */
  beat?(): void
  /** The lease store failed (the beat counts as unconfirmed). */
  error?(err: Error): void
  /**
   * Whether the node is alive enough to hold the role. When false the elector
   * neither renews nor takes the lease, and a holder steps down at once: a hung
   * main thread must not look alive (see the worker heartbeat).
   */
  alive?(): boolean
}

/** What `Understudy` needs of an elector, wherever it runs (this thread, or a worker). */
export interface ElectorLike {
  readonly isLeader: boolean
  start(): void
  stop(reason?: string): void
  /** Stops and gives the lease up. */
  resign(reason?: string): Promise<void>
  /** Beats now (a handover target taking the lease at once). */
  poke(): void
  /**
   * The lease row this node last read or wrote (undefined before the first):
   * its holder and epoch say who is active. (A worker election's copy may lag
   * on `lastSeen`; holder and epoch are kept current.)
   */
  readonly row: LeaseRow | undefined
  /**
   * Consults the store now — after any beat in flight, so the answer is newer
   * than the call: a holder renews (a refusal demotes it, as at any beat), a
   * follower reads the row (and takes it over if it may, as at any beat).
   * Resolves to the row observed then. Calls made while one waits share it;
   * a call made while the election is stopped (not started yet, or between a
   * handover's resign and the next start) waits for the next start.
   */
  verify(): Promise<LeaseRow | undefined>
}

/** Builds an elector for `uuid` competing for `role`; `Understudy` calls it once. */
export type ElectionFactory = (uuid: string, role: string, heartbeat: HeartbeatOptions, events: ElectorEvents) => ElectorLike

/**
 * Leader election over a heartbeat table. Every I, a follower reads the row
 * and, when it has expired, tries to take it over (passing the expired row it
 * saw); the holder renews it (passing the row it last wrote). A refused
 * renewal, or no confirmed renewal for T − I, demotes the holder at once: by
 * then another node may legitimately take over at T.
 */
export class Elector implements ElectorLike {
  private seen: LeaseRow | undefined
  private leader = false
  private timer: unknown
  private watchdog: unknown
  /** The beat in flight, if any: a beat still in flight makes the next one skip. */
  private inflight: Promise<void> | undefined
  /** A {@link verify} waiting for the beat in flight to end, shared by the calls made meanwhile. */
  private queued: Promise<LeaseRow | undefined> | undefined
  /** Verifies waiting for the next `start`. */
  private parked: (() => void)[] = []
  private running = false
  /** Set while a renewal is unconfirmed: when the first renewal after the last confirmed one was sent (the watchdog's anchor). */
  private unconfirmedSince: number | undefined
  private unwatch: (() => void) | undefined
  /** The last takeover (or release) failed or was confirmed too late: this run's row may stand in the store (see the follower's beat). */
  private lateTakeover = false
  /** While true the elector does nothing, as if its thread were frozen (tests of hung nodes). */
  frozen = false

  constructor(
    private readonly uuid: string,
    private readonly role: string,
    private readonly store: LeaseStore,
    private readonly clock: Clock,
    private readonly heartbeat: HeartbeatOptions,
    private readonly events: ElectorEvents,
  ) {
    checkHeartbeat(heartbeat)
  }

  /** True while this node holds the role (and has confirmed it within T − I). */
  get isLeader(): boolean {
    return this.leader
  }

  /** The epoch of the row this node last read or wrote. */
  get epoch(): number {
    return this.seen?.epoch ?? 0
  }

  /** The row this node last read or wrote. */
  get row(): LeaseRow | undefined {
    return this.seen
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.tick()
    for (const go of this.parked.splice(0)) go()
  }

  /** Stops heartbeating. A leader stops being one at once (its lease then expires after T). */
  stop(reason = 'stopped'): void {
    this.running = false
    this.clock.clearTimeout(this.timer)
    this.unwatch?.()
    this.unwatch = undefined
    if (this.leader) this.lose(reason)
  }

  /** Beats now rather than at the next interval (a handover target taking the lease at once). */
  poke(): void {
    if (!this.running || this.frozen || this.inflight) return
    void this.run()
  }

  /**
   * Beats now, after the beat in flight (see {@link ElectorLike.verify}): a
   * renewal sent after the call and confirmed proves this node still held the
   * lease after whatever prompted it. A renewal is never sent alongside
   * another, which would be refused (both compare against the same row).
   */
  verify(): Promise<LeaseRow | undefined> {
    if (this.queued) return this.queued
    const running = this.running ? Promise.resolve() : new Promise<void>((go) => this.parked.push(go))
    this.queued = running.then(async () => {
      while (this.inflight) await this.inflight
      // From here to the beat's start, nothing else runs: no other beat can start alongside.
      this.queued = undefined
      if (this.running && !this.frozen && (this.events.alive?.() ?? true)) await this.run()
      return this.seen
    })
    return this.queued
  }

  /** Runs one beat; a store error is an unconfirmed beat (the watchdog demotes a holder that stays unconfirmed). */
  private run(): Promise<void> {
    const beat: Promise<void> = this.beat()
      .catch((err: unknown) => this.events.error?.(err as Error))
      .finally(() => {
        if (this.inflight === beat) this.inflight = undefined
      })
    this.inflight = beat
    return beat
  }

  /** Stops and gives the lease up, so another node can take it at its next beat rather than after T. */
  async resign(reason = 'resigned'): Promise<void> {
    const held = this.leader
    // The set as it stands now: the standbys that hold every acknowledged write may take over at once.
    const isr = held ? this.events.isr?.() : undefined
    this.stop(reason)
    if (!held) return
    try {
      await this.store.release(this.uuid, this.role, isr)
    } catch (err) {
      // The row may still name this run: once started again, the first beat renews it rather than wait for it to expire.
      this.lateTakeover = true
      throw err
    }
  }

  /** Beats every I, whatever the store's latency: a beat still in flight makes the next one skip. */
  private tick(): void {
    if (!this.running) return
    this.timer = this.clock.setTimeout(() => this.tick(), this.heartbeat.intervalMs)
    if (this.frozen) return
    if (this.events.alive && !this.events.alive()) return this.lose('this node stopped answering its heartbeat probe')
    this.events.beat?.()
    if (this.inflight) return
    void this.run()
  }

  private lose(reason: string): void {
    this.clock.clearTimeout(this.watchdog)
    this.unconfirmedSince = undefined
    if (!this.leader) return
    this.leader = false
    this.events.demoted(reason)
  }

  /**
   * A renewal sent at `sent` must be confirmed by sent + T − I, or the holder
   * steps down then. Renewals go out every I, so that deadline is at most the
   * last confirmed renewal + T: never later than the moment another node may
   * take the expired lease (strictly after T by the store's clock).
   *
   * Only the first renewal after a confirmed one arms the watchdog: a renewal
   * that failed (the store unreachable, a partition) must not push the
   * deadline on, or a cut-off holder would stay active for as long as its
   * calls keep failing rather than hanging.
   */
  private arm(sent: number): void {
    if (this.unconfirmedSince !== undefined) return
    this.unconfirmedSince = sent
    const { intervalMs, timeoutMs } = this.heartbeat
    this.clock.clearTimeout(this.watchdog)
    this.watchdog = this.clock.setTimeout(() => this.lose('could not confirm the lease within T − I'), sent + timeoutMs - intervalMs - this.clock.now())
  }

  /** A renewal was confirmed: the next one arms the watchdog afresh. */
  private disarm(): void {
    this.clock.clearTimeout(this.watchdog)
    this.unconfirmedSince = undefined
  }

  /** Records the row observed; tells the node when its holder or epoch changed. */
  private see(row: LeaseRow | undefined): void {
    const was = this.seen
    this.seen = row
    if (was?.holder !== row?.holder || was?.epoch !== row?.epoch) this.events.observed?.(row)
  }

  private async beat(): Promise<void> {
    const { timeoutMs } = this.heartbeat
    if (this.leader) {
      const sent = this.clock.now()
      this.arm(sent)
      const row = await this.store.updateHeartbeat(this.uuid, this.role, this.seen, timeoutMs, this.events.isr?.())
      if (!this.leader || !this.running || this.frozen) return
      if (!row) {
        this.see(await this.store.read(this.role))
        return this.lose('the lease was refused: another node holds it')
      }
      this.see(row)
      this.disarm()
      this.events.confirmed?.(row, sent + timeoutMs - this.heartbeat.intervalMs)
      return
    }
    const cur = await this.store.read(this.role)
    if (!this.running || this.frozen) return
    this.see(cur)
    // Only an expired row may be taken; a restarted node never reclaims its own fresh row (it has lost its state).
    const now = this.store.now()
    const expired = !cur || isExpired(cur, now, timeoutMs)
    // A store that can tell sooner that the holder is gone (a closed tab's Web Lock) wakes this follower up at once.
    if (!expired && cur && cur.holder !== this.uuid && this.store.watch && !this.unwatch) this.unwatch = this.store.watch(this.role, () => this.poke())
    // This run's own row, not released, right after a takeover of ours that failed or was confirmed too late: the
    // store applied it after all. Nobody else has taken it since (it would name them); renewing it is a holder's
    // renewal, so it is not left to expire first (which cost a whole T of no active). Only then: a holder that
    // stepped down (a hung main thread, unconfirmed renewals) waits for its row to expire like everyone else.
    const own = this.lateTakeover && cur !== undefined && cur.holder === this.uuid && !cur.released
    this.lateTakeover = false
    // Only a member of the row's in-sync set holds every acknowledged write: nobody else may take it over.
    if (!own && (!expired || !mayTakeOver(cur, this.uuid, now, timeoutMs) || !(this.events.eligible?.(cur, now, timeoutMs) ?? true))) return
    const sent = this.clock.now()
    // The old holder and the other members of its set hold everything acknowledged so far: they stay in the
    // set until a renewal of this node's drops them (a crashed one is dropped at the first renewal).
    const isr = cur && this.events.isr ? [...new Set([...(cur.isr ?? []), cur.holder])].filter((n) => n !== this.uuid) : undefined
    let row: LeaseRow | undefined
    try {
      row = await this.store.updateHeartbeat(this.uuid, this.role, cur, timeoutMs, isr)
    } catch (err) {
      this.lateTakeover = true // it may have been applied: the next beat looks
      throw err
    }
    if (!row || !this.running || this.frozen) return
    this.see(row)
    // A takeover confirmed too late is not trusted: the next beat will try again.
    if (this.clock.now() - sent > timeoutMs - this.heartbeat.intervalMs) return void (this.lateTakeover = true)
    this.unwatch?.()
    this.unwatch = undefined
    this.disarm()
    this.leader = true
    this.events.confirmed?.(row, sent + timeoutMs - this.heartbeat.intervalMs)
    this.events.elected(row.epoch)
  }
}
