/**
 * One authenticated connection, for any transport that has connections (TCP,
 * WebSocket): runs the {@link Handshake}, then seals what is sent and opens
 * what arrives, in wire order even when the primitives are asynchronous. Until
 * the session is established it accepts only handshake messages of at most
 * {@link PREAUTH_MAX_BYTES}, keeps at most {@link PREAUTH_QUEUE_BYTES} waiting,
 * and fails the connection when the handshake is not done within its deadline.
 * Any failure is final: the transport closes the connection.
 */
import type { Clock } from '../clock.js'
import { AuthError } from '../errors.js'
import type { Maybe } from './crypto.js'
import { Handshake, PREAUTH_MAX_BYTES, type PeerIdentity, type Session } from './handshake.js'
import type { GroupKeys } from './keys.js'

/** Most bytes held for a connection whose handshake is still being verified. */
export const PREAUTH_QUEUE_BYTES = 64 * 1024
/** Default handshake deadline. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000

export interface SecureLinkOptions {
  keys: GroupKeys
  self: PeerIdentity
  /** Whether this end dialled the connection (false: accepted it). */
  dialer: boolean
  /** The transport's message types for the two handshake messages. */
  types: { hello: number; proof: number }
  clock: Clock
  handshakeTimeoutMs: number
  /** Writes one message: its type and the parts of its body, in order. */
  write(type: number, parts: readonly Uint8Array[]): void
  /** The peer proved it holds a group key; from now on messages flow. */
  established(peer: PeerIdentity): void
  /** An authenticated message from the peer, in wire order. */
  message(type: number, payload: Uint8Array): void
  /** The connection failed authentication: close it. Called at most once. */
  failed(error: AuthError): void
}

type Step = () => Maybe<void>

function isPromise(v: unknown): v is Promise<unknown> {
  return v instanceof Promise
}

export class SecureLink {
  private readonly handshake: Handshake
  private session: Session | undefined
  private dead = false
  private timer: unknown
  private readonly inbox: Step[] = []
  private inboxBusy = false
  private queued = 0
  /** Sealed messages not yet written, in send order (a sealing may finish later than the next one). */
  private readonly outbox: { type: number; sealed: Maybe<Uint8Array[]> }[] = []
  private outboxBusy = false

  constructor(private readonly o: SecureLinkOptions) {
    this.handshake = new Handshake(o.keys, o.self, o.dialer)
  }

  /** Whether the peer has proven itself. */
  get established(): boolean {
    return this.session !== undefined
  }

  /** The peer's proven identity, once established. */
  get peer(): PeerIdentity | undefined {
    return this.session?.peer
  }

  /** Sends this end's HELLO and starts the handshake deadline. */
  start(): void {
    this.timer = this.o.clock.setTimeout(
      () => this.fail(new AuthError('TIMEOUT', `the peer${this.handshake.claimed ? ` claiming to be ${JSON.stringify(this.handshake.claimed.id)}` : ''} did not complete the handshake within ${this.o.handshakeTimeoutMs} ms`)),
      this.o.handshakeTimeoutMs,
    )
    this.o.write(this.o.types.hello, [this.handshake.hello])
  }

  /** Stops the deadline; nothing more is delivered or sent. */
  close(): void {
    this.dead = true
    this.o.clock.clearTimeout(this.timer)
  }

  /** One message as it arrived. */
  receive(type: number, body: Uint8Array): void {
    if (this.dead) return
    if (!this.session) {
      if (body.length > PREAUTH_MAX_BYTES) return this.fail(new AuthError('UNAUTHENTICATED', `a message of ${body.length} bytes before the handshake completed (at most ${PREAUTH_MAX_BYTES})`))
      this.queued += body.length
      if (this.queued > PREAUTH_QUEUE_BYTES) return this.fail(new AuthError('UNAUTHENTICATED', `more than ${PREAUTH_QUEUE_BYTES} bytes arrived before the handshake completed`))
    }
    this.inbox.push(() => this.take(type, body))
    if (!this.inboxBusy) this.pump()
  }

  /** Seals and writes one message, after every earlier one. */
  send(type: number, payload: Uint8Array): void {
    const s = this.session
    if (this.dead || !s) return
    this.outbox.push({ type, sealed: s.seal(type, payload) })
    if (!this.outboxBusy) this.flushOut()
  }

  private take(type: number, body: Uint8Array): Maybe<void> {
    const s = this.session
    if (s) {
      const out = s.open(type, body)
      if (isPromise(out)) return out.then((p) => this.deliver(type, p))
      return this.deliver(type, out)
    }
    this.queued -= body.length
    if (type === this.o.types.hello) {
      const proof = this.handshake.receiveHello(body)
      if (isPromise(proof)) return proof.then((p) => void (this.dead || this.o.write(this.o.types.proof, [p])))
      this.o.write(this.o.types.proof, [proof])
      return
    }
    if (type === this.o.types.proof) {
      const session = this.handshake.receiveProof(body)
      if (isPromise(session)) return session.then((x) => this.establish(x))
      return this.establish(session)
    }
    throw new AuthError('UNAUTHENTICATED', `a message of type ${type} before the handshake completed`)
  }

  private establish(session: Session): void {
    if (this.dead) return
    this.o.clock.clearTimeout(this.timer)
    this.session = session
    this.o.established(session.peer)
  }

  private deliver(type: number, payload: Uint8Array): void {
    if (!this.dead) this.o.message(type, payload)
  }

  private pump(): void {
    this.inboxBusy = true
    while (!this.dead) {
      const step = this.inbox.shift()
      if (!step) break
      let r: Maybe<void>
      try {
        r = step()
      } catch (err) {
        return this.fail(err)
      }
      if (isPromise(r)) {
        r.then(
          () => this.pump(),
          (err: unknown) => this.fail(err),
        )
        return
      }
    }
    this.inboxBusy = false
  }

  private flushOut(): void {
    this.outboxBusy = true
    while (!this.dead) {
      const next = this.outbox.shift()
      if (!next) break
      const { type, sealed } = next
      if (isPromise(sealed)) {
        sealed.then(
          (parts) => {
            if (!this.dead) this.o.write(type, parts)
            this.flushOut()
          },
          (err: unknown) => this.fail(err),
        )
        return
      }
      this.o.write(type, sealed)
    }
    this.outboxBusy = false
  }

  private fail(err: unknown): void {
    if (this.dead) return
    this.close()
    this.inbox.length = 0
    this.outbox.length = 0
    this.o.failed(err instanceof AuthError ? err : new AuthError('MALFORMED', `the handshake failed: ${(err as Error)?.message ?? String(err)}`))
  }
}
