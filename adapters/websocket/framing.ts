/**
 * The WebSocket envelope: one byte of type, then the payload.
 * HELLO carries the sender's peer id (UTF-8); DATA a whole frame, or the last
 * piece of a chunked one; CHUNK a piece with more to follow; BYE nothing.
 * Frames larger than `chunkBytes` are chunked, because gateways and proxies
 * commonly refuse WebSocket messages over 1 MB.
 */
export const HELLO = 0
export const DATA = 1
export const CHUNK = 2
export const BYE = 3

/** Default largest message sent: 1 MiB including the type byte. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024 - 1
/** Default largest reassembled frame accepted. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024

export function envelope(type: number, payload: Uint8Array, from = 0, to = payload.length): Uint8Array {
  const out = new Uint8Array(1 + to - from)
  out[0] = type
  out.set(payload.subarray(from, to), 1)
  return out
}

/** The messages that carry `data`: DATA alone, or CHUNK… then a final DATA. */
export function* pieces(data: Uint8Array, chunkBytes: number): Generator<Uint8Array> {
  let at = 0
  while (data.length - at > chunkBytes) {
    yield envelope(CHUNK, data, at, at + chunkBytes)
    at += chunkBytes
  }
  yield envelope(DATA, data, at, data.length)
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

  constructor(private readonly maxFrameBytes: number) {}

  take(message: unknown): Received {
    const bytes =
      message instanceof Uint8Array ? message : message instanceof ArrayBuffer ? new Uint8Array(message) : undefined
    if (!bytes || bytes.length === 0) return { kind: 'error', message: 'received a text or empty message; only binary frames are spoken here' }
    const type = bytes[0]
    const body = bytes.subarray(1)
    switch (type) {
      case HELLO: {
        const peer = new TextDecoder().decode(body)
        return peer ? { kind: 'hello', peer } : { kind: 'error', message: 'an empty HELLO' }
      }
      case BYE:
        return { kind: 'bye' }
      case CHUNK:
      case DATA: {
        this.size += body.length
        if (this.size > this.maxFrameBytes) {
          this.parts = []
          this.size = 0
          return { kind: 'error', message: `a frame exceeds maxFrameBytes (${this.maxFrameBytes}); dropped` }
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
