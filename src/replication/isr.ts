/**
 * The active's view of the in-sync set kept in the lease row: the standbys
 * (incarnations) that hold every acknowledged write, so that only they may
 * take over. The active hands a set out with each renewal and learns which
 * one was stored; commits keep waiting for a member until a stored row leaves
 * it out.
 */
export class InSyncSet {
  /** The set stored in the last confirmed lease row. */
  committed = new Set<string>()
  /**
   * Members of the stored set (or of one just handed out to be stored) that
   * are not connected: commits keep waiting for them, at the seq they last
   * acknowledged, until a stored row leaves them out. So a standby can leave
   * the set but never miss a write the set is trusted to hold.
   */
  readonly ghosts = new Map<string, number>()
  /** For each incarnation, the last answer (by number) of {@link InSyncSet.handOut} that named it. */
  private readonly handedOut = new Map<string, number>()
  private handOuts = 0

  /** Records `nodes` as the answer handed out for the next renewal; returns it. */
  handOut(nodes: string[]): string[] {
    const n = ++this.handOuts
    for (const node of nodes) this.handedOut.set(node, n)
    return nodes
  }

  /** Whether commits must still wait for `node`: the stored set names it, or one of the last two answers did (an election in another thread may store an answer one beat old). */
  binds(node: string): boolean {
    return this.committed.has(node) || (this.handedOut.get(node) ?? -Infinity) >= this.handOuts - 1
  }

  /**
   * A lease row with in-sync set `nodes` was stored: members not connected are
   * waited for (from nothing) until a later row drops them; ghosts the row
   * leaves out stop being waited for, unless still bound (see {@link InSyncSet.binds}).
   */
  stored(nodes: readonly string[], connected: ReadonlySet<string>): void {
    this.committed = new Set(nodes)
    for (const node of [...this.ghosts.keys()]) if (!this.binds(node)) this.ghosts.delete(node)
    for (const node of this.committed) if (!connected.has(node) && !this.ghosts.has(node)) this.ghosts.set(node, -1)
  }
}
