/**
 * Headless Chromium for tests (client-sdk, devnet): Debian's `chromium` driven by
 * `playwright-core` (see ../shared/TOOLCHAIN.md "Browsers for tests"), a bundler for
 * browser entries (esbuild) and a static server on 127.0.0.1.
 *
 * `launchBrowser()` installs chromium with apt when it is missing, once per machine even
 * when several test files ask at the same time (a lock directory in the temp dir), and
 * throws an error that says why when it cannot: a browser test never skips silently.
 *
 * @example
 * const browser = await launchBrowser()
 * const site = await serveStatic({ '/': { type: 'text/html', body: '<p>hi</p>' } })
 * const page = await browser.newPage()
 * await page.goto(site.url)
 * await browser.close()
 * await site.close()
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { access, constants, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { isAlive } from './processes.ts'

const run = promisify(execFile)

/** Where Debian's package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium'

/** The flags TOOLCHAIN.md lists: no sandbox (root in CI), no GPU, nothing phoning home. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

/** apt can take minutes on a cold machine (lists, then ~100 MB of packages). */
const INSTALL_TIMEOUT_MS = 9 * 60_000
const LOCK_DIR = join(tmpdir(), 'shoal-chromium-install.lock')

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Takes the install lock, waiting while another live process holds it. */
async function lock(deadline: number): Promise<() => Promise<void>> {
  for (;;) {
    try {
      await mkdir(LOCK_DIR)
      await writeFile(join(LOCK_DIR, 'pid'), String(process.pid))
      return () => rm(LOCK_DIR, { recursive: true, force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = Number(await readFile(join(LOCK_DIR, 'pid'), 'utf8').catch(() => 'NaN'))
    // a holder that died (or has not written its pid for a while) leaves a stale lock
    if (Number.isInteger(holder) && !isAlive(holder)) await rm(LOCK_DIR, { recursive: true, force: true })
    if (Date.now() > deadline) throw new Error(`timed out waiting for the chromium install lock ${LOCK_DIR}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function apt(args: string[]): Promise<void> {
  await run('apt-get', args, {
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 2 ** 20,
  })
}

export interface EnsureChromiumInit {
  /** Where the browser must be. Default {@link CHROMIUM_PATH}. */
  path?: string
  /** Whether this process may run apt. Default: it runs as root. */
  root?: boolean
}

/**
 * Resolves when `/usr/bin/chromium` exists, installing Debian's `chromium` first if it
 * is missing (`apt-get install -y chromium`, after `apt-get update` if that fails).
 * Rejects with a message that says what to do when it cannot.
 */
export async function ensureChromium(init: EnsureChromiumInit = {}): Promise<string> {
  const chromiumPath = init.path ?? CHROMIUM_PATH
  if (await exists(chromiumPath)) return chromiumPath
  const deadline = Date.now() + INSTALL_TIMEOUT_MS + 60_000
  const unlock = await lock(deadline)
  try {
    // another process may have installed it while this one waited for the lock
    if (await exists(chromiumPath)) return chromiumPath
    if (!(init.root ?? process.getuid?.() === 0)) {
      throw new Error(
        `browser tests need Debian's chromium at ${chromiumPath}; it is missing and this process is not root, ` +
          'so it cannot install it: run `sudo apt-get install -y chromium`',
      )
    }
    const install = ['install', '-y', '--no-install-recommends', 'chromium']
    try {
      await apt(install)
    } catch {
      // stale or missing package lists are the usual reason
      try {
        await apt(['update'])
        await apt(install)
      } catch (err) {
        const e = err as { stderr?: string; message: string }
        throw new Error(
          `browser tests need Debian's chromium at ${chromiumPath} and \`apt-get install -y chromium\` failed: ` +
            `${(e.stderr ?? '').trim().split('\n').slice(-3).join(' / ') || e.message}`,
          { cause: err },
        )
      }
    }
    if (!(await exists(chromiumPath)))
      throw new Error(`apt-get installed chromium but ${chromiumPath} is still missing`)
    return chromiumPath
  } finally {
    await unlock()
  }
}

/** Launches headless Chromium (installing it first when missing). Close it in `afterAll`. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = await ensureChromium()
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS] })
}

/** Time allowed to set a browser up: a cold machine runs `apt-get update` and installs ~100 MB. */
export const BROWSER_SETUP_TIMEOUT_MS = INSTALL_TIMEOUT_MS + 60_000

/**
 * One browser for the test file (call it at the top of a `describe`): launched in
 * `beforeAll` (with time for an install), closed in `afterAll` even when setup failed.
 * Returns a getter for it.
 *
 * @example
 * const browser = useBrowser()
 * it('…', async () => { const page = await browser().newPage() })
 */
export function useBrowser(): () => Browser {
  let launching: Promise<Browser> | undefined
  let browser: Browser | undefined
  beforeAll(async () => {
    launching = launchBrowser()
    browser = await launching
  }, BROWSER_SETUP_TIMEOUT_MS)
  afterAll(async () => {
    await (await launching?.catch(() => undefined))?.close()
  })
  return () => {
    if (browser === undefined)
      throw new Error('the browser is not launched yet (use it inside tests or later hooks)')
    return browser
  }
}

/**
 * Bundles a TypeScript entry for browsers (ESM, everything inlined, `browser` export
 * conditions) and returns the code. Fails if the entry pulls in a `node:` module.
 */
export async function bundleForBrowser(entry: string): Promise<string> {
  try {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2023',
      write: false,
      logLevel: 'silent',
    })
    return out.outputFiles[0]!.text
  } catch (err) {
    const errors = (err as { errors?: { text: string; location: { file: string } | null }[] }).errors ?? []
    if (errors.length === 0) throw err
    throw new Error(
      `${entry} does not bundle for browsers: ${errors
        .slice(0, 5)
        .map((e) => `${e.location?.file ?? '?'}: ${e.text}`)
        .join('; ')}${errors.length > 5 ? ` (and ${errors.length - 5} more)` : ''}`,
      { cause: err },
    )
  }
}

