/**
 * The WebSocket envelope: one byte of type, then the payload.
 *
 * - HELLO (0) carries the sender's peer id (UTF-8): the insecure greeting
 *   (`insecure: true`).
 * - AUTH_HELLO (4) and AUTH_PROOF (5) are the group-authentication handshake
 *   (the core's `SecureLink`); with a key they replace HELLO. The server then
 *   sends WELCOME (6, sealed) once the client is a peer: the client's peer is
 *   up only then, as the server's HELLO says it without a key.
 * - DATA (1) carries a whole frame, or the last piece of a chunked one; CHUNK
 *   (2) a piece with more to follow; BYE (3) nothing. With a key each of
 *   them (and WELCOME) is sealed on its own: its payload is followed by a
 *   16-byte tag (or is AES-256-GCM ciphertext and tag), over the type and a
 *   per-direction counter.
 *
 * Frames larger than `chunkBytes` are chunked, because gateways and proxies
 * commonly refuse WebSocket messages over 1 MB. Before a peer is known (its
 * HELLO, or a completed handshake) no message body over `PREAUTH_MAX_BYTES`
 * (4 KiB) is accepted.
 */
export const HELLO = 0
export const DATA = 1
export const CHUNK = 2
export const BYE = 3
export const AUTH_HELLO = 4
export const AUTH_PROOF = 5
/** Server to client, sealed: the id the client proved is bound to this connection and the client is a peer (with a key; HELLO says it without). */
export const WELCOME = 6

/**
 * Close codes a server gives with its reason when it refuses a connection the
 * client could not tell was wrong otherwise; the client reports them.
 */
export const CLOSE_NO_KEY = 4401
export const CLOSE_ID_IN_USE = 4409

/** Bytes a sealed message adds after its payload (the HMAC or GCM tag). */
export const SEAL_OVERHEAD = 16

/** Default largest message sent: 1 MiB including the type byte. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024 - 1
/** Default largest reassembled frame accepted. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024
/** Default cap on a server's connections that have not completed their HELLO or handshake. */
export const DEFAULT_MAX_PENDING_CONNECTIONS = 64
/** Default time a connected peer has to answer a ping when another connection claims its id. */
export const DEFAULT_PROBE_MS = 1000

/** One message: the type byte, then `parts` in order. */
export function envelope(type: number, parts: readonly Uint8Array[]): Uint8Array {
  let n = 1
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  out[0] = type
  let at = 1
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** The pieces that carry `data`, as (type, body): DATA alone, or CHUNK… then a final DATA. Bodies are views of `data`. */
export function* pieces(data: Uint8Array, chunkBytes: number): Generator<[type: number, body: Uint8Array]> {
  let at = 0
  while (data.length - at > chunkBytes) {
    yield [CHUNK, data.subarray(at, at + chunkBytes)]
    at += chunkBytes
  }
  yield [DATA, data.subarray(at)]
}

/** Splits a received WebSocket message into its type and body; a string names what is wrong. */
export function parse(message: unknown): { type: number; body: Uint8Array } | string {
  const bytes = message instanceof Uint8Array ? message : message instanceof ArrayBuffer ? new Uint8Array(message) : undefined
  if (!bytes || bytes.length === 0) return 'received a text or empty message; only binary frames are spoken here'
  return { type: bytes[0] as number, body: bytes.subarray(1) }
}

/** The byte length of a received WebSocket message, as far as it can be told (text counts its UTF-16 length). */
export function messageBytes(message: unknown): number {
  if (message instanceof Uint8Array || message instanceof ArrayBuffer) return message.byteLength
  if (typeof message === 'string') return message.length
  const size = (message as { size?: unknown } | null)?.size // a Blob
  return typeof size === 'number' ? size : 0
}

/** What one received message meant. */
export type Received =
  | { kind: 'hello'; peer: string }
  | { kind: 'frame'; data: Uint8Array }
  | { kind: 'partial' }
  | { kind: 'bye' }
  | { kind: 'error'; message: string }

/** Reassembles chunked frames for one connection, within a size limit. */
export class Reassembler {
  private parts: Uint8Array[] = []
  private size = 0
  /** Dropping the rest of a frame that grew past the limit, up to and including its final DATA (its tail is not a frame). */
  private discarding = false

  constructor(private readonly maxFrameBytes: number) {}

  /** One message, as it arrived (insecure) or as the session opened it (with a key). */
  take(type: number, body: Uint8Array): Received {
    switch (type) {
      case HELLO: {
        const peer = new TextDecoder().decode(body)
        return peer ? { kind: 'hello', peer } : { kind: 'error', message: 'an empty HELLO' }
      }
      case BYE:
        return { kind: 'bye' }
      case CHUNK:
      case DATA: {
        if (this.discarding) {
          if (type === DATA) this.discarding = false
          return { kind: 'partial' }
        }
        this.size += body.length
        if (this.size > this.maxFrameBytes) {
          this.parts = []
          this.size = 0
          this.discarding = type === CHUNK
          return { kind: 'error', message: `a frame exceeds maxFrameBytes (${this.maxFrameBytes}); dropped, with the rest of its pieces` }
        }
        this.parts.push(body)
        if (type === CHUNK) return { kind: 'partial' }
        const parts = this.parts
        const size = this.size
        this.parts = []
        this.size = 0
        if (parts.length === 1) return { kind: 'frame', data: parts[0] as Uint8Array }
        const data = new Uint8Array(size)
        let at = 0
        for (const p of parts) {
          data.set(p, at)
          at += p.length
        }
        return { kind: 'frame', data }
      }
      default:
        return { kind: 'error', message: `unknown message type ${String(type)}` }
    }
  }
}
