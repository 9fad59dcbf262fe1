/**
 * One node of the Node demo, in its own process: TCP on 127.0.0.1, a file
 * lease (heartbeat I = 100 ms, T = 400 ms), filesystem checkpoints, and the
 * counter example with a small "orders" graph that changes with every count.
 *
 *   tsx demo/node/node.ts <id> <port> listen|connect <dir> [everyMs]
 *
 * Prints one JSON line per event. SIGUSR2 asks it to hand over (when active);
 * SIGTERM closes it cleanly.
 */
import { join } from 'node:path'
import { Understudy } from 'understudy-ha'
import { fileLease } from 'understudy-ha/adapters/file-lease'
import { fsCheckpoints } from 'understudy-ha/adapters/fs'
import { tcp } from 'understudy-ha/adapters/tcp'
import { startCounter } from '../../examples/counter/counter.js'

/** The group key every node of the group holds (the launcher sets it; see README). */
const key = process.env.UNDERSTUDY_KEY
if (!key) {
  console.error('set UNDERSTUDY_KEY to the group key (the same on every node); make one with: node -e "import(\'understudy-ha\').then(m => console.log(m.generateGroupKey()))"')
  process.exit(2)
}

export class Customer {
  constructor(
    public name: string,
    public orders = 0,
  ) {}
}

export class Order {
  constructor(
    public no: number,
    public customer: Customer,
    public items: string[],
    public shipped = false,
  ) {}
}

const [id, port, mode, dir, everyMs] = process.argv.slice(2) as [string, string, 'listen' | 'connect', string, string | undefined]
const say = (event: string, fields: object = {}) => console.log(JSON.stringify({ id, event, at: Date.now(), ...fields }))

const ha = await Understudy.start({
  group: 'demo',
  transport: tcp({ key, id, ...(mode === 'listen' ? { listen: { port: Number(port) } } : { connect: { port: Number(port) }, backoff: { initialMs: 20, maxMs: 200 } }) }),
  lease: fileLease(join(dir, 'lease.json')),
  heartbeat: { intervalMs: 100, timeoutMs: 400 },
  checkpoints: fsCheckpoints(join(dir, `checkpoints-${id}`)),
  classes: { Customer, Order },
})
say('started', { pid: process.pid, restoredSeq: ha.restored?.seq ?? -1 })
ha.on('role', ({ role, epoch }) => say('role', { role, epoch }))
ha.on('change', ({ seq, snapshot }) => snapshot && say('synced', { seq, role: ha.role }))

const shop = ha.register('shop', { orders: [] as Order[], customers: new Map<string, Customer>() })
const NAMES = ['ada', 'grace', 'edsger', 'barbara']

startCounter(ha, {
  everyMs: Number(everyMs ?? 250),
  work: (count) => {
    // A new order each count, for a customer object shared by all of that customer's orders.
    const name = NAMES[count % NAMES.length] as string
    let customer = shop.customers.get(name)
    if (!customer) shop.customers.set(name, (customer = new Customer(name)))
    customer.orders++
    shop.orders.push(new Order(count, customer, [`item-${count}`]))
    const unshipped = shop.orders.find((o) => !o.shipped)
    if (unshipped && shop.orders.length > 3) unshipped.shipped = true
    if (shop.orders.length > 20) shop.orders.shift()
  },
  onCount: (count) => {
    const s = ha.stats()
    const shared = shop.orders.every((o) => shop.customers.get(o.customer.name) === o.customer)
    say('count', { count, epoch: s.epoch, seq: s.seq, acked: s.acked, standbys: s.standbys, orders: shop.orders.length, shared })
  },
  onTakeOver: (found) => say('takeover', { found, orders: shop.orders.length }),
})

process.on('SIGUSR2', () => {
  if (ha.role !== 'active') return say('handover-refused', { role: ha.role })
  ha.handover().then(
    (r) => say('handover', { to: r.to, epoch: r.epoch, seq: r.seq, blackoutMs: r.blackoutMs }),
    (err: Error) => say('handover-failed', { error: err.message }),
  )
})
process.on('SIGTERM', () => void ha.close().then(() => process.exit(0)))
