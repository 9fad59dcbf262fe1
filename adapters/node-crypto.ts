/**
 * Group authentication's primitives on `node:crypto`: synchronous, and about
 * twenty times cheaper per small frame than a WebCrypto call in Node (which
 * hops to the thread pool). The TCP transport and the WebSocket server use it
 * by default; pass it as `crypto` to the WebSocket client when it runs in Node.
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2, randomFillSync } from 'node:crypto'
import { AuthError, type AuthCrypto } from '../src/index.js'

/** A plain Uint8Array view of a Buffer's bytes (no copy), like WebCrypto returns. */
const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length)

export const nodeCrypto: AuthCrypto = {
  name: 'node:crypto',
  importKey: (raw) => Buffer.from(raw),
  hmac(key, parts) {
    const h = createHmac('sha256', key as Buffer)
    for (const p of parts) h.update(p)
    return view(h.digest())
  },
  encrypt(key, iv, aad, data) {
    const c = createCipheriv('aes-256-gcm', key as Buffer, iv)
    c.setAAD(aad)
    const head = c.update(data)
    c.final()
    return view(Buffer.concat([head, c.getAuthTag()]))
  },
  decrypt(key, iv, aad, data) {
    if (data.length < 16) throw new AuthError('TAMPERED', `an encrypted message of ${data.length} bytes is shorter than its tag`)
    const d = createDecipheriv('aes-256-gcm', key as Buffer, iv)
    d.setAAD(aad)
    d.setAuthTag(data.subarray(data.length - 16))
    const out = d.update(data.subarray(0, data.length - 16))
    d.final()
    return view(out)
  },
  random: (out) => randomFillSync(out),
  pbkdf2: (secret, salt, iterations) =>
    new Promise((resolve, reject) => pbkdf2(secret, salt, iterations, 32, 'sha256', (err, key) => (err ? reject(new AuthError('MALFORMED', `pbkdf2 failed: ${err.message}`)) : resolve(view(key))))),
}
