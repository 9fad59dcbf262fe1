/**
 * The WebSocket envelope's reassembly: a frame that grows past maxFrameBytes
 * is dropped whole — its remaining pieces, up to its final DATA, are not taken
 * for a frame of their own (before: the tail after the limit was delivered as
 * a frame, a way from application data into protocol frames).
 */
import { describe, expect, it } from 'vitest'
import { CHUNK, DATA, Reassembler } from '../adapters/websocket/framing.js'

const piece = (n: number, fill: number) => new Uint8Array(n).fill(fill)

describe('websocket reassembly', () => {
  it('a frame over maxFrameBytes is dropped with all its pieces; the next frame arrives whole', () => {
    const r = new Reassembler(3000)
    const got = [CHUNK, CHUNK, CHUNK, CHUNK, DATA].map((t, i) => r.take(t, piece(1000, i)))
    expect(got.map((g) => g.kind)).toEqual(['partial', 'partial', 'partial', 'error', 'partial'])
    expect(got.some((g) => g.kind === 'frame')).toBe(false)
    const next = [r.take(CHUNK, piece(10, 7)), r.take(DATA, piece(5, 8))]
    expect(next[1]).toEqual({ kind: 'frame', data: Uint8Array.from([...piece(10, 7), ...piece(5, 8)]) })
  })

  it('an oversized final DATA drops only that frame', () => {
    const r = new Reassembler(100)
    expect(r.take(DATA, piece(101, 1)).kind).toBe('error')
    expect(r.take(DATA, piece(3, 2))).toEqual({ kind: 'frame', data: piece(3, 2) })
  })
})
