/**
 * @shoal/dashboard-kit — what the node's and the tracker's dashboards share: the strict
 * Content-Security-Policy and headers of every dashboard answer, and serving a page's
 * files (its own `main.html`, `app.js`, `app.css`) together with the kit's
 * (`kit.js`, `kit.css`, `icon.svg`) under `/dashboard`, and one page shell (`index.html`:
 * head, header line and footer) around each page's `main.html`. Files are read on first
 * use and kept; nothing happens at import time.
 *
 * @example
 * const files = createDashboardFiles(new URL('./assets/', import.meta.url), {
 *   title: 'Shoal edge node',
 *   facts: [{ label: 'Node', id: 'node-address', code: true }, { label: 'Up', id: 'uptime' }],
 * })
 * const file = await files.get('/dashboard/app.js') // { body, type } or undefined
 * if (file) sendDashboardFile(res, file.type, file.body, req.method === 'HEAD')
 */
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'

/** Every dashboard answer carries it: only its own script, style, images and data; no frames, forms or plugins. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** The path the dashboards live under. */
export const DASHBOARD_BASE = '/dashboard'

const KIT_DIR = new URL('../assets/', import.meta.url)

/** File name → where it comes from and its type, by request path. */
const FILES: Readonly<Record<string, { file: string; type: string; kit: boolean }>> = {
  [DASHBOARD_BASE]: { file: 'index.html', type: 'text/html; charset=utf-8', kit: false },
  [`${DASHBOARD_BASE}/`]: { file: 'index.html', type: 'text/html; charset=utf-8', kit: false },
  [`${DASHBOARD_BASE}/app.js`]: { file: 'app.js', type: 'text/javascript; charset=utf-8', kit: false },
  [`${DASHBOARD_BASE}/app.css`]: { file: 'app.css', type: 'text/css; charset=utf-8', kit: false },
  [`${DASHBOARD_BASE}/kit.js`]: { file: 'kit.js', type: 'text/javascript; charset=utf-8', kit: true },
  [`${DASHBOARD_BASE}/kit.css`]: { file: 'kit.css', type: 'text/css; charset=utf-8', kit: true },
  [`${DASHBOARD_BASE}/icon.svg`]: { file: 'icon.svg', type: 'image/svg+xml', kit: true },
}

/** Every path a dashboard serves as a file (`data.json` is each service's own). */
export const DASHBOARD_FILE_PATHS: readonly string[] = Object.keys(FILES)

/** Headers of every dashboard answer. */
export function dashboardHeaders(type: string, length: number): Record<string, string> {
  return {
    'content-type': type,
    'content-length': String(length),
    'cache-control': 'no-store',
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  }
}

/** Answers 200 with a dashboard file or `data.json`. */
export function sendDashboardFile(res: ServerResponse, type: string, body: Buffer, head: boolean): void {
  res.writeHead(200, dashboardHeaders(type, body.length))
  res.end(head ? undefined : body)
}

export interface DashboardFiles {
  /** The file for a request path, or `undefined` when the dashboard has no such file. */
  get(path: string): Promise<{ body: Buffer; type: string } | undefined>
}

/** One figure in the page's header line, filled by the page's script through its `id`. */
export interface DashboardFact {
  label: string
  id: string
  /** Shown as code (addresses, ids). */
  code?: boolean
}

/** What a page says about itself; the kit writes the rest of `index.html` around its `main.html`. */
export interface DashboardPage {
  /** The page's title and heading. */
  title: string
  /** Figures in the header line, before the kit's own "Updated". */
  facts?: readonly DashboardFact[]
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
}
const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => HTML_ESCAPES[c] ?? c)

/** The page's `index.html`: the kit's shell (head, header, footer) around the page's `main.html`. */
async function composePage(pageDir: URL, page: DashboardPage): Promise<Buffer> {
  const [shell, main, style] = await Promise.all([
    readFile(new URL('page.html', KIT_DIR), 'utf8'),
    readFile(new URL('main.html', pageDir), 'utf8'),
    readOptional(new URL('app.css', pageDir)),
  ])
  const facts = (page.facts ?? []).map(({ label, id, code }) => {
    const tag = code ? 'code' : 'span'
    return `      <span>${escapeHtml(label)} <${tag} id="${escapeHtml(id)}">…</${tag}></span>\n`
  })
  const parts: Record<string, string> = {
    title: escapeHtml(page.title),
    styles: style === undefined ? '' : '  <link rel="stylesheet" href="/dashboard/app.css">\n',
    facts: facts.join(''),
    main: main.endsWith('\n') ? main : `${main}\n`,
  }
  // each placeholder stands on its own line, or inside one, in the kit's own shell
  const html = shell.replace(/\{\{(\w+)\}\}(\n?)/g, (_, name: string, newline: string) => {
    const value = parts[name]
    if (value === undefined) throw new Error(`dashboard-kit: page.html names an unknown part {{${name}}}`)
    return newline === '' ? value : value.endsWith('\n') || value === '' ? value : `${value}\n`
  })
  return Buffer.from(html)
}

async function readOptional(url: URL): Promise<Buffer | undefined> {
  try {
    return await readFile(url)
  } catch (err) {
    // a page without its own style (or script) simply has none
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * A page's files from `pageDir` (`main.html`, `app.js`, `app.css` if it has one) and the
 * kit's; `index.html` is the kit's shell around `main.html`, titled by `page`.
 */
export function createDashboardFiles(pageDir: URL, page: DashboardPage): DashboardFiles {
  const cache = new Map<string, Buffer | undefined>()
  return {
    async get(path) {
      const entry = FILES[path]
      if (entry === undefined) return undefined
      const url = new URL(entry.file, entry.kit ? KIT_DIR : pageDir)
      let body = cache.get(url.href)
      if (!cache.has(url.href)) {
        body =
          entry.file === 'index.html' && !entry.kit
            ? await composePage(pageDir, page)
            : await readOptional(url)
        cache.set(url.href, body)
      }
      return body === undefined ? undefined : { body, type: entry.type }
    },
  }
}
