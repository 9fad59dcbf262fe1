/**
 * Reachability in a node's replication table: how each object is reached from
 * the roots, paths for error messages and leak reports, and the objects no
 * root reaches any more. Run to word errors, report leaks and sweep.
 */
import type { Node } from './nodes/index.js'
import { proxyNodes } from './nodes/index.js'
import { formatPath, type PathStep } from './path.js'
import type { GraphState } from './state.js'
import { forEachChild, isObject } from './walk.js'

/**
 * Breadth-first from the roots: how each reachable node is reached (its
 * holder and the step from it; a root maps to `[null, its name]`). Stops
 * once `until` is reached. Run only to word errors and leak reports.
 */
export function reach(g: GraphState, until?: Node): Map<Node, [Node | null, PathStep]> {
  const via = new Map<Node, [Node | null, PathStep]>()
  const queue: Node[] = []
  for (const roots of [g.roots, g.pending])
    for (const [name, r] of roots)
      if (!via.has(r)) {
        via.set(r, [null, name])
        queue.push(r)
      }
  const noFail = (): never => undefined as never
  for (let i = 0; i < queue.length && !(until && via.has(until)); i++) {
    const from = queue[i] as Node
    forEachChild(from.target, from.kind, (v, step) => {
      const c = isObject(v) ? g.nodes.get(v) : undefined
      if (c && !via.has(c)) {
        via.set(c, [from, step])
        queue.push(c)
      }
    }, noFail)
  }
  return via
}

/** Root name and steps of a node `via` reaches. */
export function stepsVia(via: Map<Node, [Node | null, PathStep]>, node: Node): [string, PathStep[]] {
  const steps: PathStep[] = []
  let n = node
  for (;;) {
    const [holder, step] = via.get(n) as [Node | null, PathStep]
    if (!holder) return [String(step), steps.reverse()]
    steps.push(step)
    n = holder
  }
}

/**
 * Path of a node from a root, e.g. `app.todos[3]`: the shortest one in the
 * live graph, or where it was last reachable when no root reaches it (see
 * {@link detachedPaths}).
 */
export function pathOf(g: GraphState, node: Node, extra: readonly PathStep[] = []): string {
  const via = reach(g, node)
  if (!via.has(node)) return detachedPaths(g, [node], extra, via)[0] as string
  const [root, steps] = stepsVia(via, node)
  return formatPath(root, [...steps, ...extra])
}

/**
 * Where objects no root reaches were last reachable:
 * `(detached, was app.todos[3].owner)`. An object that lost a reference
 * since the last sweep remembers the holder and step it lost (see
 * {@link Graph.dropped}); objects inside it are placed from there, and a
 * replaced root by its name. A standby records the drops it applies the
 * same way (in the order the changes arrive, so a move within one batch can
 * leave it a step behind). What cannot be placed (past the memory cap, or
 * dropped by a write that bypassed the proxies) is `(detached object)`.
 */
export function detachedPaths(g: GraphState, nodes: readonly Node[], extra: readonly PathStep[] = [], via = reach(g)): string[] {
  const placed = new Map<Node, [string, PathStep[]]>()
  const place = (n: Node, depth: number): [string, PathStep[]] | undefined => {
    if (via.has(n)) return stepsVia(via, n)
    const known = placed.get(n)
    if (known || depth > 64) return known
    const held = g.lastHeld.get(n)
    const from = held && place(held[0], depth + 1)
    let p: [string, PathStep[]] | undefined
    if (from) p = [from[0], [...from[1], (held as [Node, PathStep])[1]]]
    else {
      const name = n.rootName
      if (name !== undefined) p = [name, []]
    }
    if (p) placed.set(n, p)
    return p
  }
  for (const head of g.lastHeld.keys()) place(head, 0)
  for (const n of nodes) place(n, 0)
  // Spread from the placed nodes into what they hold that nothing placed yet.
  const queue = [...placed.keys()]
  const noFail = (): never => undefined as never
  for (let i = 0; i < queue.length; i++) {
    const from = queue[i] as Node
    const [root, steps] = placed.get(from) as [string, PathStep[]]
    forEachChild(from.target, from.kind, (v, step) => {
      const c = isObject(v) ? g.nodes.get(v) : undefined
      if (c && c.id >= 0 && !via.has(c) && !placed.has(c)) {
        placed.set(c, [root, [...steps, step]])
        queue.push(c)
      }
    }, noFail)
  }
  return nodes.map((n) => {
    const p = placed.get(n)
    return p ? formatPath(`(detached, was ${p[0]}`, [...p[1], ...extra]) + ')' : formatPath('(detached object)', [...extra])
  })
}

/**
 * Tracked objects that no root reaches any more: a mark from the roots, then
 * one pass over the table that collects the unmarked and clears the marks
 * (so a mark is one bit, not a per-node sweep counter).
 */
export function unreachable(g: GraphState): Node[] {
  const stack: Node[] = []
  const reach = (c: Node): void => {
    if (c.id >= 0 && !c.marked) {
      c.marked = true
      stack.push(c)
    }
  }
  const out: Node[] = []
  try {
    for (const n of g.roots.values()) reach(n)
    const visit = (v: unknown): void => {
      if (typeof v !== 'object' || v === null) return
      let c = g.nodes.get(v)
      if (c === undefined) {
        const p = proxyNodes.get(v)
        if (p && p.graph === (g as unknown)) c = p
      }
      if (c !== undefined) reach(c)
    }
    while (stack.length) (stack.pop() as Node).children(visit)
  } finally {
    g.byId.forEach((n) => {
      if (n.marked) n.marked = false
      else out.push(n)
    })
  }
  return out
}
