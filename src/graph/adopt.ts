/** Taking a new value into a node's replication table: validate everything it reaches, then give each new object an id. */
import { UnsupportedValueError } from '../errors.js'
import { classify, describeUnsupported } from './kinds.js'
import { makeNode, proxyNodes, type Node } from './nodes/index.js'
import { formatPath, type PathStep } from './path.js'
import { pathOf } from './reach.js'
import type { GraphState } from './state.js'
import { forEachChild, isObject, replaceChild } from './walk.js'
import type { Kind } from './wire.js'

interface Found {
  kind: Kind
  tag: string | undefined
  /** Index (in the walk) of the object that holds it; -1 for the value itself. */
  from: number
  step: PathStep | undefined
}

/**
 * Walks the untracked objects reachable from `raw`, validating each; then
 * (when `attach`) gives each an id. Tracked objects end the walk: they are
 * shared references, not new content.
 */
export function adopt(g: GraphState, raw: object, parent: Node | null, step: PathStep | undefined, rootName: string | undefined, attach: boolean): void {
  const list: object[] = [raw]
  const seen = new Map<object, Found>()
  const fix: [holder: object, kind: Kind, step: PathStep, raw: object][] = []
  const root = classify(raw, g.classes)
  const fail = (i: number, childStep: PathStep | undefined, v: unknown): never => {
    const steps: PathStep[] = childStep === undefined ? [] : [childStep]
    for (let k = i; k > 0; ) {
      const f = seen.get(list[k] as object) as Found
      if (f.step !== undefined) steps.push(f.step)
      k = f.from
    }
    if (step !== undefined) steps.push(step)
    steps.reverse()
    const frozen = isObject(v) && classify(v, g.classes) !== undefined
    const { what, hint } = frozen
      ? { what: 'a frozen or sealed object', hint: 'Frozen objects cannot be tracked: assign a copy ({ ...value }).' }
      : describeUnsupported(v)
    const path = rootName !== undefined ? formatPath(rootName, steps) : parent ? pathOf(g, parent, steps) : formatPath('(value)', steps)
    throw new UnsupportedValueError(path, what, hint)
  }
  if (!root || !Object.isExtensible(raw)) fail(0, undefined, raw)
  seen.set(raw, { kind: (root as { kind: Kind }).kind, tag: root?.tag, from: -1, step })
  for (let i = 0; i < list.length; i++) {
    const o = list[i] as object
    const { kind } = seen.get(o) as Found
    const visit = (v: unknown, s: PathStep): void => {
      if (typeof v !== 'object' || v === null) {
        if (typeof v === 'function' || typeof v === 'symbol') fail(i, s, v)
        return
      }
      const p = proxyNodes.get(v)
      let r = v
      if (p && p.graph === (g as unknown)) {
        r = p.target
        fix.push([o, kind, s, r])
      }
      const n = g.nodes.get(r)
      if ((n !== undefined && n.id >= 0) || seen.has(r)) return
      const c = classify(r, g.classes)
      if (!c || !Object.isExtensible(r)) fail(i, s, r)
      seen.set(r, { kind: c!.kind, tag: c!.tag, from: i, step: s })
      list.push(r)
    }
    forEachChild(o, kind, visit, (s, v) => fail(i, s, v))
  }
  for (const [holder, kind, s, r] of fix) replaceChild(holder, kind, s, r, g)
  if (!attach) return
  for (let i = 0; i < list.length; i++) {
    const o = list[i] as object
    const f = seen.get(o) as Found
    let node = g.nodes.get(o)
    if (!node) {
      node = makeNode(g.typeOf(f.kind, f.tag), o)
      g.nodes.set(o, node)
    }
    node.id = g.nextId++
    node.clearChanges()
    g.byId.set(node.id, node)
    node.fresh = true
    g.fresh.push(node)
  }
}