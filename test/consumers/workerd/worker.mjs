// A Cloudflare Worker (workerd): the core and the memory transport, in one request.
import { NotActiveError, Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'

class Todo {
  constructor(title) {
    this.title = title
    this.done = false
  }
}

export default {
  async fetch() {
    const [a, b] = memoryPair()
    const active = await Understudy.start({ group: 'edge', transport: a, role: 'active', classes: { Todo } })
    const standby = await Understudy.start({ group: 'edge', transport: b, classes: { Todo } })
    const state = active.register('app', { todos: [] })
    for (let i = 0; i < 3; i++) state.todos.push(new Todo(`todo ${i}`))
    await active.commit()
    const mirror = standby.register('app', { todos: [] })
    let errorName = ''
    try {
      mirror.todos[0].done = true
    } catch (err) {
      errorName = err instanceof NotActiveError ? err.name : `unexpected ${err}`
    }
    await active.close()
    standby.promote()
    mirror.todos[0].done = true // writable now, through the same references
    await standby.commit({ mode: 'async' }) // no standby is left to wait for
    const result = {
      role: standby.role,
      epoch: standby.epoch,
      todos: mirror.todos.length,
      instances: mirror.todos.every((t) => t instanceof Todo),
      done: mirror.todos[0].done,
      errorName,
    }
    await standby.close()
    return Response.json(result)
  },
}
