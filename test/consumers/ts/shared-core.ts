// Compiled by every TypeScript consumer project: the core's types, strictly.
import { Understudy, NotActiveError, UnderstudyError, seededRandom, type ClassList, type Transport } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'

export class Todo {
  static readonly typeName = 'Todo'
  constructor(
    public title: string,
    public done = false,
  ) {}
}

export const classes: ClassList = { Todo }
export const named: ClassList = [Todo]

export async function quickstart(transport?: Transport): Promise<boolean> {
  const [a, b] = memoryPair()
  const active = await Understudy.start({ group: 'g', transport: transport ?? a, role: 'active', classes })
  const state = active.register('app', { todos: [] as Todo[] })
  state.todos.push(new Todo(`t${seededRandom(1)()}`))
  await active.commit()
  void b
  try {
    state.todos[0]!.done = true
  } catch (err) {
    if (err instanceof NotActiveError) return false
    if (err instanceof UnderstudyError) return err.code === 'NOT_ACTIVE'
  }
  await active.close()
  return true
}
