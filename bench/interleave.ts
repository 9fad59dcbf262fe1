/** Times two operations `n` times each, interleaved and alternating which goes first, so both see the same conditions (ms). */
export async function interleaved(n: number, ours: (i: number) => Promise<void>, raw: (i: number) => Promise<void>): Promise<{ ours: number[]; raw: number[] }> {
  const out = { ours: [] as number[], raw: [] as number[] }
  const time = async (fn: (i: number) => Promise<void>, into: number[], i: number) => {
    const t = performance.now()
    await fn(i)
    into.push(performance.now() - t)
  }
  for (let i = 0; i < n; i++) {
    if (i % 2) await time(ours, out.ours, i), await time(raw, out.raw, i)
    else await time(raw, out.raw, i), await time(ours, out.ours, i)
  }
  return out
}