export interface StaticFile {
  type: string
  body: string | Uint8Array
}

export interface StaticServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string
  /** Paths requested, in order. */
  hits: string[]
  close(): Promise<void>
}

/** Serves fixed files by path on 127.0.0.1 (port 0); anything else is 404. */
export async function serveStatic(files: Record<string, StaticFile>): Promise<StaticServer> {
  const hits: string[] = []
  const sockets = new Set<Socket>()
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    hits.push(path)
    const file = files[path]
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    res
      .writeHead(200, {
        'content-type': file.type,
        'content-length': Buffer.byteLength(file.body),
        'cache-control': 'no-store',
      })
      .end(file.body)
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}

/** What a page did, as {@link watchPage} records it. */
export interface PageWatch {
  /** Every URL the page requested, in order. */
  requested: string[]
  /** Console errors and warnings (CSP violations, failed loads) and uncaught errors. */
  problems: string[]
}

/** Starts recording a page's requests and problems (call before `goto`). */
export function watchPage(page: Page): PageWatch {
  const watch: PageWatch = { requested: [], problems: [] }
  page.on('request', (r) => watch.requested.push(r.url()))
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') watch.problems.push(m.text())
  })
  page.on('pageerror', (e) => watch.problems.push(e.message))
  return watch
}

/** One accessibility rule a page breaks, as axe-core reports it. */
export interface AccessibilityViolation {
  id: string
  impact: string | null
  help: string
  /** CSS selectors of the offending elements. */
  targets: string[]
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on the page as it is now and returns what it
 * breaks. axe is evaluated through the DevTools protocol, so the page's CSP is untouched.
 */
export async function accessibilityViolations(page: Page): Promise<AccessibilityViolation[]> {
  const source = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
  await page.evaluate(source)
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: AxeLike }).axe
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    })
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }))
  })
}

/** The part of axe-core's API used above. */
interface AxeLike {
  run(
    context: Document,
    options: { runOnly: { type: 'tag'; values: string[] } },
  ): Promise<{
    violations: { id: string; impact?: string | null; help: string; nodes: { target: string[] }[] }[]
  }>
}
