// Verifies the built package: every subpath in package.json "exports" resolves
// (through the package's own name, as a user's import would) to an ES module
// with exports, and its declaration file exists.
import { existsSync, readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
let failed = 0
for (const [subpath, target] of Object.entries(pkg.exports)) {
  const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`
  try {
    if (!existsSync(new URL(`../${target.types}`, import.meta.url))) throw new Error(`missing ${target.types}`)
    const mod = await import(name)
    const names = Object.keys(mod)
    if (!names.length) throw new Error('no exports')
    console.log(`ok   ${name} (${names.length} exports, types ${target.types})`)
  } catch (err) {
    failed++
    console.log(`FAIL ${name}: ${err.message}`)
  }
}
process.exit(failed ? 1 : 0)
