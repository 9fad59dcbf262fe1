import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryCheckpointStore } from 'understudy-ha'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { runCheckpointStoreContract } from 'understudy-ha/testing'

runCheckpointStoreContract('memory', () => new MemoryCheckpointStore())
runCheckpointStoreContract('fs', async () => fsCheckpoints(join(await mkdtemp(join(tmpdir(), 'understudy-ckpt-')), 'store'), { concurrency: 4 }))
