/**
 * The handshake two members run on a fresh connection, and the session it
 * yields.
 *
 * Each side sends a HELLO — magic, flags (encrypt; whether it dialled or
 * accepted the connection), a fresh 32-byte nonce, the ids of the keys it holds
 * in order of preference, its peer id and incarnation — and, once it has the other's,
 * a PROOF: HMAC(PRK, "proof" ‖ its own nonce), where
 * PRK = HMAC(group key, label ‖ both HELLOs in byte order). Only a holder of
 * the key can compute a proof; the nonces make every session's PRK new, so a
 * recorded handshake proves nothing later (no replay), and a proof names its
 * sender's nonce, so a reflected one fails. The peer id and incarnation are in
 * the transcript: they are bound to the session, not merely claimed.
 *
 * Each direction then has its own key, HMAC(PRK, "key" ‖ sender's nonce), and a
 * counter that starts at 0 and is never sent: frame n is authenticated over
 * (n, type, payload), so a replayed, dropped, reordered, truncated or altered
 * frame fails its tag. With `encrypt` the frame is AES-256-GCM with the counter
 * as IV; otherwise HMAC-SHA-256 truncated to 16 bytes.
 */
import { AuthError, ConfigError } from '../errors.js'
import { equalBytes, andThen, type AuthCrypto, type Maybe } from './crypto.js'
import { hex, type GroupKeys, type HeldKey } from './keys.js'

/** The largest handshake message, and the largest message accepted before a session is established. */
export const PREAUTH_MAX_BYTES = 4096
const MAGIC = [0x55, 0x48, 0x41, 0x31] // "UHA1"
const NONCE_BYTES = 32
const KEY_ID_BYTES = 8
const MAX_NAME_BYTES = 512
const TAG_BYTES = 16
const enc = new TextEncoder()
const SESSION_LABEL = enc.encode('understudy-ha/1 session')
const PROOF_LABEL = enc.encode('proof')
const KEY_LABEL = enc.encode('key')

/** Who a peer proved to be. */
export interface PeerIdentity {
  id: string
  incarnation: string
}

/** A handshake HELLO, as decoded. */
export interface HandshakeHello extends PeerIdentity {
  nonce: Uint8Array
  keyIds: Uint8Array[]
  encrypt: boolean
  /** This end dialled the connection (false: it accepted it). */
  dialer: boolean
}

function u16(n: number): Uint8Array {
  return new Uint8Array([n >> 8, n & 0xff])
}

export function encodeHello(h: HandshakeHello): Uint8Array {
  const id = enc.encode(h.id)
  const inc = enc.encode(h.incarnation)
  return Uint8Array.from([...MAGIC, (h.encrypt ? 1 : 0) | (h.dialer ? 2 : 0), ...h.nonce, h.keyIds.length, ...h.keyIds.flatMap((k) => [...k]), ...u16(id.length), ...id, ...u16(inc.length), ...inc])
}

const strict = new TextDecoder('utf-8', { fatal: true })

/** Parses a peer's HELLO, checking every field; throws {@link AuthError} `MALFORMED` saying what is wrong. */
export function decodeHello(b: Uint8Array): HandshakeHello {
  const bad = (what: string) => new AuthError('MALFORMED', `a handshake HELLO ${what}`)
  if (!(b instanceof Uint8Array)) throw bad('is not bytes')
  if (b.length > PREAUTH_MAX_BYTES) throw bad(`of ${b.length} bytes exceeds ${PREAUTH_MAX_BYTES}`)
  if (b.length < 4 || MAGIC.some((m, i) => b[i] !== m)) throw bad('does not start with the protocol magic (is the peer a member of an authenticated group?)')
  let at = 4
  const need = (n: number, what: string) => {
    if (at + n > b.length) throw bad(`is truncated at ${what}`)
    const out = b.subarray(at, at + n)
    at += n
    return out
  }
  const flags = need(1, 'flags')[0] as number
  if (flags > 3) throw bad(`has unknown flags ${flags}`)
  const nonce = need(NONCE_BYTES, 'the nonce').slice()
  const n = need(1, 'the key count')[0] as number
  if (n < 1 || n > 8) throw bad(`offers ${n} keys (1 to 8)`)
  const keyIds: Uint8Array[] = []
  for (let i = 0; i < n; i++) keyIds.push(need(KEY_ID_BYTES, `key id ${i}`).slice())
  const text = (what: string) => {
    const len = need(2, `the length of ${what}`)
    const size = ((len[0] as number) << 8) | (len[1] as number)
    if (size === 0 || size > MAX_NAME_BYTES) throw bad(`has a ${what} of ${size} bytes (1 to ${MAX_NAME_BYTES})`)
    try {
      return strict.decode(need(size, what))
    } catch (e) {
      if (e instanceof AuthError) throw e
      throw bad(`has a ${what} that is not UTF-8`)
    }
  }
  const id = text('peer id')
  const incarnation = text('incarnation')
  if (at !== b.length) throw bad(`has ${b.length - at} trailing bytes`)
  return { id, incarnation, nonce, keyIds, encrypt: (flags & 1) === 1, dialer: (flags & 2) === 2 }
}

