/**
 * TCP over TLS (`tls` option, node:tls), composed with the group key: a
 * certificate made for this test (openssl, into a temporary folder), a client
 * that trusts it, and one that does not.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tcp } from 'understudy-ha/adapters/tcp'
import { Recorder } from 'understudy-ha/testing'
import { TEST_KEY } from './support/group-key.js'

const dir = mkdtempSync(join(tmpdir(), 'understudy-tls-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
const key = readFileSync(join(dir, 'key.pem'))
const cert = readFileSync(join(dir, 'cert.pem'))

describe('tcp over TLS', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a client that trusts the certificate and holds the group key exchanges frames', async () => {
    const a = tcp({ key: TEST_KEY, id: 'a', listen: { port: 0 }, tls: { server: { key, cert } } })
    const ra = new Recorder()
    await a.open(ra)
    const b = tcp({ key: TEST_KEY, id: 'b', connect: { port: a.port as number }, tls: { client: { ca: cert } } })
    const rb = new Recorder()
    await b.open(rb)
    try {
      await ra.until(() => ra.ups.includes('b'), 'a sees b')
      await rb.until(() => rb.ups.includes('a'), 'b sees a')
      await b.send(new TextEncoder().encode('over tls'), 'a')
      await ra.until(() => ra.messages.some((m) => new TextDecoder().decode(m.data) === 'over tls'), 'the frame arrives')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a client that does not trust the certificate never becomes a peer', async () => {
    const a = tcp({ key: TEST_KEY, id: 'a', listen: { port: 0 }, tls: { server: { key, cert } } })
    const ra = new Recorder()
    await a.open(ra)
    const b = tcp({ key: TEST_KEY, id: 'b', connect: { port: a.port as number }, tls: { client: {} }, backoff: { initialMs: 20, maxMs: 50 } })
    const rb = new Recorder()
    await b.open(rb)
    try {
      await new Promise((r) => setTimeout(r, 300))
      expect(ra.ups).toEqual([])
      expect(rb.ups).toEqual([])
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})
