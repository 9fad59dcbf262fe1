// A fresh Node ESM project: the quick start, from the installed tarball.
import assert from 'node:assert/strict'
import { NotActiveError, Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'

class Todo {
  constructor(title) {
    this.title = title
    this.done = false
  }
}

const [a, b] = memoryPair()
const active = await Understudy.start({ group: 'todo-app', transport: a, role: 'active', classes: { Todo } })
const standby = await Understudy.start({ group: 'todo-app', transport: b, classes: { Todo } })
const state = active.register('app', { todos: [] })
state.todos.push(new Todo('write tests'))
await active.commit()
const mirror = standby.register('app', { todos: [] })
assert.ok(mirror.todos[0] instanceof Todo)
assert.throws(() => (mirror.todos[0].done = true), (err) => err instanceof NotActiveError && err.name === 'NotActiveError' && err.code === 'NOT_ACTIVE')
await active.close()
standby.promote()
mirror.todos[0].done = true
assert.equal(standby.role, 'active')
await standby.close()
console.log('node ESM: ok')
