import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'

const ROOT = join(import.meta.dirname, '..')

describe('README', () => {
  it('shows the quick start exactly as examples/quickstart.ts, and it runs as written', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const block = /## Quick start[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(block).toBe(readFileSync(join(ROOT, 'examples/quickstart.ts'), 'utf8'))
    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    await import('../examples/quickstart.js')
    expect(log.mock.calls).toEqual([
      ['standby sees:', true, 'write tests'],
      ['now', 'active', 'at epoch', 2, '- done:', true],
    ])
    log.mockRestore()
  })

  it('names npm test as the test command, and .ci/run runs it', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    expect(readme).toMatch(/npm test\s+# the test suite/)
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/^npm test$/m)
  })

  it('links absolutely (a registry page has no repository beside it to resolve relative links against)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const links = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1] as string)
    expect(links.length).toBeGreaterThan(5)
    expect(links.filter((l) => !/^(https:\/\/|#)/.test(l))).toEqual([])
  })
})
