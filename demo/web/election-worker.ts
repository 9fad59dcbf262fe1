// The module worker each pane starts: the heartbeat and the Web Locks lease live here,
// so a throttled or hung main thread cannot keep a dead active in office.
import { serveWebLocksElection } from 'understudy-ha/adapters/web-locks/worker'

serveWebLocksElection()
