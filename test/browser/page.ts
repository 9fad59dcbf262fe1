/**
 * Runs in a real browser page: one Understudy node over BroadcastChannel,
 * driven by the test through `window.understudyTest`.
 */
import fc from 'fast-check'
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { canonicalDump } from '../support/dump.js'
import { applyOp, initialGraph, opArb, Point, type Op } from '../support/ops.js'

let ha: Understudy | undefined
const errors: string[] = []
const peers: string[] = []

const api = {
  async start(role: 'active' | 'standby', channel: string): Promise<void> {
    // A long ping timeout (10 s): a peer that leaves is noticed through its goodbye, not through silence.
    ha = await Understudy.start({ group: 'browser', transport: broadcastChannel(channel, { id: role, pingMs: 1000, timeoutMs: 10_000 }), role, classes: [Point] })
    ha.on('error', (e) => errors.push(String(e.error)))
    ha.on('peer', (e) => peers.push(`${e.peer} ${e.up ? 'up' : 'down'}`))
    if (role === 'standby') ha.register('app', {})
  },
  async run(seed: number, ops: number): Promise<{ seq: number; dump: string }> {
    const node = ha as Understudy
    const root = node.register('app', initialGraph())
    const [list] = fc.sample(fc.array(opArb, { minLength: ops, maxLength: ops }), { seed, numRuns: 1 }) as Op[][]
    for (const op of list as Op[]) if (applyOp(root, op)) await node.commit()
    const { seq } = await node.commit()
    return { seq, dump: canonicalDump(root) }
  },
  state(): { seq: number; dump: string; errors: string[]; role: string; peers: string[] } {
    const node = ha as Understudy
    return { seq: node.stats().seq, dump: canonicalDump(node.root('app')), errors, role: node.role, peers }
  },
}

;(globalThis as unknown as { understudyTest: typeof api }).understudyTest = api