/** The longest peer id a network transport announces (its incarnation may be longer, up to the HELLO's 512-byte fields). */
export const MAX_PEER_ID_BYTES = 256

/** Checks a peer id a network transport will announce: 1 to {@link MAX_PEER_ID_BYTES} UTF-8 bytes; a {@link ConfigError} names `where`. */
export function checkPeerId(id: string, where: string): void {
  const n = typeof id === 'string' ? enc.encode(id).length : 0
  if (n < 1 || n > MAX_PEER_ID_BYTES) throw new ConfigError(`${where}: a peer id is 1 to ${MAX_PEER_ID_BYTES} UTF-8 bytes, got ${n}`)
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number)
  return a.length - b.length
}

/**
 * One side of the handshake on one connection. `hello` goes out first;
 * {@link receiveHello} takes the peer's and returns the PROOF to send;
 * {@link receiveProof} checks the peer's and returns the session.
 */
export class Handshake {
  readonly hello: Uint8Array
  private readonly nonce: Uint8Array
  private peer: HandshakeHello | undefined
  private prk: unknown
  private key: HeldKey | undefined
  private encrypt = false

  constructor(
    private readonly keys: GroupKeys,
    self: PeerIdentity,
    /** Whether this end dialled the connection. The two ends must differ: a stranger that joins two listeners' connections to each other (a relay) fails. */
    private readonly dialer = false,
  ) {
    checkPeerId(self.id, 'handshake')
    this.nonce = keys.crypto.random(new Uint8Array(NONCE_BYTES))
    this.hello = encodeHello({ ...self, nonce: this.nonce, keyIds: keys.keys.map((k) => k.id), encrypt: keys.encrypt, dialer })
    if (this.hello.length > PREAUTH_MAX_BYTES) throw new AuthError('MALFORMED', `this end's handshake HELLO would be ${this.hello.length} bytes; shorten its peer id`)
  }

  /** Who the peer says it is: known once its HELLO arrived, proven once {@link receiveProof} succeeded. */
  get claimed(): PeerIdentity | undefined {
    return this.peer && { id: this.peer.id, incarnation: this.peer.incarnation }
  }

  /** Takes the peer's HELLO; returns this end's PROOF. */
  receiveHello(bytes: Uint8Array): Maybe<Uint8Array> {
    if (this.peer) throw new AuthError('MALFORMED', 'a second handshake HELLO on one connection')
    const peer = decodeHello(bytes)
    if (equalBytes(peer.nonce, this.nonce)) throw new AuthError('BAD_PROOF', 'the peer echoed this end\'s own nonce (a reflected handshake)')
    if (peer.dialer === this.dialer)
      throw new AuthError(
        'REFUSED',
        `peer ${JSON.stringify(peer.id)} says it ${peer.dialer ? 'dialled' : 'accepted'} this connection, as this end did: someone is joining two members' connections to each other (a relay); refused`,
      )
    const offered = peer.keyIds.map(hex)
    const mine = this.keys.keys.map((k) => k.name)
    // Both ends pick the same key: the first, in the preference order of the end whose HELLO sorts first, that both hold.
    const order = compare(this.hello, bytes) < 0 ? mine : offered
    const name = order.find((n) => mine.includes(n) && offered.includes(n))
    this.key = this.keys.keys.find((k) => k.name === name)
    if (!this.key)
      throw new AuthError('NO_COMMON_KEY', `peer ${JSON.stringify(peer.id)} holds none of this member's group keys (this end holds ${mine.join(', ')}; the peer offers ${offered.join(', ')})`)
    this.peer = peer
    this.encrypt = this.keys.encrypt || peer.encrypt
    const [lo, hi] = compare(this.hello, bytes) < 0 ? [this.hello, bytes] : [bytes, this.hello]
    const c = this.keys.crypto
    return andThen(c.hmac(this.key.key, [SESSION_LABEL, u16(lo.length), lo, hi]), (prk) =>
      andThen(c.importKey(prk, 'hmac'), (key) => {
        this.prk = key
        return andThen(c.hmac(key, [PROOF_LABEL, this.nonce]), (mac) => Uint8Array.from([...(this.key as HeldKey).id, ...mac]))
      }),
    )
  }

