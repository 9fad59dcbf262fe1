/**
 * Every error Understudy throws or emits is an `UnderstudyError` with a stable
 * `code`, so callers can branch on `err.code` without string matching.
 */
export class UnderstudyError extends Error {
  /** Stable machine-readable code, e.g. `'NOT_ACTIVE'`. */
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A write was attempted on a node that is not the ACTIVE (a standby mirror, or a stopped node). */
export class NotActiveError extends UnderstudyError {
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
  readonly frameEpoch: number
  readonly currentEpoch: number
  constructor(frameEpoch: number, currentEpoch: number, from: string) {
    super('STALE_EPOCH', `refused a frame of epoch ${frameEpoch} from ${from}: the current epoch is ${currentEpoch}`)
    this.frameEpoch = frameEpoch
    this.currentEpoch = currentEpoch
  }
}

/** A sync commit was not acknowledged by the standby within `commitTimeoutMs`. The change is kept and still replicates. */
export class CommitTimeoutError extends UnderstudyError {
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
  constructor(message: string) {
    super('CONFIG', message)
  }
}

/** The instance was closed; no further commits or registrations are possible. */
export class ClosedError extends UnderstudyError {
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
  constructor(what: string, options?: { cause?: unknown }) {
    super('STORAGE_UNAVAILABLE', `${what}: durable storage is unavailable; replication continues, checkpoints do not`, options)
  }
}

/** A sections call with a bad argument: a section that already exists, data over the size limit, bad attributes. */
export class InvalidParamError extends UnderstudyError {
  constructor(message: string) {
    super('INVALID_PARAM', message)
  }
}

/** The section (or checkpoint) named does not exist. */
export class NotExistError extends UnderstudyError {
  constructor(message: string) {
    super('NOT_EXIST', message)
  }
}

/** The checkpoint already holds `maxSections` sections. */
export class NoSpaceError extends UnderstudyError {
  constructor(message: string) {
    super('NO_SPACE', message)
  }
}
