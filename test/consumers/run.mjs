// Consumer smoke tests: installs the packed tarball into a fresh project in a
// temp folder, as a user would, and uses it from there:
//
//   node ESM · require() · TypeScript strict (node16; bundler; a Node-only project
//   without the DOM lib; the core with neither DOM nor Node types), no skipLibCheck ·
//   the contract suites from `understudy-ha/testing` run by vitest, as a third-party
//   adapter would · a Vite production (minified) build in real Chromium: registered
//   classes and error names survive a failover and a reload from IndexedDB ·
//   workerd (miniflare) running the core with the memory transport ·
//   publint and @arethetypeswrong/cli on the tarball · the size figures.
//
//   node test/consumers/run.mjs            # builds dist/ first when it is missing
//   node test/consumers/run.mjs --keep     # keeps the temp folder, for a look around
//
// Tools (tsc, vite, miniflare, playwright-core, publint, attw) come from this
// repository's node_modules; the consumer project installs only what a user of
// the package would: the tarball, @types/node, ws and @types/ws, and vitest.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HERE = fileURLToPath(new URL('./', import.meta.url))
const bin = (name) => join(ROOT, 'node_modules', '.bin', name)
const keep = process.argv.includes('--keep')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const timings = []
let failed = 0
async function step(name, fn) {
  const t0 = Date.now()
  try {
    const note = await fn()
    timings.push([name, Date.now() - t0, 'ok'])
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`)
  } catch (err) {
    failed++
    timings.push([name, Date.now() - t0, 'FAIL'])
    console.log(`FAIL ${name}: ${err?.stack ?? err}`)
  }
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts, env: { ...process.env, ...opts.env } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}
const installedVersion = (pkg) => JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version

const started = Date.now()
if (!existsSync(join(ROOT, 'dist/src/index.js'))) run('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
const work = mkdtempSync(join(tmpdir(), 'understudy-consumers-'))
const app = join(work, 'app')
let tarball

await step('pack the tarball', () => {
  const out = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT }))[0]
  tarball = join(work, out.filename)
  return `${out.filename}: ${(out.size / 1024).toFixed(1)} kB, ${out.entryCount} files`
})

await step('install it into a fresh project', () => {
  cpSync(HERE, app, { recursive: true, filter: (src) => !src.endsWith('run.mjs') })
  const deps = { 'understudy-ha': `file:${tarball}` }
  for (const p of ['@types/node', 'ws', '@types/ws', 'vitest']) deps[p] = installedVersion(p)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: deps }, null, 2))
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app })
  const installed = readdirSync(join(app, 'node_modules/understudy-ha/dist'))
  return `dist/{${installed.join(',')}}`
})

await step('Node ESM', () => run(process.execPath, ['node-esm/index.mjs'], { cwd: app }).trim())
await step('require() (CommonJS)', () => run(process.execPath, ['node-require/index.cjs'], { cwd: app }).trim())

for (const project of ['node16', 'bundler', 'node-only', 'core-bare']) {
  await step(`TypeScript strict, no skipLibCheck: ${project}`, () => {
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', `ts/${project}/tsconfig.json`], { cwd: app })
  })
}

await step('understudy-ha/testing: the contract suites, run by vitest as a third-party adapter would', () => {
  const out = run(join(app, 'node_modules/.bin/vitest'), ['run', 'adapter-suite'], { cwd: app, env: { CI: '' } })
  const tests = /Tests\s+(\d+ passed[^\n]*)/.exec(out.replace(/\x1b\[[0-9;]*m/g, ''))
  return tests?.[1]
})

await step('workerd (miniflare): the core with the memory transport', async () => {
  const { build } = await import(join(ROOT, 'node_modules/vite/dist/node/index.js'))
  await build({
    configFile: false,
    logLevel: 'warn',
    root: join(app, 'workerd'),
    build: {
      outDir: join(app, 'workerd/dist'),
      minify: true,
      target: 'es2022',
      lib: { entry: join(app, 'workerd/worker.mjs'), formats: ['es'], fileName: () => 'worker.js' },
    },
  })
  const { Miniflare } = await import(join(ROOT, 'node_modules/miniflare/dist/src/index.js'))
  const mf = new Miniflare({ modules: true, script: readFileSync(join(app, 'workerd/dist/worker.js'), 'utf8'), compatibilityDate: '2025-01-01' })
  try {
    const res = await mf.dispatchFetch('http://localhost/')
    const text = await res.text()
    let body
    try {
      body = JSON.parse(text)
    } catch {
      throw new Error(`the worker answered ${res.status}: ${text}`)
    }
    const want = { role: 'active', epoch: 2, todos: 3, instances: true, done: true, errorName: 'NotActiveError' }
    for (const [k, v] of Object.entries(want)) if (body[k] !== v) throw new Error(`${k}: ${JSON.stringify(body[k])}, expected ${JSON.stringify(v)} (${JSON.stringify(body)})`)
    return JSON.stringify(body)
  } finally {
    await mf.dispose()
  }
})

await step('Vite production build in Chromium: classes and error names survive a failover and a reload from IndexedDB', async () => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`Chromium is required in CI but ${CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM_PATH)`)
    console.warn(`!! SKIPPED the Chromium smoke test: no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`)
    return 'skipped'
  }
  const { build } = await import(join(ROOT, 'node_modules/vite/dist/node/index.js'))
  const root = join(app, 'vite-app')
  await build({ root, configFile: join(root, 'vite.config.mjs'), mode: 'production', build: { outDir: join(root, 'dist') } })
  const js = readdirSync(join(root, 'dist/assets')).filter((f) => f.endsWith('.js'))
  const site = await serve(join(root, 'dist'))
  const { chromium } = await import(join(ROOT, 'node_modules/playwright-core/index.mjs'))
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  try {
    const tabs = await browser.newContext()
    const open = async (name) => {
      const p = await tabs.newPage()
      p.on('pageerror', (e) => console.log(`[${name}] page error: ${e.message}`))
      await p.goto(`${site.url}?name=${name}`)
      await p.waitForFunction(() => typeof globalThis.smoke === 'object', undefined, { timeout: 15_000 })
      return p
    }
    const state = (p) => p.evaluate(() => globalThis.smoke.state())
    const roleIs = (p, role) => p.waitForFunction((r) => globalThis.smoke.role() === r, role, { timeout: 15_000, polling: 20 })
    const a = await open('a')
    await roleIs(a, 'active')
    const b = await open('b')
    await roleIs(b, 'standby')
    await a.waitForFunction(() => globalThis.smoke.state().standbys === 1, undefined, { timeout: 15_000, polling: 20 })
    try {
      await a.evaluate(() => globalThis.smoke.add('one'))
      await a.evaluate(() => globalThis.smoke.add('two'))
    } catch (err) {
      throw new Error(`${err.message}\nactive: ${JSON.stringify(await state(a))}\nstandby: ${JSON.stringify(await state(b))}`)
    }
    const standby = await state(b)
    expect(standby.titles, ['one', 'two'], 'the standby holds what the active committed')
    expect(standby.classesSurvive, true, 'the standby rebuilt Todo and Tag instances')
    expect(standby.writeError, 'NotActiveError/NOT_ACTIVE/true', 'a write on the standby')
    const minified = standby.minifiedNames

    await a.close() // the active tab goes away: its Web Lock is released and b takes over
    await roleIs(b, 'active')
    await b.evaluate(() => globalThis.smoke.add('three', true))
    const after = await state(b)
    expect(after.titles, ['one', 'two', 'three'], 'after the failover')
    expect(after.classesSurvive, true, 'after the failover, instances are still Todo and Tag')

    await b.close() // every tab is gone; what remains is b's IndexedDB database
    const again = await open('b')
    await roleIs(again, 'active')
    const restored = await state(again)
    expect(restored.restoredSeq >= 0, true, 'restored from IndexedDB')
    expect(restored.titles, ['one', 'two', 'three'], 'after a reload from IndexedDB')
    expect(restored.classesSurvive, true, 'after a reload from IndexedDB, instances are Todo and Tag')
    expect(restored.errors.filter((e) => /UnknownClass/.test(e)), [], 'no unknown classes')
    return `${js.length} minified chunk(s); the minifier named the classes ${JSON.stringify(minified)}`
  } finally {
    await browser.close()
    await site.close()
  }
})

await step('publint', () => run(bin('publint'), [], { cwd: ROOT }).trim().split('\n').pop())
await step('@arethetypeswrong/cli (ESM-only profile: require() of ESM needs Node >= 20.19)', () => {
  run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'table-flipped'], { cwd: ROOT })
})
await step('sizes', () => {
  const out = run(process.execPath, [join(ROOT, 'scripts/bundle-sizes.mjs'), '--pkg', join(app, 'node_modules/understudy-ha')], { cwd: ROOT })
  console.log(out.trimEnd().replace(/^/gm, '     '))
})

if (!keep) rmSync(work, { recursive: true, force: true })
else console.log(`kept ${work}`)
console.log(`\nconsumer smoke tests: ${timings.length - failed}/${timings.length} passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
process.exit(failed ? 1 : 0)

function expect(actual, wanted, what) {
  if (JSON.stringify(actual) !== JSON.stringify(wanted)) throw new Error(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`)
}

/** Serves a built site on 127.0.0.1 (a free port). */
function serve(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' }
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0])
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path))
    if (!file.startsWith(normalize(dir)) || !existsSync(file)) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' })
    res.end(readFileSync(file))
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(() => r())) })),
  )
}