  /** Checks the peer's PROOF; returns the session, or throws {@link AuthError} `BAD_PROOF`. */
  receiveProof(bytes: Uint8Array): Maybe<Session> {
    const peer = this.peer
    if (!peer || this.prk === undefined) throw new AuthError('MALFORMED', 'a handshake PROOF before the HELLO')
    if (bytes.length !== KEY_ID_BYTES + 32) throw new AuthError('MALFORMED', `a handshake PROOF is ${KEY_ID_BYTES + 32} bytes, got ${bytes.length}`)
    const c = this.keys.crypto
    const prk = this.prk
    return andThen(c.hmac(prk, [PROOF_LABEL, peer.nonce]), (expected) => {
      if (!equalBytes(bytes.subarray(0, KEY_ID_BYTES), (this.key as HeldKey).id) || !equalBytes(bytes.subarray(KEY_ID_BYTES), expected))
        throw new AuthError('BAD_PROOF', `peer ${JSON.stringify(peer.id)} did not prove it holds the group key`)
      const use = this.encrypt ? 'aes-gcm' : 'hmac'
      return andThen(c.hmac(prk, [KEY_LABEL, this.nonce]), (sendRaw) =>
        andThen(c.hmac(prk, [KEY_LABEL, peer.nonce]), (recvRaw) =>
          andThen(c.importKey(sendRaw, use), (send) => andThen(c.importKey(recvRaw, use), (recv) => new Session(c, send, recv, this.encrypt, { id: peer.id, incarnation: peer.incarnation }))),
        ),
      )
    })
  }
}

function counterBytes(n: number, size: 8 | 12): Uint8Array {
  const b = new Uint8Array(size)
  const hi = Math.floor(n / 0x100000000)
  const lo = n >>> 0
  const at = size - 8
  b[at] = hi >>> 24
  b[at + 1] = (hi >>> 16) & 0xff
  b[at + 2] = (hi >>> 8) & 0xff
  b[at + 3] = hi & 0xff
  b[at + 4] = lo >>> 24
  b[at + 5] = (lo >>> 16) & 0xff
  b[at + 6] = (lo >>> 8) & 0xff
  b[at + 7] = lo & 0xff
  return b
}

const TYPE_BYTES = Array.from({ length: 256 }, (_, i) => new Uint8Array([i]))

/**
 * An established session: seals what this end sends and opens what the peer
 * sent, each direction with its own key and counter. Call {@link seal} and
 * {@link open} in wire order: the counter is taken at the call, so results that
 * arrive later (WebCrypto) must still be written or delivered in call order.
 */
export class Session {
  private sent = 0
  private received = 0

  constructor(
    private readonly crypto: AuthCrypto,
    private readonly sendKey: unknown,
    private readonly recvKey: unknown,
    readonly encrypted: boolean,
    /** Who the peer proved to be. */
    readonly peer: PeerIdentity,
  ) {}

  /** The bytes that follow the message type on the wire: the payload and a 16-byte tag, or the ciphertext and its tag. */
  seal(type: number, payload: Uint8Array): Maybe<Uint8Array[]> {
    const n = this.sent++
    const t = TYPE_BYTES[type & 0xff] as Uint8Array
    if (this.encrypted) return andThen(this.crypto.encrypt(this.sendKey, counterBytes(n, 12), t, payload), (sealed) => [sealed])
    return andThen(this.crypto.hmac(this.sendKey, [counterBytes(n, 8), t, payload]), (mac) => [payload, mac.subarray(0, TAG_BYTES)])
  }

  /** The payload of a received message of `type`; throws (or rejects with) {@link AuthError} `TAMPERED` when it does not verify. */
  open(type: number, body: Uint8Array): Maybe<Uint8Array> {
    const n = this.received++
    const tampered = () => new AuthError('TAMPERED', `message ${n} from ${JSON.stringify(this.peer.id)} failed authentication (altered, replayed, reordered or truncated)`)
    if (body.length < TAG_BYTES) throw tampered()
    const t = TYPE_BYTES[type & 0xff] as Uint8Array
    if (this.encrypted) {
      let out: Maybe<Uint8Array>
      try {
        out = this.crypto.decrypt(this.recvKey, counterBytes(n, 12), t, body)
      } catch {
        throw tampered()
      }
      return out instanceof Promise ? out.catch(() => Promise.reject(tampered())) : out
    }
    const payload = body.subarray(0, body.length - TAG_BYTES)
    return andThen(this.crypto.hmac(this.recvKey, [counterBytes(n, 8), t, payload]), (mac) => {
      if (!equalBytes(mac.subarray(0, TAG_BYTES), body.subarray(body.length - TAG_BYTES))) throw tampered()
      return payload
    })
  }
}
