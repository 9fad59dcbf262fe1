import type { Clock } from '../clock.js'
import { InvalidParamError, NoSpaceError, NotExistError } from '../errors.js'

/** Creation attributes of a sections checkpoint (SAF-style). */
export interface SectionAttributes {
  /** Most sections it may hold. */
  maxSections: number
  /** Largest section, bytes. */
  maxSectionSize: number
  /** A section not written for this long is dropped (default: kept). */
  retentionMs?: number
  /**
   * `'all-replicas'` (default): a write resolves once every replica that
   * exists has it, and every checkpoint store kept (the standbys' and this
   * node's); alone, once this node's own store has it. `'active-replica'`: a
   * write resolves at once and reaches the others asynchronously;
   * `synchronize()` waits for them.
   */
  mode?: 'all-replicas' | 'active-replica'
}

/** One section as stored in the replicated graph. */
export interface Section {
  data: Uint8Array
  writtenAt: number
}

/**
 * Named sections of bytes inside one checkpoint, replicated and persisted
 * like any registered graph (they live in a reserved root). Writes on a
 * standby throw `NotActiveError`; reads work everywhere.
 */
export class SectionCheckpoint {
  constructor(
    readonly name: string,
    private readonly attrs: Required<Omit<SectionAttributes, 'retentionMs'>> & { retentionMs?: number },
    /** Read through the root on every call: a placeholder root is filled in place, its inner objects are not. */
    private readonly root: { sections: Map<string, Section> },
    private readonly clock: Clock,
    /** `'local'`: hand the batch to the standbys and wait for this node's own checkpoint store only. */
    private readonly commit: (mode: 'persisted' | 'async' | 'local') => Promise<unknown>,
    /** Standbys connected now: 'all-replicas' means the replicas that exist, as in SAF. */
    private readonly replicas: () => number,
  ) {}

  /** Ids of the sections it holds. */
  list(): string[] {
    this.expire()
    return [...this.sections.keys()]
  }

  /** A copy of the bytes of section `id`. @throws {NotExistError} */
  read(id: string): Uint8Array {
    this.expire()
    const s = this.sections.get(id)
    if (!s) throw new NotExistError(`checkpoint "${this.name}": no section "${id}"`)
    return new Uint8Array(s.data)
  }

  /** Adds section `id`. @throws {InvalidParamError} if it exists or `data` is too large; {@link NoSpaceError} when full. */
  async create(id: string, data: Uint8Array): Promise<void> {
    this.expire()
    this.check(id, data)
    if (this.sections.has(id)) throw new InvalidParamError(`checkpoint "${this.name}": section "${id}" already exists; use overwrite()`)
    if (this.sections.size >= this.attrs.maxSections)
      throw new NoSpaceError(`checkpoint "${this.name}" already holds its maximum of ${this.attrs.maxSections} sections`)
    this.sections.set(id, { data: new Uint8Array(data), writtenAt: this.clock.now() })
    await this.settle()
  }

  /** Replaces the bytes of section `id`. @throws {NotExistError} if it does not exist; {@link InvalidParamError} if too large. */
  async overwrite(id: string, data: Uint8Array): Promise<void> {
    this.expire()
    this.check(id, data)
    const s = this.sections.get(id)
    if (!s) throw new NotExistError(`checkpoint "${this.name}": no section "${id}" to overwrite; use create()`)
    s.data = new Uint8Array(data)
    s.writtenAt = this.clock.now()
    await this.settle()
  }

  /** Removes section `id`. @throws {NotExistError} */
  async delete(id: string): Promise<void> {
    if (!this.sections.delete(id)) throw new NotExistError(`checkpoint "${this.name}": no section "${id}"`)
    await this.settle()
  }

  /** Waits until every replica has every write so far (what `'active-replica'` mode does not wait for). */
  async synchronize(): Promise<void> {
    await this.commit(this.replicas() > 0 ? 'persisted' : 'async')
  }

  private get sections(): Map<string, Section> {
    return this.root.sections
  }

  private check(id: string, data: Uint8Array): void {
    if (typeof id !== 'string' || !id) throw new InvalidParamError(`checkpoint "${this.name}": a section id is a non-empty string`)
    if (!(data instanceof Uint8Array)) throw new InvalidParamError(`checkpoint "${this.name}": section data is a Uint8Array`)
    if (data.length > this.attrs.maxSectionSize)
      throw new InvalidParamError(`checkpoint "${this.name}": ${data.length} bytes exceed maxSectionSize ${this.attrs.maxSectionSize}`)
  }

  private settle(): Promise<unknown> {
    if (this.attrs.mode === 'active-replica') return this.commit('async')
    return this.commit(this.replicas() > 0 ? 'persisted' : 'local')
  }

  /** Drops sections not written within `retentionMs` (only where writes are allowed: the active decides). */
  private expire(): void {
    const r = this.attrs.retentionMs
    if (r === undefined) return
    const now = this.clock.now()
    try {
      for (const [id, s] of this.sections) if (now - s.writtenAt > r) this.sections.delete(id)
    } catch {
      /* a standby's mirror is read-only: expiry happens on the active and replicates */
    }
  }
}

/** Validates creation attributes. @throws {InvalidParamError} */
export function checkAttributes(name: string, a: SectionAttributes): Required<Omit<SectionAttributes, 'retentionMs'>> & { retentionMs?: number } {
  const positive = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0
  if (!positive(a.maxSections) || !positive(a.maxSectionSize))
    throw new InvalidParamError(`checkpoint "${name}": maxSections and maxSectionSize must be positive integers`)
  if (a.retentionMs !== undefined && !(a.retentionMs > 0)) throw new InvalidParamError(`checkpoint "${name}": retentionMs must be positive`)
  const mode = a.mode ?? 'all-replicas'
  if (mode !== 'all-replicas' && mode !== 'active-replica') throw new InvalidParamError(`checkpoint "${name}": mode is "all-replicas" or "active-replica"`)
  return { maxSections: a.maxSections, maxSectionSize: a.maxSectionSize, mode, ...(a.retentionMs !== undefined ? { retentionMs: a.retentionMs } : {}) }
}
