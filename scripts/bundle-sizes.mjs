// Measures what the package costs a browser application: each scenario is a
// tiny entry bundled by Vite in production mode (minified, tree-shaken) against
// the built package, and reported minified and gzipped. Also reports the packed
// tarball (size, unpacked size, file count).
//
//   node scripts/bundle-sizes.mjs            # against ./ (run `npm run build` first)
//   node scripts/bundle-sizes.mjs --json     # one JSON object on stdout
//   node scripts/bundle-sizes.mjs --pkg DIR  # against an installed copy of the package
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'vite'

const args = process.argv.slice(2)
const pkgDir = resolve(args.includes('--pkg') ? args[args.indexOf('--pkg') + 1] : '.')
const json = args.includes('--json')
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))

const scenarios = {
  'seededRandom only': `import { seededRandom } from 'understudy-ha'\nconsole.log(seededRandom(1)())`,
  'core only (Understudy + memory transport)': `import { Understudy } from 'understudy-ha'
import { memoryPair } from 'understudy-ha/adapters/memory'
const [a] = memoryPair()
Understudy.start({ group: 'g', transport: a, role: 'active' }).then((ha) => ha.register('app', {}))`,
  'core + browser adapters (broadcast-channel, indexeddb, web-locks)': `import { Understudy } from 'understudy-ha'
import { broadcastChannel } from 'understudy-ha/adapters/broadcast-channel'
import { indexedDbCheckpoints } from 'understudy-ha/adapters/indexeddb'
import { webLocksLease } from 'understudy-ha/adapters/web-locks'
Understudy.start({ group: 'g', transport: broadcastChannel('g'), checkpoints: indexedDbCheckpoints('g'), lease: webLocksLease('g') })`,
}

/** `understudy-ha/<sub>` → the built file, as the exports map says. */
const alias = Object.entries(pkg.exports)
  .filter(([, t]) => typeof t === 'object')
  .map(([sub, t]) => ({
    find: new RegExp(`^${(sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`).replace(/[/\\-]/g, '\\$&')}$`),
    replacement: join(pkgDir, t.import ?? t.default),
  }))

const dir = mkdtempSync(join(tmpdir(), 'understudy-sizes-'))
const results = {}
try {
  for (const [name, code] of Object.entries(scenarios)) {
    const entry = join(dir, `entry-${Object.keys(results).length}.js`)
    writeFileSync(entry, code)
    const out = await build({
      configFile: false,
      logLevel: 'silent',
      root: dir,
      resolve: { alias },
      build: { write: false, minify: true, target: 'es2022', modulePreload: false, rollupOptions: { input: entry } },
    })
    const outputs = (Array.isArray(out) ? out : [out]).flatMap((o) => o.output)
    const js = outputs.filter((o) => o.type === 'chunk').map((o) => o.code).join('\n')
    results[name] = { minBytes: Buffer.byteLength(js), gzipBytes: gzipSync(js, { level: 9 }).length }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: pkgDir, encoding: 'utf8' }))[0]
const tarball = { bytes: packed.size, unpackedBytes: packed.unpackedSize, files: packed.entryCount }

if (json) console.log(JSON.stringify({ tarball, bundles: results }))
else {
  const kb = (n) => `${(n / 1024).toFixed(1)} kB`
  console.log(`tarball: ${kb(tarball.bytes)} packed, ${kb(tarball.unpackedBytes)} unpacked, ${tarball.files} files`)
  for (const [name, r] of Object.entries(results)) console.log(`${name.padEnd(68)} ${kb(r.minBytes).padStart(9)} min  ${kb(r.gzipBytes).padStart(8)} gzip`)
}
