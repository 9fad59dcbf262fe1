/**
 * Understudy — transparent high availability for web and Node applications.
 *
 * Register object graphs once; every change the ACTIVE makes is replicated as
 * a delta to its STANDBYs. This entry point is the runtime-agnostic core:
 * runtime bindings live under `understudy-ha/adapters/*`.
 */
export { Understudy } from './understudy.js'
export type { CommitMode, CommitResult, HandoverResult, Leak, Role, Stats, UnderstudyEvents, UnderstudyOptions } from './understudy.js'
export type { Transport, TransportHandler, PeerId } from './transport.js'
export { realClock, VirtualClock, type Clock } from './clock.js'
export { seededRandom, randomId, defaultRandom, type Random } from './random.js'
export { Emitter } from './events.js'
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
export {
  UnderstudyError,
  NotActiveError,
  UnsupportedValueError,
  ProtocolError,
  StaleEpochError,
  LeaseClaimError,
  CommitTimeoutError,
  ConfigError,
  ClosedError,
  StorageUnavailableError,
  InvalidParamError,
  NotExistError,
  NoSpaceError,
  UnknownClassError,
  TransportError,
  LeaseError,
  type ProtocolErrorCode,
} from './errors.js'
export type { ClassLike, ClassList, NamedClass } from './graph/kinds.js'
export { Checkpointer, CheckpointCorruptError, crc32, type CheckpointPolicy, type CheckpointerOptions, type Restored } from './checkpoints/checkpointer.js'
export { SectionCheckpoint, type SectionAttributes, type Section } from './checkpoints/sections.js'
export { MemoryCheckpointStore, checkKey, compareKeys, hasPrefix, type CheckpointStore, type StoreEntry, type StoreKey } from './checkpoints/store.js'
export { MemoryLeaseStore, asLeaseRow, decideHeartbeat, isExpired, longExpired, mayTakeOver, mayEverTakeOver, releasedRow, nodeOfHolder, incarnationId, type LeaseRow, type LeaseStore } from './roles/lease.js'
export { remoteElection, serveElection, type ElectionService, type ElectionWorker, type MessageEndpoint, type Host as ElectionHost } from './roles/remote.js'
export { Elector, checkHeartbeat, eligibleWith, type Candidacy, type HeartbeatOptions, type ElectorEvents, type ElectorLike, type ElectionFactory } from './roles/elector.js'
export {
  PROTOCOL_VERSION,
  readFrame,
  type Frame,
  type HelloFrame,
  type SnapshotFrame,
  type DeltaFrame,
  type AckFrame,
  type ResyncFrame,
  type HandoverFrame,
  type PersistedFrame,
  type RoleName,
  type CodecLimits,
  RoleCode,
} from './codec/frames.js'
export { Kind, ArrayOp, type DeltaBody, type SnapshotBody, type NodeRecord, type Cell, type RootList, type ChangeList, type Primitive, type Ref, type Hole, type NegZero } from './graph/wire.js'
export type { LogLimits } from './replication/primary.js'
export type { Position } from './checkpoints/durability.js'
export { RestartTracker, restartPolicy, DEFAULT_RESTART, type RestartPolicy, type RestartDecision, type ExitStatus } from './restart.js'
export {
  runSequence,
  newProgress,
  defaultPolicy,
  DEFAULT_RETRIES,
  DEFAULT_MAX_ROLLBACKS,
  type Sequence,
  type Step,
  type StepContext,
  type StepOutcome,
  type RollbackOutcome,
  type Policy,
  type PolicyEvent,
  type PolicyDecision,
  type SequenceProgress,
  type SequenceResult,
  type RunOptions,
} from './sequences/index.js'
export { AuthError, type AuthErrorCode } from './errors.js'
export { webCrypto, type AuthCrypto, type Maybe } from './auth/crypto.js'
export { generateGroupKey, checkAuthOptions, transportKeys, GroupKeys, MAX_KEYS, KEY_STRETCH_ITERATIONS, type GroupKey, type GroupAuthOptions, type TransportAuthOptions, type HeldKey } from './auth/keys.js'
export { Handshake, Session, PREAUTH_MAX_BYTES, MAX_PEER_ID_BYTES, checkPeerId, encodeHello, decodeHello, type PeerIdentity, type HandshakeHello } from './auth/handshake.js'
export { SecureLink, PREAUTH_QUEUE_BYTES, DEFAULT_HANDSHAKE_TIMEOUT_MS, type SecureLinkOptions } from './auth/link.js'
