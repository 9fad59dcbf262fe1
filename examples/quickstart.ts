import { Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'

class Todo {
  constructor(
    public title: string,
    public done = false,
  ) {}
}

// Two nodes in one process, joined by the in-memory transport.
const [a, b] = memoryPair()
const active = await Understudy.start({ group: 'todo-app', transport: a, role: 'active', classes: { Todo } })
const standby = await Understudy.start({ group: 'todo-app', transport: b, classes: { Todo } })

const state = active.register('app', { todos: [] as Todo[] })
state.todos.push(new Todo('write tests')) // tracked; no serializer code
await active.commit() // resolves once the standby has applied it

const mirror = standby.register('app', { todos: [] as Todo[] }) // the live, read-only mirror
console.log('standby sees:', mirror.todos[0] instanceof Todo, mirror.todos[0]?.title)

await active.close() // the active goes away…
standby.promote() // …and the standby takes over, with the same objects
mirror.todos[0]!.done = true
console.log('now', standby.role, 'at epoch', standby.epoch, '- done:', mirror.todos[0]?.done)
await standby.close()
