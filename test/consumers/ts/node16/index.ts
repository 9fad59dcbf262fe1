import { quickstart } from '../shared-core.js'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { webLocksLease, webWorkerElection } from 'understudy-ha/adapters/web-locks'
import { webSocket } from 'understudy-ha/adapters/websocket'
import { webSocketServer } from 'understudy-ha/adapters/websocket/server'
import { tcp } from 'understudy-ha/adapters/tcp'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { workerElection } from 'understudy-ha/adapters/worker-election'
import { supervise } from 'understudy-ha/adapters/supervisor'
import { runTransportContract, runLeaseStoreContract, runCheckpointStoreContract, MemoryNetwork } from 'understudy-ha/testing'

export const all = [quickstart, broadcastChannel, indexedDbCheckpoints, webLocksLease, webWorkerElection, webSocket, webSocketServer, tcp, fsCheckpoints, fileLease, workerElection, supervise]
export const testing = [runTransportContract, runLeaseStoreContract, runCheckpointStoreContract, MemoryNetwork]
