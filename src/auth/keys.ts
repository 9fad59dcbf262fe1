/**
 * Group keys: what members hold to prove they belong. A key is 16 or more bytes
 * (a `Uint8Array`, or a string taken as its UTF-8 bytes); {@link generateGroupKey}
 * makes a good one. A list holds several during a rotation: the first is this
 * member's newest, and a peer is accepted with any key both hold.
 */
import { ConfigError } from '../errors.js'
import { webCrypto, type AuthCrypto } from './crypto.js'

/** One group key: 16 or more bytes, or a string of 16 or more UTF-8 bytes. */
export type GroupKey = string | Uint8Array

/** What a network transport takes to authenticate its peers. */
export interface GroupAuthOptions {
  /** The group key, or a list of keys during a rotation (at most 8). Every member must hold at least one key in common with each peer. */
  key: GroupKey | readonly GroupKey[]
  /** Also encrypt every frame (AES-256-GCM). Default false: frames are authenticated (HMAC-SHA-256) but readable on the wire. A session is encrypted when either end asks. */
  encrypt?: boolean
  /** The primitives (default WebCrypto). Node adapters default to `nodeCrypto`, ~20× cheaper per frame. */
  crypto?: AuthCrypto
}

/** Most keys a member holds at once. */
export const MAX_KEYS = 8
const MIN_KEY_BYTES = 16
const KEY_ID_LABEL = new TextEncoder().encode('understudy-ha/1 key id')
const STRETCH_SALT = new TextEncoder().encode('understudy-ha/1 group key')
/**
 * PBKDF2 rounds a group key goes through once, when a transport opens (~50 ms):
 * the key ids and proofs a stranger can collect let it test guesses offline,
 * and this makes each guess cost as much. A random key (generateGroupKey) is
 * out of reach either way; a passphrase only slows down.
 */
export const KEY_STRETCH_ITERATIONS = 100_000

/** Stretched keys, per primitives and key: a process that opens many transports with one key stretches it once. */
const stretched = new WeakMap<AuthCrypto, Map<string, Promise<Uint8Array>>>()

function stretch(crypto: AuthCrypto, bytes: Uint8Array): Promise<Uint8Array> {
  let cache = stretched.get(crypto)
  if (!cache) stretched.set(crypto, (cache = new Map()))
  const name = hex(bytes)
  let out = cache.get(name)
  if (!out) {
    out = crypto.pbkdf2(bytes, STRETCH_SALT, KEY_STRETCH_ITERATIONS)
    cache.set(name, out)
    if (cache.size > 64) cache.delete(cache.keys().next().value as string)
  }
  return out
}

function keyBytes(k: GroupKey, where: string): Uint8Array {
  const bytes = typeof k === 'string' ? new TextEncoder().encode(k) : k instanceof Uint8Array ? k : undefined
  if (!bytes) throw new ConfigError(`${where}: a group key is a string or a Uint8Array, got ${typeof k}`)
  if (bytes.length < MIN_KEY_BYTES) throw new ConfigError(`${where}: a group key needs at least ${MIN_KEY_BYTES} bytes, got ${bytes.length} — make one with generateGroupKey()`)
  return bytes
}

/** Checks `options` at construction time (no crypto yet); throws {@link ConfigError} naming `where`. */
export function checkAuthOptions(options: GroupAuthOptions, where: string): Uint8Array[] {
  const list = Array.isArray(options.key) ? (options.key as readonly GroupKey[]) : [options.key as GroupKey]
  if (list.length === 0) throw new ConfigError(`${where}: \`key\` is an empty list; give at least one group key`)
  if (list.length > MAX_KEYS) throw new ConfigError(`${where}: at most ${MAX_KEYS} group keys at once (got ${list.length}); drop retired keys`)
  return list.map((k, i) => keyBytes(k, list.length > 1 ? `${where} key[${i}]` : where))
}

