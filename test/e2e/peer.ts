/**
 * A standby in its own Node process, for end-to-end tests over real sockets.
 * argv: `tcp <port>` or `websocket <url>`. Answers IPC messages:
 * `{ cmd: 'dump' }` → `{ dump, stats }`, `{ cmd: 'exit' }` → closes and exits.
 */
import { Understudy } from 'understudy-ha'
import { TEST_KEY } from '../support/group-key.js'
import { tcp } from 'understudy-ha/adapters/tcp'
import { webSocket } from 'understudy-ha/adapters/websocket'
import { nodeCrypto } from 'understudy-ha/adapters/node-crypto'
import { canonicalDump } from '../support/dump.js'
import { Point } from '../support/ops.js'

const [kind, address] = process.argv.slice(2)
const transport = kind === 'tcp' ? tcp({ key: TEST_KEY, id: 'standby', connect: { port: Number(address) } }) : webSocket(address as string, { key: TEST_KEY, crypto: nodeCrypto, id: 'standby' })
const ha = await Understudy.start({ group: 'e2e', transport, classes: { Point } })
ha.register('app', {})
ha.on('error', (e) => process.send?.({ error: String(e.error) }))
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'dump') process.send?.({ dump: canonicalDump(ha.root('app')), stats: ha.stats() })
  if (m.cmd === 'exit') void ha.close().then(() => process.exit(0))
})
process.send?.({ ready: true })
