import { createServer, type Server } from 'node:http'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'
import { build } from 'vite'
import { subpaths } from '../../subpaths.js'

const ROOT = new URL('../../', import.meta.url)
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' }

/** Bundles a browser test entry (with the package resolved to source) into `outDir` as `page.js`. */
export async function bundlePage(entry: string, outDir: string): Promise<void> {
  await build({
    configFile: false,
    logLevel: 'warn',
    resolve: {
      alias: subpaths(ROOT).map((s) => ({ find: new RegExp(`^${s.name.replace(/[/\\-]/g, '\\$&')}$`), replacement: new URL(s.source, ROOT).pathname })),
    },
    build: {
      outDir,
      emptyOutDir: true,
      minify: false,
      target: 'es2022',
      lib: { entry, formats: ['es'], fileName: () => 'page.js' },
    },
  })
}

/** Serves `dir` on 127.0.0.1 (a free port); `/` is its index.html, or else a page that loads page.js. */
export async function serve(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    const own = path.endsWith('/') ? normalize(join(dir, path, 'index.html')) : undefined
    if (own && own.startsWith(normalize(dir)) && existsSync(own)) {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(await readFile(own))
      return
    }
    if (path.endsWith('/') || path.endsWith('/index.html')) {
      const base = path.slice(0, path.lastIndexOf('/') + 1)
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!doctype html><meta charset="utf-8"><title>understudy test</title><script type="module" src="${base}page.js"></script>`)
      return
    }
    const file = normalize(join(dir, path))
    if (!file.startsWith(normalize(dir))) return void res.writeHead(403).end()
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}