/**
 * Makes a new random group key: 32 bytes, as a base64url string (43
 * characters) that can live in an environment variable or a config file.
 */
export function generateGroupKey(crypto: AuthCrypto = webCrypto): string {
  const bytes = crypto.random(new Uint8Array(32))
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** One key, ready: its id (8 bytes, derived from the key, safe to show) and the imported key. */
export interface HeldKey {
  id: Uint8Array
  /** `id` as hex, for messages. */
  name: string
  key: unknown
}

export function hex(b: Uint8Array): string {
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

/** The keys of one member, imported once: what every connection's handshake uses. */
export class GroupKeys {
  private constructor(
    readonly crypto: AuthCrypto,
    readonly keys: readonly HeldKey[],
    readonly encrypt: boolean,
  ) {}

  static async create(options: GroupAuthOptions, where: string): Promise<GroupKeys> {
    const raw = checkAuthOptions(options, where)
    const crypto = options.crypto ?? webCrypto
    const keys: HeldKey[] = []
    for (const bytes of raw) {
      const key = await crypto.importKey(await stretch(crypto, bytes), 'hmac')
      const id = (await crypto.hmac(key, [KEY_ID_LABEL])).slice(0, 8)
      if (!keys.some((k) => hex(k.id) === hex(id))) keys.push({ id, name: hex(id), key })
    }
    return new GroupKeys(crypto, keys, options.encrypt === true)
  }

  byId(id: Uint8Array): HeldKey | undefined {
    const name = hex(id)
    return this.keys.find((k) => k.name === name)
  }
}

/** The authentication options every network transport (TCP, both WebSocket ends) takes. */
export interface TransportAuthOptions {
  /**
   * The group key (or keys, during a rotation: at most 8, the newest first):
   * every peer must prove it holds one before it is a peer, this end proves it
   * too, and every message is authenticated. Required unless `insecure: true`.
   * Make one with `generateGroupKey()` and give every member the same, e.g.
   * from `process.env.UNDERSTUDY_KEY`.
   */
  key?: GroupKey | readonly GroupKey[]
  /** Encrypt messages too (AES-256-GCM), not only authenticate them (HMAC-SHA-256). Default false. A session is encrypted when either end asks. */
  encrypt?: boolean
  /** The primitives: default `nodeCrypto` (`understudy-ha/adapters/node-crypto`, synchronous) in the Node adapters, WebCrypto in the WebSocket client (pass `nodeCrypto` when it runs in Node: faster). */
  crypto?: AuthCrypto
  /** Accept (or dial) peers without a key: only where every process that can reach the port is trusted. */
  insecure?: boolean
  /** A peer must complete its handshake (or insecure HELLO) within this, or the connection is closed (default 5000 ms). */
  handshakeTimeoutMs?: number
}

/**
 * Decides, at a transport's construction, whether it authenticates: with `key`,
 * the keys are checked now (a {@link ConfigError} names `where`) and imported
 * (the promise, awaited at `open()`); with `insecure: true`, undefined; with
 * neither, or both, a ConfigError that says how to set a key (`example` shows
 * the call).
 */
export function transportKeys(options: TransportAuthOptions, where: string, example: string, defaultCrypto: AuthCrypto): Promise<GroupKeys> | undefined {
  if (options.key === undefined) {
    if (options.insecure === true) return undefined
    throw new ConfigError(
      `${where}: no group key. Give every member the same secret — ${example}, made once with generateGroupKey() — or write insecure: true to accept any peer (a trusted network only)`,
    )
  }
  if (options.insecure === true) throw new ConfigError(`${where}: give \`key\` or \`insecure: true\`, not both`)
  checkAuthOptions({ key: options.key }, where)
  const keys = GroupKeys.create({ key: options.key, encrypt: options.encrypt, crypto: options.crypto ?? defaultCrypto }, where)
  keys.catch(() => undefined)
  return keys
}
