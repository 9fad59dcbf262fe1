/**
 * One contender for a file lease in its own process: an `Elector` with
 * I = 50 ms, T = 200 ms over `fileLease(path)`. argv: lease file, id, busy ms.
 * Every change the store makes spins for `busy` ms between deciding and
 * writing, so that a SIGSTOP often lands there. Reports over IPC:
 * `{ op: 'start' | 'commit' | 'end' }` around every store change,
 * `{ grant: { holder, epoch, lastSeen }, at }` for every row the store granted
 * this process, and `{ elected }` / `{ demoted }` / `{ error }`.
 */
import { Elector, realClock, type LeaseRow, type LeaseStore } from 'understudy-ha'
import { fileLease } from 'understudy-ha/adapters/file-lease'

const [path, id, busy] = process.argv.slice(2) as [string, string, string]
const busyMs = Number(busy)
const send = (m: object) => process.send?.(m)

const file = fileLease(path, {
  // Ignored by a store without a lock; a store with one breaks it when this old.
  lockStaleMs: 300,
  beforeCommit: () => {
    send({ op: 'commit' })
    const until = Date.now() + busyMs
    while (Date.now() < until) {
      /* decided, not yet written */
    }
  },
})

const store: LeaseStore = {
  now: () => file.now(),
  read: (role) => file.read(role),
  getPrimary: (role, t) => file.getPrimary(role, t),
  release: (uuid, role) => file.release(uuid, role),
  clear: () => file.clear(),
  async updateHeartbeat(uuid: string, role: string, seen: LeaseRow | undefined, t: number) {
    send({ op: 'start' })
    try {
      const row = await file.updateHeartbeat(uuid, role, seen, t)
      if (row) send({ grant: { holder: row.holder, epoch: row.epoch, lastSeen: row.lastSeen }, at: Date.now() })
      return row
    } finally {
      send({ op: 'end' })
    }
  },
}

const elector = new Elector(id, 'primary', store, realClock, { intervalMs: 50, timeoutMs: 200 }, {
  elected: (epoch) => send({ elected: epoch, at: Date.now() }),
  demoted: (why) => send({ demoted: why, at: Date.now() }),
  error: (err) => send({ error: String(err) }),
})
elector.start()
process.on('disconnect', () => process.exit(0))
send({ ready: true })
