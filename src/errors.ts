/**
 * Every error Understudy throws or emits is an `UnderstudyError` with a stable
 * `code`, so callers can branch on `err.code` without string matching.
 *
 * Each class sets `name` from a string literal (never from the class's own
 * name, which a minifier renames), so `err.name` reads `'NotActiveError'` in a
 * production bundle too.
 */
export class UnderstudyError extends Error {
  override name = 'UnderstudyError'
  /** Stable machine-readable code, e.g. `'NOT_ACTIVE'`. */
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A write was attempted on a node that is not the ACTIVE (a standby mirror, or a stopped node). */
export class NotActiveError extends UnderstudyError {
  override name = 'NotActiveError'
  constructor(message: string) {
    super('NOT_ACTIVE', message)
  }
}

/**
 * A value the graph cannot replicate (a function, a symbol, a WeakMap, an
 * unregistered class instance, a DOM node…) was assigned. `path` names where,
 * e.g. `app.todos[3].owner`. The graph is left exactly as it was.
 */
export class UnsupportedValueError extends UnderstudyError {
  override name = 'UnsupportedValueError'
  readonly path: string
  constructor(path: string, what: string, hint: string) {
    super('UNSUPPORTED_VALUE', `${path}: cannot replicate ${what}. ${hint}`)
    this.path = path
  }
}

/** Sub-codes of {@link ProtocolError}. */
export type ProtocolErrorCode =
  | 'TRUNCATED'
  | 'MALFORMED'
  | 'OVERSIZED'
  | 'VERSION'
  | 'TYPE'
  | 'UNKNOWN_OBJECT'
  | 'FORBIDDEN_KEY'

/**
 * Bytes from a peer (or from storage) that are not a valid frame. Raised by the
 * decoder instead of crashing; the frame is dropped and nothing is applied.
 * `reason` is the sub-code, `where` the position in the frame.
 */
export class ProtocolError extends UnderstudyError {
  override name = 'ProtocolError'
  readonly reason: ProtocolErrorCode
  readonly where: string
  constructor(reason: ProtocolErrorCode, where: string, detail: string) {
    super('PROTOCOL', `${reason} at ${where}: ${detail}`)
    this.reason = reason
    this.where = where
  }
}

/** A frame from an older epoch (a deposed active) was refused. It was never applied. */
export class StaleEpochError extends UnderstudyError {
  override name = 'StaleEpochError'
  readonly frameEpoch: number
  readonly currentEpoch: number
  constructor(frameEpoch: number, currentEpoch: number, from: string) {
    super('STALE_EPOCH', `refused a frame of epoch ${frameEpoch} from ${from}: the current epoch is ${currentEpoch}`)
    this.frameEpoch = frameEpoch
    this.currentEpoch = currentEpoch
  }
}

/**
 * A peer claimed to be the active, at `claimedEpoch`, and the lease store does
 * not say so: with a lease (or an election), the lease decides who is active,
 * and a peer's word is never enough. The claim was ignored — an active that
 * just renewed its lease stays active; a standby does not follow the peer.
 */
export class LeaseClaimError extends UnderstudyError {
  override name = 'LeaseClaimError'
  readonly peer: string
  readonly claimedEpoch: number
  /** The holder (an incarnation) and epoch of the lease row this node observed, if any. */
  readonly holder: string | undefined
  readonly leaseEpoch: number | undefined
  constructor(peer: string, incarnation: string, claimedEpoch: number, row: { holder: string; epoch: number } | undefined, self: boolean) {
    const lease = !row ? 'the lease names no holder' : self ? `this node holds the lease (epoch ${row.epoch})` : `the lease names ${row.holder} at epoch ${row.epoch}`
    super('LEASE_CLAIM', `${peer} (${incarnation}) claimed to be active at epoch ${claimedEpoch}, but ${lease}: the claim is ignored`)
    this.peer = peer
    this.claimedEpoch = claimedEpoch
    this.holder = row?.holder
    this.leaseEpoch = row?.epoch
  }
}

/** A sync commit was not acknowledged by the standby within `commitTimeoutMs`. The change is kept and still replicates. */
export class CommitTimeoutError extends UnderstudyError {
  override name = 'CommitTimeoutError'
  readonly seq: number
  constructor(seq: number, timeoutMs: number, standbys: number) {
    super(
      'COMMIT_TIMEOUT',
      `commit #${seq} was not acknowledged within ${timeoutMs} ms (${standbys} standby connected). ` +
        'The change is kept locally and will replicate when a standby catches up; raise commitTimeoutMs or use commitMode "async".',
    )
    this.seq = seq
  }
}

/** Invalid options (bad timings, an unknown mode, a duplicate class name…). */
export class ConfigError extends UnderstudyError {
  override name = 'ConfigError'
  constructor(message: string) {
    super('CONFIG', message)
  }
}

/** The instance was closed; no further commits or registrations are possible. */
export class ClosedError extends UnderstudyError {
  override name = 'ClosedError'
  constructor(what: string) {
    super('CLOSED', `${what}: this Understudy instance is closed`)
  }
}

/**
 * Durable storage is not available (private browsing, quota exceeded, the
 * database was deleted or blocked). Replication keeps working without it;
 * only checkpoints are affected.
 */
export class StorageUnavailableError extends UnderstudyError {
  override name = 'StorageUnavailableError'
  constructor(what: string, options?: { cause?: unknown }) {
    super('STORAGE_UNAVAILABLE', `${what}: durable storage is unavailable; replication continues, checkpoints do not`, options)
  }
}

/** A sections call with a bad argument: a section that already exists, data over the size limit, bad attributes. */
export class InvalidParamError extends UnderstudyError {
  override name = 'InvalidParamError'
  constructor(message: string) {
    super('INVALID_PARAM', message)
  }
}

/** The section (or checkpoint) named does not exist. */
export class NotExistError extends UnderstudyError {
  override name = 'NotExistError'
  constructor(message: string) {
    super('NOT_EXIST', message)
  }
}

/** The checkpoint already holds `maxSections` sections. */
export class NoSpaceError extends UnderstudyError {
  override name = 'NoSpaceError'
  constructor(message: string) {
    super('NO_SPACE', message)
  }
}

/**
 * A frame holds objects of a class this node has not registered under that
 * name (`className`). They are kept, with all their data, as plain objects,
 * and get their prototype as soon as the class is registered
 * (`register(name, initial, { classes: { Todo } })`). Reported once per name,
 * as an `error` event.
 */
export class UnknownClassError extends UnderstudyError {
  override name = 'UnknownClassError'
  readonly className: string
  constructor(className: string) {
    super(
      'UNKNOWN_CLASS',
      `objects of class "${className}" arrived, but no class is registered under that name here: they are kept as plain objects ` +
        `(their data replicates) until it is. Register it on every node, under the same name: classes: { ${/^[A-Za-z_$][\w$]*$/.test(className) ? className : `'${className}': TheClass`} }.`,
    )
    this.className = className
  }
}

/**
 * A transport was misused (opened twice, reused after `close()`) or a peer
 * sent bytes it must reject (garbage, an oversized or unexpected frame). The
 * message names the adapter and the peer.
 */
export class TransportError extends UnderstudyError {
  override name = 'TransportError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT', message, options)
  }
}

/** The lease or election could not do its job (a lease table that kept changing under a write, an election worker's failure). */
export class LeaseError extends UnderstudyError {
  override name = 'LeaseError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('LEASE', message, options)
  }
}

/** Sub-codes of {@link AuthError}. */
export type AuthErrorCode = 'MALFORMED' | 'NO_COMMON_KEY' | 'BAD_PROOF' | 'TAMPERED' | 'TIMEOUT' | 'UNAUTHENTICATED' | 'REFUSED'

/**
 * A peer failed group authentication: its handshake was malformed or late, it
 * holds none of this group's keys, its proof did not verify, or a frame's tag
 * did not (tampered, replayed, reordered, truncated). The connection is closed;
 * nothing it sent was delivered. `reason` is the sub-code.
 */
export class AuthError extends UnderstudyError {
  override name = 'AuthError'
  readonly reason: AuthErrorCode
  constructor(reason: AuthErrorCode, message: string) {
    super('AUTH', message)
    this.reason = reason
  }
}
