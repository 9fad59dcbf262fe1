import 'fake-indexeddb/auto'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { runCheckpointStoreContract } from 'understudy-ha/testing'

let n = 0
runCheckpointStoreContract('indexeddb (fake-indexeddb)', () => indexedDbCheckpoints(`group-${process.pid}-${++n}`))

import { describe, expect, it } from 'vitest'
import { StorageUnavailableError } from 'understudy-ha'

describe('indexeddb checkpoint store', () => {
  it('reopens a connection the browser closed and carries on', async () => {
    const s = indexedDbCheckpoints(`reopen-${process.pid}`)
    await s.save(['k'], new Uint8Array([1]))
    const db = await (s as unknown as { db: Promise<{ close(): void }> }).db
    db.close() // as a browser does to a background tab under storage pressure
    await s.save(['k'], new Uint8Array([2]))
    expect(await s.load(['k'])).toEqual(new Uint8Array([2]))
    await s.close()
  })

  it('a browser that refuses storage gives StorageUnavailableError, and a later attempt can succeed', async () => {
    const real = globalThis.indexedDB
    globalThis.indexedDB = {
      open() {
        throw Object.assign(new Error('The user denied permission to access the database.'), { name: 'SecurityError' })
      },
    } as unknown as IDBFactory
    const s = indexedDbCheckpoints(`denied-${process.pid}`)
    try {
      await expect(s.load(['k'])).rejects.toBeInstanceOf(StorageUnavailableError)
      await expect(s.load(['k'])).rejects.toThrow(/durable storage is unavailable; replication continues/)
    } finally {
      globalThis.indexedDB = real
    }
    expect(await s.load(['k'])).toBeUndefined()
    await s.close()
  })
})
