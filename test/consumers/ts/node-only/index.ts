// A Node service: no DOM lib. The core and the Node adapters must compile here.
import { quickstart } from '../shared-core.js'
import { tcp } from 'understudy-ha/adapters/tcp'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { workerElection } from 'understudy-ha/adapters/worker-election'
import { supervise } from 'understudy-ha/adapters/supervisor'
import { webSocketServer } from 'understudy-ha/adapters/websocket/server'
import { MemoryNetwork } from 'understudy-ha/testing'

export const all = [quickstart, tcp, fsCheckpoints, fileLease, workerElection, supervise, webSocketServer, MemoryNetwork]
