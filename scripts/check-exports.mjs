// Verifies the built package: every subpath in package.json "exports" resolves
// (through the package's own name, as a user's import would) to an ES module
// with exports, loads with require() too (Node >= 20.19 loads ES modules
// synchronously), and its declaration file exists.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
let failed = 0
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object') continue // ./package.json
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`
  try {
    if (!existsSync(new URL(`../${target.types}`, import.meta.url))) throw new Error(`missing ${target.types}`)
    const mod = await import(name)
    const names = Object.keys(mod)
    if (!names.length) throw new Error('no exports')
    // The testing entry imports vitest, which refuses to load outside a test run; import() above proved it resolves.
    if (subpath !== './testing') {
      const required = Object.keys(require(name))
      if (required.join() !== names.join()) throw new Error(`require() gives ${required.length} exports, import ${names.length}`)
    }
    console.log(`ok   ${name} (${names.length} exports, import and require, types ${target.types})`)
  } catch (err) {
    failed++
    console.log(`FAIL ${name}: ${err.message}`)
  }
}
// The `understudy` command, as npm would link it.
for (const [bin, file] of Object.entries(pkg.bin ?? {})) {
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync(process.execPath, [new URL(`../${file}`, import.meta.url).pathname, '--help'], { encoding: 'utf8' })
  const shebang = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8').startsWith('#!/usr/bin/env node')
  if (r.status === 0 && /supervise/.test(r.stdout) && shebang) console.log(`ok   bin ${bin} (${file})`)
  else {
    failed++
    console.log(`FAIL bin ${bin} (${file}): exit ${r.status}, shebang ${shebang}: ${r.stderr}`)
  }
}
process.exit(failed ? 1 : 0)
