/**
 * Saves checkpoints in a loop until killed: each value is `seq` followed by
 * filler whose length and content derive from seq, so a torn write is
 * detectable. Reports `{ saved: seq }` after each save resolves.
 */
import { fsCheckpoints } from 'understudy-ha/adapters/fs'

const [root] = process.argv.slice(2) as [string]
const store = fsCheckpoints(root)
for (let seq = 1; ; seq++) {
  const size = 1000 + ((seq * 7919) % 200_000)
  const value = new Uint8Array(size)
  new DataView(value.buffer).setUint32(0, seq)
  for (let i = 4; i < size; i++) value[i] = (seq + i) & 255
  await store.save(['counter'], value)
  process.send?.({ saved: seq })
}
