/**
 * The package's public subpaths, read from package.json "exports" (the single
 * source of truth): the import name, the source file and the build entry name.
 */
import { readFileSync } from 'node:fs'

interface ExportEntry {
  types: string
  default: string
}

export interface Subpath {
  /** e.g. `understudy-ha/adapters/tcp` */
  name: string
  /** e.g. `adapters/tcp.ts` (relative to the package root) */
  source: string
  /** e.g. `adapters/tcp` (the output path in dist, without extension) */
  entry: string
}

export function subpaths(root: URL): Subpath[] {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name: string; exports: Record<string, ExportEntry | string> }
  const modules = Object.entries(pkg.exports).filter((e): e is [string, ExportEntry] => typeof e[1] === 'object')
  return modules.map(([sub, e]) => {
    const entry = e.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '')
    return { name: sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`, source: `${entry}.ts`, entry }
  })
}
