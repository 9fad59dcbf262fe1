import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..')

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f)
    return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Source without comments and string contents, so prose never trips a rule. */
function code(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1')
}

function imports(file: string): string[] {
  return [...readFileSync(join(ROOT, file), 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string)
}

describe('layering (DESIGN.md)', () => {
  const core = files('src')

  // Platform features the core uses when present (page lifecycle events) are feature-detected through globalThis.
  it('the core runs anywhere: no node: imports, no Node or DOM globals in src/', () => {
    for (const f of core) {
      const src = code(f)
      for (const spec of imports(f)) expect(spec, `${f} imports ${spec}`).not.toMatch(/^node:|^(fs|net|path|os|worker_threads)$/)
      expect(src, `${f} uses a DOM or Node global`).not.toMatch(/\b(window|document|navigator|localStorage|process|Buffer|require)\s*[.([]/)
    }
  })

  it('time is injected: no core module reads the clock or starts a timer except the Clock itself', () => {
    for (const f of core.filter((f) => !f.endsWith('clock.ts'))) {
      expect(code(f), `${f} calls time directly`).not.toMatch(/(?<![.\w])(setTimeout|setInterval|clearTimeout|clearInterval)\s*\(|Date\.now\s*\(|performance\.now\s*\(/)
    }
  })

  it('randomness is injected: no core module calls Math.random except the default source', () => {
    for (const f of core.filter((f) => !f.endsWith('random.ts'))) expect(code(f), f).not.toMatch(/Math\.random/)
  })

  it('layers import only downwards: graph and codec know nothing of transports, replication or adapters', () => {
    const rules: [string, RegExp][] = [
      ['src/graph', /transport|replication|roles|checkpoints|adapters|understudy|codec/],
      ['src/codec', /transport|replication|roles|checkpoints|adapters|understudy|\/nodes|\/graph\.js/],
      ['src/replication', /adapters|understudy/],
      ['src/sequences', /transport|replication|roles|checkpoints|adapters|understudy|codec|graph/],
    ]
    for (const [dir, forbidden] of rules)
      for (const f of core.filter((f) => f.startsWith(dir)))
        for (const spec of imports(f)) expect(spec, `${relative(ROOT, f)} imports ${spec}`).not.toMatch(forbidden)
  })

  it('no import cycles in src/, type-only imports included (each concern has one home)', () => {
    const edges = new Map(core.map((f) => [f, imports(f).filter((s) => s.startsWith('.')).map((s) => join(dirname(f), s).replace(/\.js$/, '.ts'))]))
    const state = new Map<string, 'open' | 'done'>()
    const cycles: string[] = []
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return
      if (state.get(f) === 'open') return void cycles.push([...path.slice(path.indexOf(f)), f].join(' → '))
      state.set(f, 'open')
      for (const g of edges.get(f) ?? []) visit(g, [...path, f])
      state.set(f, 'done')
    }
    for (const f of core) visit(f, [])
    expect(cycles).toEqual([])
  })

  it('no file in src/ is over 400 lines, and the Understudy façade is at most 300', () => {
    for (const f of core) {
      const lines = readFileSync(join(ROOT, f), 'utf8').split('\n').length
      expect(lines, `${f} has ${lines} lines`).toBeLessThanOrEqual(f.endsWith('src/understudy.ts') ? 300 : 400)
    }
  })

  it('adapters import the core only through its public entry, never each other', () => {
    for (const f of files('adapters'))
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue
        // The core's public entry, or a sibling file inside the same adapter's own folder — or, for Node adapters, the
        // node:crypto primitives (`adapters/node-crypto.ts`: not a transport, the one place `node:crypto` is bound to
        // the core's AuthCrypto, so TCP and the WebSocket server authenticate alike).
        const ok =
          /^(\.\.\/)+src\/index\.js$/.test(spec) ||
          (f.split('/').length > 2 && /^\.\/[\w-]+\.js$/.test(spec)) ||
          (/^(\.\.\/|\.\/)node-crypto\.js$/.test(spec) && f !== 'adapters/node-crypto.ts')
        expect(ok, `${f} imports ${spec}`).toBe(true)
      }
  })
})

describe('package subpaths', () => {
  it('tsconfig paths name every subpath in package.json exports, with the same source', async () => {
    const { subpaths } = await import('../subpaths.js')
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { paths: Record<string, string[]> } }
    const fromPaths = Object.fromEntries(Object.entries(tsconfig.compilerOptions.paths).map(([k, v]) => [k, (v[0] as string).replace(/^\.\//, '')]))
    const fromExports = Object.fromEntries(subpaths(new URL('../', import.meta.url)).map((s) => [s.name, s.source]))
    expect(fromPaths).toEqual(fromExports)
  })
})
