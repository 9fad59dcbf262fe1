// A browser app built by a bundler: the core and the browser adapters, with the DOM lib and no Node types.
import { quickstart, Todo } from '../shared-core.js'
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { webLocksLease } from 'understudy-ha/adapters/web-locks'
import { serveWebLocksElection } from 'understudy-ha/adapters/web-locks/worker'
import { webSocket } from 'understudy-ha/adapters/websocket'

export async function start(): Promise<Understudy> {
  const ha = await Understudy.start({
    group: 'todo-app',
    transport: broadcastChannel('todo-app'),
    lease: webLocksLease('todo-app'),
    checkpoints: indexedDbCheckpoints('todo-app'),
    heartbeat: { intervalMs: 100, timeoutMs: 400 },
    classes: { Todo },
  })
  ha.on('error', ({ error }) => console.warn(error.name, error.message))
  return ha
}
export const rest = [quickstart, serveWebLocksElection, webSocket]
