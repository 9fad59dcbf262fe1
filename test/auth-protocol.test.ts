/**
 * Group authentication's handshake and per-frame sessions, on both sets of
 * primitives (WebCrypto and node:crypto) and in both modes (HMAC, AES-GCM):
 * property tests over tampered, replayed, reordered, truncated frames, wrong
 * and rotated keys, replayed and reflected handshakes.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { AuthError, GroupKeys, Handshake, KEY_STRETCH_ITERATIONS, Session, checkPeerId, decodeHello, generateGroupKey, webCrypto, type AuthCrypto, type GroupKey } from 'understudy-ha'

const K1 = 'k1-0123456789abcdef-group-key'
const K2 = 'k2-fedcba9876543210-group-key'

async function pair(crypto: AuthCrypto, a: { key: GroupKey | GroupKey[]; encrypt?: boolean }, b: { key: GroupKey | GroupKey[]; encrypt?: boolean }) {
  const ha = new Handshake(await GroupKeys.create({ ...a, crypto }, 'a'), { id: 'a', incarnation: 'a@1' }, true)
  const hb = new Handshake(await GroupKeys.create({ ...b, crypto }, 'b'), { id: 'b', incarnation: 'b@1' })
  const pa = await ha.receiveHello(hb.hello)
  const pb = await hb.receiveHello(ha.hello)
  const sa = await ha.receiveProof(pb)
  const sb = await hb.receiveProof(pa)
  return { ha, hb, sa, sb }
}

async function sealed(s: Session, type: number, payload: Uint8Array): Promise<Uint8Array> {
  const parts = await s.seal(type, payload)
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

async function refused(f: () => unknown, reason: string): Promise<void> {
  let err: unknown
  try {
    await f()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(AuthError)
  expect((err as AuthError).reason).toBe(reason)
}

const providers: [string, AuthCrypto][] = [
  ['node:crypto', nodeCrypto],
  ['webcrypto', webCrypto],
]

for (const [name, crypto] of providers)
  for (const encrypt of [false, true])
    describe(`auth on ${name}, ${encrypt ? 'AES-GCM' : 'HMAC'}`, () => {
      it('members with a common key establish a session naming each other, and frames round-trip in order', async () => {
        const { sa, sb } = await pair(crypto, { key: K1, encrypt }, { key: K1 })
        expect(sa.peer).toEqual({ id: 'b', incarnation: 'b@1' })
        expect(sb.peer).toEqual({ id: 'a', incarnation: 'a@1' })
        expect(sa.encrypted).toBe(encrypt)
        expect(sb.encrypted).toBe(encrypt)
        await fc.assert(
          fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), { maxLength: 20 }), async (msgs) => {
            for (const [type, payload] of msgs) {
              const wire = await sealed(sa, type, payload)
              if (encrypt && payload.length >= 8) expect(Buffer.from(wire).includes(Buffer.from(payload))).toBe(false)
              expect(await sb.open(type, wire)).toEqual(payload)
            }
          }),
          { numRuns: 30 },
        )
      })

      it('a tampered, truncated, retyped, replayed or reordered frame fails authentication', async () => {
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.constantFrom('flip', 'truncate', 'retype', 'replay', 'reorder'), async (payload, pos, bit, attack) => {
            const { sa, sb } = await pair(crypto, { key: K1, encrypt }, { key: K1 })
            const w1 = await sealed(sa, 1, payload)
            const w2 = await sealed(sa, 1, payload)
            if (attack === 'flip') {
              const bad = w1.slice()
              bad[pos % bad.length] = (bad[pos % bad.length] as number) ^ (1 << bit)
              await refused(() => sb.open(1, bad), 'TAMPERED')
            } else if (attack === 'truncate') await refused(() => sb.open(1, w1.subarray(0, pos % w1.length)), 'TAMPERED')
            else if (attack === 'retype') await refused(() => sb.open(2, w1), 'TAMPERED')
            else if (attack === 'replay') {
              expect(await sb.open(1, w1)).toEqual(payload)
              await refused(() => sb.open(1, w1), 'TAMPERED')
            } else await refused(() => sb.open(1, w2), 'TAMPERED')
          }),
          { numRuns: 40 },
        )
      })

      it('a frame from another session (same members, same key) does not open', async () => {
        const one = await pair(crypto, { key: K1, encrypt }, { key: K1 })
        const two = await pair(crypto, { key: K1, encrypt }, { key: K1 })
        await refused(async () => two.sb.open(1, await sealed(one.sa, 1, new Uint8Array([1, 2, 3]))), 'TAMPERED')
      })

      it('a peer holding only another key is refused (no common key)', async () => {
        await refused(() => pair(crypto, { key: K1, encrypt }, { key: K2 }), 'NO_COMMON_KEY')
      })

      it('a rotation: a member holding [new, old] talks to one holding [old] and to one holding [new]', async () => {
        expect((await pair(crypto, { key: [K2, K1], encrypt }, { key: [K1] })).sb.peer.id).toBe('a')
        expect((await pair(crypto, { key: [K2, K1], encrypt }, { key: K2 })).sb.peer.id).toBe('a')
        await refused(() => pair(crypto, { key: K2, encrypt }, { key: K1 }), 'NO_COMMON_KEY')
      })

      it('two members holding [new, old] use the new key; the choice is the same on both ends whatever their order', async () => {
        const keys = async (list: string[]) => GroupKeys.create({ key: list, crypto, encrypt }, 'k')
        const [kNew, kOld] = (await keys([K2, K1])).keys
        for (const [la, lb] of [[[K2, K1], [K2, K1]], [[K1, K2], [K1, K2]]] as const) {
          const a = new Handshake(await keys([...la]), { id: 'a', incarnation: 'a@1' }, true)
          const b = new Handshake(await keys([...lb]), { id: 'b', incarnation: 'b@1' })
          const pa = await a.receiveHello(b.hello)
          const pb = await b.receiveHello(a.hello)
          // A PROOF starts with the id of the key it was made with.
          expect(Buffer.from(pa.subarray(0, 8)).toString('hex')).toBe((la[0] === K2 ? kNew : kOld)?.name)
          expect(Buffer.from(pb.subarray(0, 8))).toEqual(Buffer.from(pa.subarray(0, 8)))
        }
      })

      it('a relay joining two listeners (both ends accepted their connection) is refused by both', async () => {
        const keys = await GroupKeys.create({ key: K1, crypto, encrypt }, 'k')
        const a = new Handshake(keys, { id: 'a', incarnation: 'a@1' }, false)
        const b = new Handshake(keys, { id: 'b', incarnation: 'b@1' }, false)
        await refused(() => a.receiveHello(b.hello), 'REFUSED')
        await refused(() => b.receiveHello(a.hello), 'REFUSED')
        const dialers = [new Handshake(keys, { id: 'a', incarnation: 'a@1' }, true), new Handshake(keys, { id: 'b', incarnation: 'b@1' }, true)]
        await refused(() => dialers[0]?.receiveHello(dialers[1]?.hello as Uint8Array), 'REFUSED')
      })

      it('a stranger that claims a key id it does not hold fails its proof', async () => {
        const real = await GroupKeys.create({ key: K1, crypto }, 'real')
        const fake = await GroupKeys.create({ key: K2, crypto }, 'fake')
        // The stranger copies the real key id into its HELLO (ids are public) but computes with its own key.
        Object.assign(fake.keys[0] as object, { id: real.keys[0]?.id, name: real.keys[0]?.name })
        const hr = new Handshake(real, { id: 'real', incarnation: 'r' }, true)
        const hs = new Handshake(fake, { id: 'standby', incarnation: 's' })
        const proof = await hs.receiveHello(hr.hello)
        await hr.receiveHello(hs.hello)
        await refused(() => hr.receiveProof(proof), 'BAD_PROOF')
      })

      it('a recorded handshake replayed to a member proves nothing (fresh nonces)', async () => {
        const keys = await GroupKeys.create({ key: K1, crypto, encrypt }, 'k')
        const victimOld = new Handshake(keys, { id: 'b', incarnation: 'b@1' })
        const member = new Handshake(keys, { id: 'a', incarnation: 'a@1' }, true)
        const recordedHello = member.hello
        const recordedProof = await member.receiveHello(victimOld.hello)
        // Later: the attacker replays a's HELLO and PROOF to a new run of b.
        const victim = new Handshake(keys, { id: 'b', incarnation: 'b@2' })
        await victim.receiveHello(recordedHello)
        await refused(() => victim.receiveProof(recordedProof), 'BAD_PROOF')
      })

      it("a member's own HELLO reflected back to it is refused", async () => {
        const h = new Handshake(await GroupKeys.create({ key: K1, crypto }, 'k'), { id: 'a', incarnation: 'a@1' })
        await refused(() => h.receiveHello(h.hello), 'BAD_PROOF')
      })

      it('a HELLO altered in flight (another peer id) makes the proofs fail on both ends', async () => {
        const keys = await GroupKeys.create({ key: K1, crypto, encrypt }, 'k')
        const a = new Handshake(keys, { id: 'a', incarnation: 'a@1' }, true)
        const b = new Handshake(keys, { id: 'b', incarnation: 'b@1' })
        const forged = a.hello.slice()
        forged[forged.length - 1] = 0x78 // the incarnation's last byte
        const pb = await b.receiveHello(forged)
        const pa = await a.receiveHello(b.hello)
        await refused(() => b.receiveProof(pa), 'BAD_PROOF')
        await refused(() => a.receiveProof(pb), 'BAD_PROOF')
      })
    })

describe('handshake HELLO parsing', () => {
  it('any bytes either parse or raise AuthError MALFORMED — nothing else, nothing on a prototype', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        try {
          decodeHello(bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(AuthError)
          expect((e as AuthError).reason).toBe('MALFORMED')
        }
      }),
      { numRuns: 2000 },
    )
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('every truncation of a valid HELLO is refused, naming what is missing', async () => {
    const h = new Handshake(await GroupKeys.create({ key: K1, crypto: nodeCrypto }, 'k'), { id: 'node-é', incarnation: 'node-é@7' })
    expect(decodeHello(h.hello).id).toBe('node-é')
    for (let n = 0; n < h.hello.length; n++) expect(() => decodeHello(h.hello.subarray(0, n))).toThrow(AuthError)
    expect(() => decodeHello(Uint8Array.from([...h.hello, 0]))).toThrow(/trailing/)
  })

  it('keys: too short, empty list, too many, wrong type are ConfigErrors that say how to make one', async () => {
    await expect(GroupKeys.create({ key: 'short' }, 'tcp')).rejects.toThrow(/at least 16 bytes.*generateGroupKey/)
    await expect(GroupKeys.create({ key: [] }, 'tcp')).rejects.toThrow(/empty list/)
    await expect(GroupKeys.create({ key: Array(9).fill(K1) }, 'tcp')).rejects.toThrow(/at most 8/)
    await expect(GroupKeys.create({ key: 42 as unknown as string }, 'tcp')).rejects.toThrow(/string or a Uint8Array/)
    expect(generateGroupKey()).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('a key is stretched (PBKDF2) before use: a key id is not one HMAC of the key, so each offline guess costs the stretch', async () => {
    const { createHmac, pbkdf2Sync } = await import('node:crypto')
    const held = (await GroupKeys.create({ key: K1, crypto: nodeCrypto }, 'k')).keys[0]
    const naive = createHmac('sha256', K1).update('understudy-ha/1 key id').digest().subarray(0, 8).toString('hex')
    const stretchedKey = pbkdf2Sync(K1, 'understudy-ha/1 group key', KEY_STRETCH_ITERATIONS, 32, 'sha256')
    expect(held?.name).not.toBe(naive)
    expect(held?.name).toBe(createHmac('sha256', stretchedKey).update('understudy-ha/1 key id').digest().subarray(0, 8).toString('hex'))
    expect(KEY_STRETCH_ITERATIONS).toBeGreaterThanOrEqual(100_000)
    const web = (await GroupKeys.create({ key: K1, crypto: webCrypto }, 'k')).keys[0]
    expect(web?.name).toBe(held?.name)
  })

  it('a peer id over 256 bytes is a ConfigError at construction, not a crash on the first connection', () => {
    expect(() => checkPeerId('x'.repeat(257), 'tcp')).toThrow(/1 to 256 UTF-8 bytes/)
    expect(() => checkPeerId('', 'tcp')).toThrow(/got 0/)
    checkPeerId('é'.repeat(128), 'tcp')
  })
})
