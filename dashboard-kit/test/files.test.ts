import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatRatio,
  formatScore,
  formatTime,
} from '../assets/kit.js'
import { createDashboardFiles, DASHBOARD_CSP, DASHBOARD_FILE_PATHS, dashboardHeaders } from '../src/index.ts'

describe('dashboard files', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-kit-'))
    await writeFile(join(dir, 'main.html'), '    <section><h2>Figures</h2></section>\n')
    await writeFile(join(dir, 'app.js'), "import './kit.js'\n")
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it("serves a page's files and the kit's, by path, and nothing else", async () => {
    const files = createDashboardFiles(pathToFileURL(`${dir}/`), { title: 't' })
    expect((await files.get('/dashboard'))?.body.toString()).toContain('<title>t</title>')
    expect((await files.get('/dashboard/'))?.type).toBe('text/html; charset=utf-8')
    expect((await files.get('/dashboard/app.js'))?.type).toBe('text/javascript; charset=utf-8')
    expect((await files.get('/dashboard/kit.js'))?.body.toString()).toContain('export function startRefresh')
    expect((await files.get('/dashboard/kit.css'))?.type).toBe('text/css; charset=utf-8')
    expect((await files.get('/dashboard/icon.svg'))?.type).toBe('image/svg+xml')
    // a page without its own style has none; unknown and traversing paths are nothing
    expect(await files.get('/dashboard/app.css')).toBeUndefined()
    for (const path of [
      '/dashboard/../package.json',
      '/dashboard/main.html',
      '/dashboard/page.html',
      '/dashboard/kit.d.ts',
      '/dashboard/data.json',
      '/x',
    ])
      expect(await files.get(path), path).toBeUndefined()
    expect(DASHBOARD_FILE_PATHS).toContain('/dashboard/kit.js')
  })

  it("writes index.html: the kit's shell, the page's title and facts (escaped) around its main.html", async () => {
    const files = createDashboardFiles(pathToFileURL(`${dir}/`), {
      title: 'Node <b>&</b>',
      facts: [
        { label: 'Node', id: 'node-address', code: true },
        { label: 'Up "now"', id: 'uptime' },
      ],
    })
    const html = (await files.get('/dashboard/'))?.body.toString() ?? ''
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html).toContain('<title>Node &lt;b&gt;&amp;&lt;/b&gt;</title>')
    expect(html).toContain('<h1>Node &lt;b&gt;&amp;&lt;/b&gt;</h1>')
    expect(html).toContain('<span>Node <code id="node-address">…</code></span>')
    expect(html).toContain('<span>Up &quot;now&quot; <span id="uptime">…</span></span>')
    // the page's sections sit in <main>, before the kit's generic section; no part is left unfilled
    expect(html).toMatch(/<main>\n {4}<section><h2>Figures<\/h2><\/section>\n {4}<section id="more"/)
    expect(html).not.toContain('{{')
    // no app.css in this page, so no link to one
    expect(html).not.toContain('app.css')
    await writeFile(join(dir, 'app.css'), 'body { margin: 0 }\n')
    const styled = createDashboardFiles(pathToFileURL(`${dir}/`), { title: 't' })
    expect((await styled.get('/dashboard'))?.body.toString()).toContain('href="/dashboard/app.css"')
    await rm(join(dir, 'app.css'))
  })

  it('every answer carries the strict CSP; the kit links nothing outside its origin', async () => {
    const headers = dashboardHeaders('text/html', 10)
    expect(headers).toMatchObject({
      'content-security-policy': DASHBOARD_CSP,
      'content-length': '10',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    })
    expect(DASHBOARD_CSP).toContain("default-src 'none'")
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'")
    expect(DASHBOARD_CSP).not.toContain('unsafe')
    expect(DASHBOARD_CSP).not.toMatch(/https?:|\*/)
    for (const file of ['kit.js', 'kit.css', 'icon.svg']) {
      const text = await readFile(new URL(`../assets/${file}`, import.meta.url), 'utf8')
      // only the SVG namespace name, never a URL that is fetched
      expect(text.replaceAll('http://www.w3.org/2000/svg', ''), file).not.toMatch(/https?:\/\/|url\(|@import/)
    }
  })

  it('formats figures the way the pages show them', () => {
    expect([formatBytes(999), formatBytes(1536), formatBytes(5 * 2 ** 30)]).toEqual([
      '999 B',
      '1.5 KiB',
      '5.0 GiB',
    ])
    expect([formatRatio(0.5), formatRatio(null)]).toEqual(['50.0 %', '—'])
    expect([formatCount(1234567), formatCount(null)]).toEqual(['1,234,567', '—'])
    expect([formatScore(0.12345), formatScore(undefined)]).toEqual(['0.123', '—'])
    expect(formatTime(Date.UTC(2026, 10, 24, 17, 0))).toBe('2026-11-24 17:00 UTC')
    expect([formatDuration(42), formatDuration(3725), formatDuration(90_000)]).toEqual([
      '42 s',
      '1 h 2 min',
      '1 d 1 h',
    ])
  })
})
