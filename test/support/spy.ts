import { readFrame, type Frame, type Transport } from 'understudy-ha'

/** Records every frame a transport sends, decoded, with its size in bytes. */
export function spyFrames(t: Transport): { frame: Frame; bytes: number }[] {
  const log: { frame: Frame; bytes: number }[] = []
  const send = t.send.bind(t)
  t.send = (data, to) => {
    log.push({ frame: readFrame(data), bytes: data.length })
    return send(data, to)
  }
  return log
}

/** Size of the last delta frame in a spy log. */
export function lastDeltaBytes(log: { frame: Frame; bytes: number }[]): number {
  const d = log.filter((e) => e.frame.type === 'delta').at(-1)
  if (!d) throw new Error('no delta frame was sent')
  return d.bytes
}
