/** One step of a path from a root: a property name, an array index, or a Map/Set member. */
export type PathStep = string | number | { mapKey: unknown } | { setMember: unknown }

const IDENT = /^[A-Za-z_$][\w$]*$/

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? '[…]' : '{…}'
  return String(v)
}

/** Formats a path the way a developer would write it: `app.todos[3].owner`, `app.byId.get("x")`. */
export function formatPath(root: string, steps: readonly PathStep[]): string {
  let s = root
  for (const step of steps) {
    if (typeof step === 'number') s += `[${step}]`
    else if (typeof step === 'string') s += IDENT.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`
    else if ('mapKey' in step) s += `.get(${show(step.mapKey)})`
    else s += `{member ${show(step.setMember)}}`
  }
  return s
}
