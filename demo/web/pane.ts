/**
 * One node of the web demo: BroadcastChannel transport, election in a worker
 * over a Web Locks lease, IndexedDB checkpoints, and a todo app whose tags are
 * shared objects. `window.demo` exposes its state to the end-to-end tests.
 */
import { Understudy, type Role } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { webWorkerElection } from 'understudy-ha/adapters/web-locks'

export class Tag {
  constructor(
    public name: string,
    public color: string,
  ) {}
}

export class Todo {
  constructor(
    public title: string,
    public tags: Tag[],
    public done = false,
  ) {}
}

interface App {
  todos: Todo[]
  tags: Map<string, Tag>
}

const GROUP = 'understudy-demo'
const params = new URLSearchParams(location.search)

/**
 * A tab's name is the lowest slot no open tab holds (a Web Lock held for the
 * page's lifetime), so names — and the IndexedDB database named after each —
 * are reused: open a tab after closing every tab and it is `tab-1` again,
 * restoring `tab-1`'s checkpoint, instead of starting empty under a new random
 * name and leaving the old database behind. (A random name per tab is the
 * mistake to avoid when copying this: each run would orphan a database.)
 */
async function claimSlot(): Promise<string> {
  for (let slot = 1; ; slot++) {
    const held = await new Promise<boolean>((resolve) => {
      void navigator.locks.request(`${GROUP}-slot-${slot}`, { ifAvailable: true }, (lock) => {
        resolve(lock !== null)
        return lock ? new Promise<void>(() => undefined) : undefined // held until the page goes away
      })
    })
    if (held) return `tab-${slot}`
  }
}
// Panes of the two-pane view are named by their iframe (left, right); tabs claim a slot.
const name = params.get('name') ?? (await claimSlot())
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
$('name').textContent = name
document.title = `${name} — Understudy`

/** Demo-level messages between panes: when a crash or hang began, so the survivor can time its takeover. */
const ui = new BroadcastChannel(`${GROUP}-ui`)
let failureAt: { what: string; at: number } | undefined
ui.onmessage = (e: MessageEvent<{ what: string; at: number }>) => (failureAt = e.data)

const marks: { at: number; kind: 'batch' | 'beat' | 'role' }[] = []
const log = (text: string) => {
  const el = $('log')
  el.textContent = `${new Date().toISOString().slice(11, 23)}  ${text}\n${el.textContent ?? ''}`.slice(0, 8000)
}

const ha = await Understudy.start({
  group: GROUP,
  transport: broadcastChannel(GROUP, { id: name, pingMs: 250, timeoutMs: 1000 }),
  election: webWorkerElection({ worker: () => new Worker(new URL('./election-worker.ts', import.meta.url), { type: 'module' }) }),
  heartbeat: { intervalMs: 100, timeoutMs: 400 },
  checkpoints: indexedDbCheckpoints(GROUP, { database: `${GROUP}-${name}` }), // one database per node name, reused by the next tab of that name
  classes: { Tag, Todo },
})
if ((ha.restored?.seq ?? -1) >= 0) log(`restored from IndexedDB: seq ${ha.restored?.seq} of epoch ${ha.restored?.epoch}`)

const app = ha.register<App>('app', { todos: [], tags: new Map() })
let committed: string[] = []
let failoverMs: number | undefined

ha.on('role', ({ role, epoch }) => {
  marks.push({ at: Date.now(), kind: 'role' })
  log(`role → ${role} (epoch ${epoch})`)
  if (role === 'active') {
    seedTags()
    if (failureAt) {
      failoverMs = Date.now() - failureAt.at
      const el = $('failover')
      el.textContent = `Took over ${failoverMs} ms after the active's ${failureAt.what}.`
      el.style.display = 'block'
      failureAt = undefined
    }
  }
  render()
})
ha.on('heartbeat', () => marks.push({ at: Date.now(), kind: 'beat' }))
ha.on('change', ({ snapshot, seq }) => {
  marks.push({ at: Date.now(), kind: 'batch' })
  if (snapshot) log(`synced from the active (snapshot at seq ${seq})`)
  render()
})
ha.on('peer', ({ peer, up, role }) => log(up ? `peer ${peer} joined (${role})` : `peer ${peer} left${role === 'active' ? ': it was the active' : ''}`))
ha.on('error', ({ error }) => log(`error: ${error.message}`))

/** The active makes sure the shared tags exist. */
function seedTags(): void {
  for (const [tag, color] of [['home', '#8a4fbf'], ['work', '#2f6fb3'], ['urgent', '#c0392b']] as const)
    if (!app.tags.has(tag)) app.tags.set(tag, new Tag(tag, color))
}

/** Commits (sync: every standby in sync has it when this resolves; a lone tab's commit resolves at once) and records what is acknowledged. */
async function commit(): Promise<void> {
  marks.push({ at: Date.now(), kind: 'batch' })
  try {
    await ha.commit()
    committed = app.todos.map((t) => t.title)
  } catch (err) {
    log(`commit: ${(err as Error).message}`)
  }
  render()
}

