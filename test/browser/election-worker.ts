// The module worker a page starts for webWorkerElection.
import { serveWebLocksElection } from 'understudy-ha/adapters/web-locks/worker'

serveWebLocksElection()
