// A production (minified) app: tabs of one profile, BroadcastChannel, a Web Locks lease, IndexedDB checkpoints.
import { NotActiveError, Understudy, type UnderstudyError } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { webLocksLease } from 'understudy-ha/adapters/web-locks'

class Tag {
  constructor(public name: string) {}
}
class Todo {
  constructor(
    public title: string,
    public tag: Tag,
  ) {}
  label(): string {
    return `${this.tag.name}: ${this.title}`
  }
}

const name = new URLSearchParams(location.search).get('name') ?? 'tab'
const ha = await Understudy.start({
  group: 'smoke',
  // Generous timings: a background tab's timers run about once a second.
  transport: broadcastChannel('smoke', { id: name, pingMs: 250, timeoutMs: 2500 }),
  lease: webLocksLease('smoke'),
  checkpoints: indexedDbCheckpoints('smoke', { database: `smoke-${name}` }),
  heartbeat: { intervalMs: 250, timeoutMs: 2500 },
  classes: { Todo, Tag },
})
const errors: string[] = []
ha.on('error', ({ error }) => errors.push(`${error.name}: ${error.message}`))
ha.on('role', ({ role }) => (document.getElementById('role')!.textContent = role))
const app = ha.register('app', { todos: [] as Todo[] })

/** What the smoke test reads and does. */
;(globalThis as unknown as { smoke: unknown }).smoke = {
  role: () => ha.role,
  /** Adds a todo; `alone`: no standby is left, so the commit does not wait for one, and the checkpoint is awaited instead. */
  async add(title: string, alone = false) {
    app.todos.push(new Todo(title, new Tag('home')))
    await ha.commit(alone ? { mode: 'async' } : { timeoutMs: 5000 })
    if (alone) await ha.checkpointed()
  },
  state() {
    let writeError = ''
    if (ha.role !== 'active') {
      try {
        app.todos.push(new Todo('not allowed', new Tag('x')))
      } catch (err) {
        writeError = `${(err as UnderstudyError).name}/${(err as UnderstudyError).code}/${err instanceof NotActiveError}`
      }
    }
    return {
      role: ha.role,
      standbys: ha.stats().standbys,
      titles: app.todos.map((t) => t.title),
      classesSurvive: app.todos.every((t) => t instanceof Todo && t.tag instanceof Tag && t.label() === `home: ${t.title}`),
      restoredSeq: ha.restored?.seq ?? -1,
      writeError,
      errors,
      // What the minifier made of the names, to show the test means something.
      minifiedNames: [Todo.name, Tag.name, NotActiveError.name],
    }
  },
}