$('add').addEventListener('submit', (e) => {
  e.preventDefault()
  const input = $<HTMLInputElement>('title')
  const title = input.value.trim()
  if (!title || ha.role !== 'active') return
  const tag = app.tags.get($<HTMLSelectElement>('tag').value)
  app.todos.push(new Todo(title, tag ? [tag] : []))
  input.value = ''
  void commit()
})
$('todos').addEventListener('click', (e) => {
  const target = e.target as HTMLElement
  const i = Number(target.closest('li')?.dataset.i)
  const todo = app.todos[i]
  if (!todo || ha.role !== 'active') return
  if (target.dataset.act === 'toggle') todo.done = !todo.done
  if (target.dataset.act === 'delete') app.todos.splice(i, 1)
  void commit()
})
$('tags').addEventListener('click', (e) => {
  const tag = app.tags.get((e.target as HTMLElement).dataset.tag ?? '')
  if (!tag || ha.role !== 'active') return
  tag.color = `hsl(${Math.floor(Math.random() * 360)} 60% 42%)` // one shared object: every todo with this tag changes
  void commit()
})
$('crash').addEventListener('click', () => void crash())
$('hang').addEventListener('click', () => hang(3000))
$('handover').addEventListener('click', () => void handover())
$('reload').addEventListener('click', () => location.reload())

/** Stops this node as a crash would: the worker and the channel close abruptly, no goodbye, no lease release. */
async function crash(): Promise<void> {
  if (ha.role !== 'active') return
  ui.postMessage({ what: 'crash', at: Date.now() })
  log('crash: stopping without a goodbye')
  await ha.abort()
  render()
}

/** Busy-loops the main thread: the worker's heartbeat stops hearing from it and gives the lease up. */
function hang(ms: number): void {
  if (ha.role !== 'active') return
  ui.postMessage({ what: 'hang', at: Date.now() })
  const until = Date.now() + ms
  while (Date.now() < until) {
    /* hung */
  }
  log(`woke up after a ${ms} ms hang, as ${ha.role}`)
}

async function handover(): Promise<void> {
  if (ha.role !== 'active') return
  try {
    const r = await ha.handover()
    const el = $('failover')
    el.textContent = `Handed over to ${r.to} (epoch ${r.epoch}): write blackout ${r.blackoutMs.toFixed(1)} ms.`
    el.style.display = 'block'
    log(`handover to ${r.to}: blackout ${r.blackoutMs.toFixed(2)} ms`)
  } catch (err) {
    log(`handover: ${(err as Error).message}`)
  }
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

function render(): void {
  const role: Role = ha.role
  const s = ha.stats()
  const badge = $('role')
  badge.textContent = role === 'stopped' ? 'stopped (crashed)' : role
  badge.className = `badge ${role}`
  // A stopped node keeps showing where it was; before any batch there is no seq to show.
  if (role !== 'stopped') {
    $('epoch').textContent = s.epoch > 0 ? String(s.epoch) : '–'
    $('seq').textContent = s.seq >= 0 ? String(s.seq) : 'none yet'
  }
  $('lag').textContent =
    role === 'active'
      ? s.standbys
        ? `standbys ${s.standbys} · replication lag ${s.unackedSeq} batch${s.unackedSeq === 1 ? '' : 'es'}`
        : 'no standby: changes live in this tab and its IndexedDB only (open another tab)'
      : role === 'standby'
        ? `following the active, ${s.snapshots} snapshot${s.snapshots === 1 ? '' : 's'} applied`
        : ''
  $<HTMLFieldSetElement>('app').disabled = role !== 'active'
  for (const id of ['crash', 'hang', 'handover']) $<HTMLButtonElement>(id).disabled = role !== 'active'
  const tags = [...app.tags.values()]
  const select = $<HTMLSelectElement>('tag')
  if (select.options.length !== tags.length) select.innerHTML = tags.map((t) => `<option>${esc(t.name)}</option>`).join('')
  $('todos').innerHTML = app.todos
    .map(
      (t, i) =>
        `<li data-i="${i}" class="${t.done ? 'done' : ''}"><input type="checkbox" data-act="toggle" ${t.done ? 'checked' : ''}>` +
        `<span class="title">${esc(t.title)}</span>${t.tags.map((g) => `<span class="tag" style="background:${esc(g.color)}">${esc(g.name)}</span>`).join('')}` +
        `<button data-act="delete" title="delete">×</button></li>`,
    )
    .join('')
  $('tags').innerHTML = tags.length
    ? `Recolor a tag: ${tags.map((g) => `<button class="tag" data-tag="${esc(g.name)}" style="background:${esc(g.color)}">${esc(g.name)}</button>`).join(' ')}`
    : ''
}

/** The timeline strip: the last 10 s of heartbeats, batches and role changes. */
function drawTimeline(): void {
  const canvas = $<HTMLCanvasElement>('timeline')
  const ctx = canvas.getContext('2d')
  if (!ctx) return
  const now = Date.now()
  const span = 10_000
  while (marks.length && (marks[0] as { at: number }).at < now - span) marks.shift()
  ctx.clearRect(0, 0, canvas.width, canvas.height)
  const colors = { beat: '#b8bdc7', batch: '#1f8a4c', role: '#c0392b' }
  const rows = { beat: [28, 12], batch: [6, 20], role: [0, 44] } as const
  for (const m of marks) {
    const x = ((m.at - (now - span)) / span) * canvas.width
    ctx.fillStyle = colors[m.kind]
    ctx.fillRect(x, rows[m.kind][0], m.kind === 'role' ? 3 : 2, rows[m.kind][1])
  }
  requestAnimationFrame(drawTimeline)
}

render()
drawTimeline()
setInterval(render, 500)

/** For the end-to-end tests. */
;(globalThis as unknown as { demo: unknown }).demo = {
  name,
  state: () => ({ role: ha.role, epoch: ha.epoch, todos: app.todos.map((t) => t.title), committed, failoverMs, restoredSeq: ha.restored?.seq ?? -1, stats: ha.stats() }),
  sharedTags: () => app.todos.every((t) => t.tags.every((g) => app.tags.get(g.name) === g)),
}
