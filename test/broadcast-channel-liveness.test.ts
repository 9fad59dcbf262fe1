/**
 * The BroadcastChannel transport's view of a peer's liveness (issue 15, item
 * 4), on virtual clocks: a peer whose pings may come late (a hidden page paced
 * by throttled timers) is allowed `throttledTimeoutMs`, and a peer declared
 * lost that speaks again is reported up again before its message. Each end
 * has its own clock, so one end can be silent while the other's time runs.
 * (In a real Chromium, with a background tab: browser-background.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { VirtualClock, seededRandom } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import type { TransportHandler } from '../src/transport.js'

let n = 0
const channel = () => `bc-liveness-${process.pid}-${++n}`
/** Lets Node's BroadcastChannel deliver what was posted. */
const deliver = () => new Promise((r) => setTimeout(r, 20))

function recorder(): { handler: TransportHandler; log: string[] } {
  const log: string[] = []
  return {
    log,
    handler: {
      message: (from, data) => log.push(`message ${from} ${data[0]}`),
      peerUp: (peer) => log.push(`up ${peer}`),
      peerDown: (peer, reason) => log.push(`down ${peer} ${reason}`),
      error: (err) => log.push(`error ${err.message}`),
    },
  }
}

describe('broadcastChannel: liveness of a peer', () => {
  it('a peer hidden and paced by timers is not declared lost after timeoutMs of silence, only after throttledTimeoutMs', async () => {
    const name = channel()
    const quiet = new VirtualClock() // never advanced: the hidden page's timers do not fire
    const clock = new VirtualClock()
    const hidden = broadcastChannel(name, { id: 'hidden', clock: quiet, random: seededRandom(1), keepAlive: 'timers', hidden: () => true, pingMs: 250, timeoutMs: 1000 })
    const visible = broadcastChannel(name, { id: 'visible', clock, random: seededRandom(2), keepAlive: 'timers', pingMs: 250, timeoutMs: 1000, throttledTimeoutMs: 5000 })
    const r = recorder()
    visible.open(r.handler)
    hidden.open(recorder().handler)
    await deliver()
    expect(r.log).toEqual(['up hidden'])
    for (let t = 0; t < 4500; t += 250) clock.advance(250)
    expect(r.log).toEqual(['up hidden'])
    for (let t = 0; t < 750; t += 250) clock.advance(250)
    expect(r.log).toEqual(['up hidden', 'down hidden lost'])
    await Promise.all([hidden.close(), visible.close()])
  })

  it('a visible peer is declared lost after timeoutMs of silence; when it speaks again it is up again before its message is delivered', async () => {
    const name = channel()
    const quiet = new VirtualClock()
    const clock = new VirtualClock()
    const peer = broadcastChannel(name, { id: 'peer', clock: quiet, random: seededRandom(3), keepAlive: 'timers', hidden: () => false, pingMs: 250, timeoutMs: 1000 })
    const self = broadcastChannel(name, { id: 'self', clock, random: seededRandom(4), keepAlive: 'timers', pingMs: 250, timeoutMs: 1000 })
    const r = recorder()
    self.open(r.handler)
    peer.open(recorder().handler)
    await deliver()
    for (let t = 0; t < 1500; t += 250) clock.advance(250)
    expect(r.log).toEqual(['up peer', 'down peer lost'])
    // It was only slow: it pings, then sends a frame.
    quiet.advance(250)
    peer.send(new Uint8Array([7]))
    await deliver()
    expect(r.log).toEqual(['up peer', 'down peer lost', 'up peer', 'message peer 7'])
    // Even a frame alone (its ping lost) brings it back first.
    for (let t = 0; t < 1500; t += 250) clock.advance(250)
    peer.send(new Uint8Array([8]))
    await deliver()
    expect(r.log.slice(4)).toEqual(['down peer lost', 'up peer', 'message peer 8'])
    await Promise.all([peer.close(), self.close()])
  })

  it('rejects a throttled flag that is not 1 as a foreign message', async () => {
    const name = channel()
    const self = broadcastChannel(name, { id: 'self', clock: new VirtualClock(), keepAlive: 'timers' })
    const r = recorder()
    self.open(r.handler)
    const stranger = new BroadcastChannel(name)
    stranger.postMessage({ u: 'understudy/bc/1', k: 'ping', f: 'x', i: 'y', s: 'yes' })
    await deliver()
    stranger.close()
    expect(r.log).toEqual(['error broadcastChannel "' + name + '": ignored a message that is not an Understudy frame'])
    await self.close()
  })
})
