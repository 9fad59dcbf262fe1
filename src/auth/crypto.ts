/**
 * The few primitives group authentication needs — HMAC-SHA-256 and
 * AES-256-GCM — behind one small interface, so the protocol in this folder runs
 * on WebCrypto (`crypto.subtle`: browsers, workers, edge runtimes, Node) and,
 * where it is much faster, on `node:crypto` (`understudy-ha/adapters/node-crypto`).
 *
 * Results may be promises (WebCrypto) or plain values (`node:crypto`, which is
 * synchronous and ~20× cheaper per small frame than a WebCrypto call in Node);
 * callers handle both and keep frame order either way.
 */

import { ConfigError } from '../errors.js'

/** A result now or later. */
export type Maybe<T> = T | Promise<T>

/** The primitives the handshake and the sessions use. Keys are opaque to the protocol. */
export interface AuthCrypto {
  /** A name for messages and benchmarks, e.g. `'webcrypto'`. */
  readonly name: string
  /** Prepares raw key bytes (32 for sessions) for HMAC-SHA-256 or AES-256-GCM. */
  importKey(raw: Uint8Array, use: 'hmac' | 'aes-gcm'): Maybe<unknown>
  /** HMAC-SHA-256 over the concatenation of `parts` (32 bytes). */
  hmac(key: unknown, parts: readonly Uint8Array[]): Maybe<Uint8Array>
  /** AES-256-GCM: ciphertext followed by the 16-byte tag. `iv` is 12 bytes. */
  encrypt(key: unknown, iv: Uint8Array, aad: Uint8Array, data: Uint8Array): Maybe<Uint8Array>
  /** Reverses {@link encrypt}; throws (or rejects) when the tag does not verify. */
  decrypt(key: unknown, iv: Uint8Array, aad: Uint8Array, data: Uint8Array): Maybe<Uint8Array>
  /** Fills `out` with cryptographically strong random bytes. */
  random(out: Uint8Array): Uint8Array
  /** PBKDF2-HMAC-SHA-256 of `secret` (32 bytes): stretches a group key once, so guessing a weak one offline is slow. */
  pbkdf2(secret: Uint8Array, salt: Uint8Array, iterations: number): Promise<Uint8Array>
}

interface Subtle {
  importKey(format: 'raw', key: Uint8Array, algorithm: object | string, extractable: boolean, usages: string[]): Promise<unknown>
  deriveBits(algorithm: object, key: unknown, length: number): Promise<ArrayBuffer>
  sign(algorithm: string, key: unknown, data: Uint8Array): Promise<ArrayBuffer>
  encrypt(algorithm: object, key: unknown, data: Uint8Array): Promise<ArrayBuffer>
  decrypt(algorithm: object, key: unknown, data: Uint8Array): Promise<ArrayBuffer>
}
interface WebCryptoGlobal {
  subtle?: Subtle
  getRandomValues<T extends Uint8Array>(array: T): T
}

function globalCrypto(): WebCryptoGlobal {
  const c = (globalThis as { crypto?: WebCryptoGlobal }).crypto
  if (!c?.subtle || typeof c.getRandomValues !== 'function')
    throw new ConfigError('group authentication needs WebCrypto (globalThis.crypto.subtle); this runtime has none — on Node, pass `crypto: nodeCrypto` from understudy-ha/adapters/node-crypto')
  return c
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** The primitives on WebCrypto (`globalThis.crypto.subtle`), available in browsers, workers, edge runtimes and Node. */
export const webCrypto: AuthCrypto = {
  name: 'webcrypto',
  importKey(raw, use) {
    const subtle = globalCrypto().subtle as Subtle
    return use === 'hmac'
      ? subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
      : subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt'])
  },
  async hmac(key, parts) {
    return new Uint8Array(await (globalCrypto().subtle as Subtle).sign('HMAC', key, concat(parts)))
  },
  async encrypt(key, iv, aad, data) {
    return new Uint8Array(await (globalCrypto().subtle as Subtle).encrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, key, data))
  },
  async decrypt(key, iv, aad, data) {
    return new Uint8Array(await (globalCrypto().subtle as Subtle).decrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, key, data))
  },
  random(out) {
    return globalCrypto().getRandomValues(out)
  },
  async pbkdf2(secret, salt, iterations) {
    const subtle = globalCrypto().subtle as Subtle
    const base = await subtle.importKey('raw', secret, 'PBKDF2', false, ['deriveBits'])
    return new Uint8Array(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, 256))
  },
}

/** Compares two byte strings in time that depends only on their lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}

/** Applies `f` to a value now or later, staying synchronous when `v` is. */
export function andThen<T, U>(v: Maybe<T>, f: (t: T) => Maybe<U>): Maybe<U> {
  return v instanceof Promise ? v.then(f) : f(v)
}
