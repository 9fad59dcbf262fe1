/** A fresh standby says why it refuses writes: "this node is a standby" (not the graph's generic reason). */
import { expect, it } from 'vitest'
import { NotActiveError, Understudy } from 'understudy-ha'
import { MemoryNetwork } from 'understudy-ha/adapters/memory'

it('a standby that was never active refuses a commit saying it is a standby', async () => {
  const net = new MemoryNetwork()
  const b = await Understudy.start({ group: 'g', transport: net.join('b') })
  const root = b.register('app', { n: 0 })
  await expect(b.commit()).rejects.toThrow(NotActiveError)
  await expect(b.commit()).rejects.toThrow(/this node is a standby/)
  expect(() => (root.n = 1)).toThrow(/this node is a standby/)
  await b.close()
})
