// Runs a TypeScript worker module: worker_threads do not take loader hooks from
// execArgv on every Node version, so the worker registers tsx itself.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.entry)
