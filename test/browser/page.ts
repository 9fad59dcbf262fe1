/**
 * Runs in a real browser page: one Understudy node over BroadcastChannel,
 * driven by the test through `window.understudyTest`.
 */
import fc from 'fast-check'
import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { canonicalDump } from '../support/dump.js'
import { applyOp, initialGraph, opArb, Point, type Op } from '../support/ops.js'

let ha: Understudy | undefined
const errors: string[] = []
const peers: string[] = []

const api = {
  /** Exercises the IndexedDB checkpoint store in this real browser; returns what it observed. */
  async idbCheck(group: string): Promise<{ big: boolean; range: string[][]; afterReopen: number[] | undefined; afterRemove: string[][] }> {
    const big = new Uint8Array(8 * 1024 * 1024 + 1)
    for (let i = 0; i < big.length; i += 4093) big[i] = i & 255
    const s1 = indexedDbCheckpoints(group)
    await s1.save(['g', 'snapshot'], big)
    await s1.save(['g', 'log', '0002'], new Uint8Array([2]))
    await s1.save(['g', 'log', '0001'], new Uint8Array([1]))
    await s1.save(['gx'], new Uint8Array([9]))
    const back = (await s1.load(['g', 'snapshot'])) as Uint8Array
    const range = (await s1.loadRange(['g', 'log'])).map((e) => e.key)
    await s1.close()
    // A new instance (a reload) sees what the first one stored.
    const s2 = indexedDbCheckpoints(group)
    const afterReopen = (await s2.loadRange(['g', 'log'])).map((e) => e.value[0] as number)
    await s2.removeRange(['g'])
    const afterRemove = (await s2.loadRange([])).map((e) => e.key)
    await s2.close()
    return { big: back.length === big.length && back.every((v, i) => v === big[i]), range, afterReopen, afterRemove }
  },
  async start(role: 'active' | 'standby', channel: string): Promise<void> {
    // A long ping timeout (10 s): a peer that leaves is noticed through its goodbye, not through silence.
    ha = await Understudy.start({ group: 'browser', transport: broadcastChannel(channel, { id: role, pingMs: 1000, timeoutMs: 10_000 }), role, classes: { Point }, minStandbys: role === 'active' ? 1 : 0 })
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
